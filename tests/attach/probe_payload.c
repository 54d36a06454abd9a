/* Test payload for the injector: behaves like the real agent's start function. It only spawns a
 * thread (with all signals blocked around pthread_create, so the new thread never takes the
 * target's signals) and returns. The thread appends "pid=<getpid()> arg=<argument>" to the file
 * named by the argument. Safe to call any number of times. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void* report(void* argument) {
  char* path = argument;
  FILE* out = fopen(path, "a");
  if (out) {
    fprintf(out, "pid=%d arg=%s\n", (int)getpid(), path);
    fclose(out);
  }
  free(path);
  return NULL;
}

__attribute__((visibility("default"))) int hotd_probe_start(const char* argument) {
  char* path = strdup(argument);
  if (!path) return -1;
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_t thread;
  int error = pthread_create(&thread, NULL, report, path);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  if (error != 0) {
    free(path);
    return -error;
  }
  pthread_detach(thread);
  return 42;
}

/* Raises SIGUSR1 at its own process while the injector holds the main thread, then starts as usual:
 * the injector must hold the signal back and re-deliver it after restoring the thread. */
__attribute__((visibility("default"))) int hotd_probe_start_with_signal(const char* argument) {
  kill(getpid(), SIGUSR1);
  return hotd_probe_start(argument);
}

/* Faults inside the injected call: the injector must suppress the fault and restore the thread. */
static volatile int* volatile nowhere; /* NULL, hidden from the optimizer */

__attribute__((visibility("default"))) int hotd_probe_crash(const char* argument) {
  (void)argument;
  return *nowhere;
}
