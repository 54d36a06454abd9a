#include "tracee.hpp"

#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace hotd::injector {

Tracee::~Tracee() {
  if (memory_fd_ >= 0) ::close(memory_fd_);
  if (!attached_ || dead_) return;
  if (!stopped_ && interrupt() == 0) {
    // Wait for the interrupt itself; signals met on the way are passed on.
    for (;;) {
      Stop stop = wait();
      if (stop.kind == Stop::Signal) {
        resume(stop.signal);
        continue;
      }
      break;
    }
  }
  if (!dead_) detach();
}

int Tracee::seize() {
  if (ptrace(PTRACE_SEIZE, tid_, nullptr, nullptr) != 0) return errno;
  attached_ = true;
  return 0;
}

int Tracee::interrupt() {
  return ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) == 0 ? 0 : errno;
}

int Tracee::resume(int signal) {
  if (ptrace(PTRACE_CONT, tid_, nullptr, reinterpret_cast<void*>(static_cast<long>(signal))) != 0)
    return errno;
  stopped_ = false;
  return 0;
}

Tracee::Stop Tracee::wait() {
  int status = 0;
  for (;;) {
    pid_t got = waitpid(tid_, &status, __WALL);
    if (got == tid_) break;
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == ECHILD) {
      // Not ours to wait for any more: the process is gone.
      dead_ = true;
      return Stop{Stop::Exited, 0, 0, {}};
    }
    return Stop{Stop::Failed, 0, errno, {}};
  }
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    dead_ = true;
    return Stop{Stop::Exited, WIFSIGNALED(status) ? WTERMSIG(status) : 0, status, {}};
  }
  stopped_ = true;
  int signal = WSTOPSIG(status);
  if ((status >> 16) == PTRACE_EVENT_STOP) {
    bool job_control = signal == SIGSTOP || signal == SIGTSTP || signal == SIGTTIN || signal == SIGTTOU;
    return Stop{job_control ? Stop::GroupStop : Stop::Interrupted, signal, status, {}};
  }
  Stop stop{Stop::Signal, signal, status, {}};
  ptrace(PTRACE_GETSIGINFO, tid_, nullptr, &stop.info);
  return stop;
}

int Tracee::detach(int signal, const siginfo_t* info) {
  if (info) ptrace(PTRACE_SETSIGINFO, tid_, nullptr, info);
  if (ptrace(PTRACE_DETACH, tid_, nullptr, reinterpret_cast<void*>(static_cast<long>(signal))) != 0) {
    int error = errno;
    if (error == ESRCH) dead_ = kill(tid_, 0) != 0;
    if (!dead_) return error;
  }
  attached_ = false;
  stopped_ = false;
  return 0;
}

static int open_memory(pid_t tid) {
  std::string path = "/proc/" + std::to_string(tid) + "/mem";
  return ::open(path.c_str(), O_RDWR | O_CLOEXEC);
}

bool Tracee::write_memory(uint64_t address, const void* data, size_t size) {
  if (memory_fd_ < 0 && (memory_fd_ = open_memory(tid_)) < 0) return false;
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = pwrite(memory_fd_, bytes, size, static_cast<off_t>(address));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) errno = EIO;
      return false;
    }
    bytes += n;
    address += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool Tracee::read_memory(uint64_t address, void* data, size_t size) {
  if (memory_fd_ < 0 && (memory_fd_ = open_memory(tid_)) < 0) return false;
  ssize_t n = pread(memory_fd_, data, size, static_cast<off_t>(address));
  return n == static_cast<ssize_t>(size);
}

std::string Tracee::read_c_string(uint64_t address, size_t max_length) {
  std::string text;
  char chunk[256];
  while (text.size() < max_length) {
    // Stay within one page per read so a string ending just before an unmapped page still reads.
    size_t to_page_end = 4096 - (address & 4095);
    size_t want = std::min({sizeof chunk, to_page_end, max_length - text.size()});
    if (!read_memory(address, chunk, want)) break;
    for (size_t i = 0; i < want; ++i) {
      if (chunk[i] == '\0') return text;
      text.push_back(chunk[i]);
    }
    address += want;
  }
  return text;
}

}  // namespace hotd::injector
