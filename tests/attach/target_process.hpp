// A real target process for the injector tests: spawned with pipes on stdin and stdout, waited for
// by lines ("ready", "status ...", "bye ..."), and always reaped, killing it if needed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace hotd::attach_test {

using namespace std::chrono_literals;

class TargetProcess {
 public:
  // Runs argv[0] with the arguments; returns nullopt if it could not be started.
  static std::optional<TargetProcess> spawn(const std::vector<std::string>& argv);
  TargetProcess(TargetProcess&& other) noexcept;
  TargetProcess& operator=(TargetProcess&&) = delete;
  ~TargetProcess();

  pid_t pid() const { return pid_; }
  // The next line starting with `prefix` (earlier lines are dropped), or nullopt on timeout or EOF.
  std::optional<std::string> wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout = 5000ms);
  bool write_line(const std::string& line);
  // True while the process has not exited (does not reap).
  bool alive() const;
  // Sends SIGTERM and returns the wait status, or nullopt if it did not exit in time (then killed).
  std::optional<int> terminate(std::chrono::milliseconds timeout = 5000ms);
  // Waits for the process to exit by itself; returns the wait status or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = 5000ms);
  // Asks for a status line (SIGUSR1) and returns it.
  std::optional<std::string> status();

 private:
  TargetProcess(pid_t pid, int in, int out) : pid_(pid), stdin_(in), stdout_(out) {}
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string buffer_;
  bool reaped_ = false;
};

// Path of targets.py, the payload library, and an interpreter that exists (or empty).
std::string targets_script();
std::string payload_library();
std::vector<std::string> python_target(const std::string& interpreter, const std::string& mode,
                                       const std::vector<std::string>& extra = {});

// bin/python3 (bin/python if it has none) of the newest /root/.pyenv/versions/<series>.N, or empty
// when there is none: the only case a test may skip for.
std::string pyenv_interpreter(const std::string& series);

// What this machine lacks for a test (a missing interpreter): printed as "SKIPPED: <reason>". A run in
// which something was skipped and nothing failed exits 77 (main.cpp), which ctest reports as skipped.
void skip(const std::string& reason);
bool any_skipped();

// A fresh directory removed with its content at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& parent = "/tmp");
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
// Polls `condition` until it holds (true) or the timeout passes (false).
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5000ms);
// The state of `pid` in /proc/<pid>/stat (`R` running, `S` asleep in a system call, `T` stopped), 0
// when it is gone; and the CPU time it used.
char process_state(pid_t pid);
std::chrono::milliseconds cpu_time(pid_t pid);
// Polls until `path` holds at least `lines` lines, or the timeout passes; returns the content.
std::string wait_for_file_lines(const std::string& path, int lines, std::chrono::milliseconds timeout = 5000ms);
int count_lines(const std::string& text);

}  // namespace hotd::attach_test
