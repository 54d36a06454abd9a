#include "target_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace hotd::attach_test {

using Clock = std::chrono::steady_clock;

std::optional<TargetProcess> TargetProcess::spawn(const std::vector<std::string>& argv) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return std::nullopt;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return std::nullopt;
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    // Its own process group, so a stray terminal signal for the test runner does not reach it.
    setpgid(0, 0);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  if (pid < 0) {
    close(in[1]);
    close(out[0]);
    return std::nullopt;
  }
  return TargetProcess(pid, in[1], out[0]);
}

TargetProcess::TargetProcess(TargetProcess&& other) noexcept
    : pid_(other.pid_), stdin_(other.stdin_), stdout_(other.stdout_), buffer_(std::move(other.buffer_)),
      reaped_(other.reaped_) {
  other.pid_ = -1;
  other.stdin_ = other.stdout_ = -1;
}

TargetProcess::~TargetProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stdin_ >= 0) close(stdin_);
  if (stdout_ >= 0) close(stdout_);
}

std::optional<std::string> TargetProcess::wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    size_t newline;
    while ((newline = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (line.rfind(prefix, 0) == 0) return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{stdout_, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    char chunk[4096];
    ssize_t n = read(stdout_, chunk, sizeof chunk);
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

bool TargetProcess::write_line(const std::string& line) {
  std::string text = line + "\n";
  return write(stdin_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

bool TargetProcess::alive() const {
  if (reaped_) return false;
  siginfo_t info{};
  // WNOWAIT: look without reaping, so terminate() still gets the status.
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
  return info.si_pid == 0;
}

std::optional<int> TargetProcess::terminate(std::chrono::milliseconds timeout) {
  kill(pid_, SIGTERM);
  return wait_exit(timeout);
}

std::optional<int> TargetProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  while (Clock::now() < deadline) {
    pid_t got = waitpid(pid_, &status, WNOHANG);
    if (got == pid_) {
      reaped_ = true;
      return status;
    }
    std::this_thread::sleep_for(5ms);
  }
  return std::nullopt;
}

std::optional<std::string> TargetProcess::status() {
  kill(pid_, SIGUSR1);
  return wait_for_line("status ");
}

std::string targets_script() { return HOTD_ATTACH_TARGETS_SCRIPT; }
std::string payload_library() { return HOTD_PROBE_PAYLOAD; }

std::vector<std::string> python_target(const std::string& interpreter, const std::string& mode,
                                       const std::vector<std::string>& extra) {
  std::vector<std::string> argv{interpreter, "-u", targets_script(), mode};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::string pyenv_interpreter(const std::string& series) {
  std::error_code error;
  std::filesystem::path newest;
  int newest_micro = -1;
  for (const auto& entry : std::filesystem::directory_iterator("/root/.pyenv/versions", error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(series + ".", 0) != 0) continue;
    std::string micro = name.substr(series.size() + 1);
    if (micro.empty() || micro.find_first_not_of("0123456789") != std::string::npos) continue;
    if (std::stoi(micro) > newest_micro) {
      newest = entry.path();
      newest_micro = std::stoi(micro);
    }
  }
  if (newest.empty()) return {};
  // Installed: its interpreter, even one that does not run (the test then fails rather than skips).
  return std::filesystem::exists(newest / "bin/python3") ? newest / "bin/python3" : newest / "bin/python";
}

namespace {
bool skipped = false;
}

void skip(const std::string& reason) {
  std::printf("SKIPPED: %s\n", reason.c_str());
  skipped = true;
}

bool any_skipped() { return skipped; }

TempDir::TempDir(const std::string& parent) {
  std::string pattern = parent + "/hotd-attach-test-XXXXXX";
  char* made = mkdtemp(pattern.data());
  path_ = made ? made : "";
  if (made) chmod(made, 0777);  // targets running as another uid write here too
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

namespace {
// The fields of /proc/<pid>/stat after the command name, from the state on; empty when it is gone.
std::vector<std::string> stat_fields(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream rest(stat.substr(stat.rfind(')') + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}
}  // namespace

char process_state(pid_t pid) {
  const auto fields = stat_fields(pid);
  return fields.empty() ? 0 : fields[0][0];
}

std::chrono::milliseconds cpu_time(pid_t pid) {
  const auto fields = stat_fields(pid);
  if (fields.size() < 13) return 0ms;
  const long ticks = std::stol(fields[11]) + std::stol(fields[12]);  // utime + stime
  return std::chrono::milliseconds(ticks * 1000 / sysconf(_SC_CLK_TCK));
}

int count_lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

std::string wait_for_file_lines(const std::string& path, int lines, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string content;
  while (Clock::now() < deadline) {
    content = read_file(path);
    if (count_lines(content) >= lines) return content;
    std::this_thread::sleep_for(1ms);
  }
  return content;
}

}  // namespace hotd::attach_test
