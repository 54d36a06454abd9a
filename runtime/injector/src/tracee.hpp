// One thread under PTRACE_SEIZE, as a small RAII object: the destructor always detaches a live
// tracee (stopping it first if it runs), so no error path can leave the target stopped.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace hotd::injector {

class Tracee {
 public:
  explicit Tracee(pid_t tid) : tid_(tid) {}
  Tracee(const Tracee&) = delete;
  Tracee& operator=(const Tracee&) = delete;
  ~Tracee();

  // PTRACE_SEIZE without options: no SIGSTOP is sent, and if we die the kernel detaches for us.
  // Returns 0 or an errno value.
  int seize();

  struct Stop {
    enum Kind {
      Interrupted,  // our PTRACE_INTERRUPT (PTRACE_EVENT_STOP with SIGTRAP)
      GroupStop,    // job control stop (SIGSTOP, SIGTSTP, ...) seen as PTRACE_EVENT_STOP
      Signal,       // signal-delivery-stop; `info` holds the siginfo
      Exited,       // exited or killed; `status` is the wait status
      Failed,       // waitpid failed; `status` is errno
    } kind;
    int signal = 0;
    int status = 0;
    siginfo_t info{};
  };

  int interrupt();                   // 0 or errno
  int resume(int signal = 0);        // PTRACE_CONT; 0 or errno
  Stop wait();                       // blocks until the next stop or exit
  // Detaches, delivering `signal` with `info` if given (the tracee must be in a signal-delivery-stop
  // for the signal to be delivered). 0 or errno.
  int detach(int signal = 0, const siginfo_t* info = nullptr);

  pid_t tid() const { return tid_; }

  // Access to the tracee's memory through /proc/PID/mem (works regardless of page protections).
  bool write_memory(uint64_t address, const void* data, size_t size);
  bool read_memory(uint64_t address, void* data, size_t size);
  std::string read_c_string(uint64_t address, size_t max_length);

 private:
  pid_t tid_;
  bool attached_ = false;
  bool stopped_ = false;
  bool dead_ = false;
  int memory_fd_ = -1;
};

}  // namespace hotd::injector
