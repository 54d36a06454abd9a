#include "daemon_commands.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <streambuf>

#include <nlohmann/json.hpp>

#include "daemon.hpp"
#include "daemon_client.hpp"
#include "path_map.hpp"
#include "runtime_dir.hpp"
#include "source_commands.hpp"
#include "source_file.hpp"
#include "web_server.hpp"

namespace hotd::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr auto kQuickTimeout = std::chrono::seconds(10);
constexpr std::size_t kDefaultMaxLogBytes = 8 * 1024 * 1024;  // per file: daemon.log and daemon.log.1
constexpr std::size_t kMaxLogLineBytes = 4096;  // the rest of a longer line is cut, its length said

// The background daemon's log: what it writes to std::cerr goes, a whole line at a time, to
// daemon.log, which is also its stdout and stderr. Past `max_bytes` the file becomes daemon.log.1
// (replacing an older one) and a new daemon.log starts, so the log never holds more than twice
// that. A line that cannot be written (a full disk) is lost, not the log: the stream never fails,
// and the next line that can be written says how many were lost.
class LogFile : public std::streambuf {
 public:
  LogFile(std::string path, std::size_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {
    struct stat status {};
    if (::fstat(STDERR_FILENO, &status) == 0) size_ = static_cast<std::size_t>(status.st_size);
  }

 protected:
  int overflow(int c) override {
    if (c != traits_type::eof()) append(static_cast<char>(c));
    return traits_type::not_eof(c);
  }

  std::streamsize xsputn(const char* data, std::streamsize size) override {
    for (std::streamsize i = 0; i < size; ++i) append(data[i]);
    return size;
  }

 private:
  void append(char c) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (c != '\n') {
      if (line_.size() < kMaxLogLineBytes) line_ += c;
      ++line_bytes_;
      return;
    }
    if (line_bytes_ > line_.size()) line_ += " ... (" + std::to_string(line_bytes_ - line_.size()) + " more bytes cut)";
    line_ += '\n';
    if (size_ + line_.size() > max_bytes_ && size_ > 0) rotate();
    if (lost_lines_ > 0) {
      const std::string notice = "(" + std::to_string(lost_lines_) + " log line(s) lost: " + std::strerror(lost_errno_) + ")\n";
      if (write_line(notice)) lost_lines_ = 0;
    }
    if (lost_lines_ > 0 || !write_line(line_)) {
      ++lost_lines_;
      lost_errno_ = errno;
    }
    line_.clear();
    line_bytes_ = 0;
  }

  // The whole line or nothing counts: a line cut by a full disk is counted lost (and ended, so that
  // the next starts on a line of its own).
  bool write_line(const std::string& line) {
    const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
    if (written > 0) size_ += static_cast<std::size_t>(written);
    if (written == static_cast<ssize_t>(line.size())) return true;
    const int error = written < 0 ? errno : ENOSPC;
    if (written > 0 && ::write(STDERR_FILENO, "\n", 1) == 1) ++size_;
    errno = error;
    return false;
  }

  void rotate() {
    const std::string old_path = path_ + ".1";
    if (::rename(path_.c_str(), old_path.c_str()) != 0) return;  // keep writing to the one there is
    const int fresh = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fresh < 0) return;  // still daemon.log.1 until a rotation can open a new one
    ::dup2(fresh, STDOUT_FILENO);
    ::dup2(fresh, STDERR_FILENO);
    ::close(fresh);
    size_ = 0;
  }

  std::string path_;
  std::size_t max_bytes_;
  std::mutex mutex_;
  std::size_t size_ = 0;        // of the current file, as far as this daemon wrote it
  std::string line_;            // the line being written, up to kMaxLogLineBytes
  std::size_t line_bytes_ = 0;  // its whole length
  std::size_t lost_lines_ = 0;
  int lost_errno_ = 0;
};

// HOTD_LOG_MAX_BYTES, else 8 MiB.
std::size_t max_log_bytes() {
  const char* text = std::getenv("HOTD_LOG_MAX_BYTES");
  char* end = nullptr;
  const unsigned long long value = text ? std::strtoull(text, &end, 10) : 0;
  return text && *text && *end == '\0' && value > 0 ? static_cast<std::size_t>(value) : kDefaultMaxLogBytes;
}

int listen_on(const std::string& path, std::string& error) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    error = "socket path too long: " + path + " (set HOTD_RUNTIME_DIR to a shorter directory)";
    return -1;
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::unlink(path.c_str());  // a stale socket of a dead daemon: we hold the lock, so nobody serves it
  const mode_t previous = ::umask(0177);
  const bool bound = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::umask(previous);
  if (!bound || ::listen(fd, 128) != 0) {
    error = "cannot listen on " + path + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

std::string describe_process(const json& process) {
  std::string command;
  for (const auto& arg : process.value("argv", json::array())) {
    if (!command.empty()) command += ' ';
    command += arg.get<std::string>();
  }
  return command;
}

// Prints what each process did with a save (hotd patch, revert, reload); returns the exit status:
// 0 when everything applied, 1 when any part was rude or failed.
int print_save_result(const json& result, const std::string& shown_path, bool as_json) {
  if (as_json) {
    std::cout << result.dump(2) << "\n";
    return result.value("ok", false) ? kExitOk : kExitFailed;
  }
  for (const auto& syntax_error : result["errors"]) {
    std::cout << shown_path << ":" << syntax_error.value("line", 0) << ":" << syntax_error.value("column", 0)
              << ": syntax error: " << syntax_error.value("message", "") << " (nothing applied)\n";
  }
  const auto& processes = result["processes"];
  if (processes.empty() && result["errors"].empty()) {
    std::cout << "hotd: no attached process has loaded " << shown_path << "; nothing to patch\n";
  }
  for (const auto& process : processes) {
    std::cout << "pid " << process.value("pid", 0) << ": " << process.value("status", "") << "\n";
    const json& outcome = process["result"];
    if (outcome.contains("error") && !outcome["error"].is_null()) {
      std::cout << "  " << (outcome["error"].is_string() ? outcome["error"].get<std::string>() : outcome["error"].dump()) << "\n";
    }
    for (const auto& entry : outcome.value("results", json::array())) {
      const std::string status = entry.value("status", "");
      std::string subject = entry.value("qualname", json()).is_string() ? entry["qualname"].get<std::string>()
                                                                        : entry.value("label", entry.value("kind", std::string()));
      std::cout << "  " << status << " " << subject << " (line " << entry.value("line", 0) << ")";
      if ((status == "rude" || status == "failed" || status == "skipped" || status == "reloaded" ||
           status == "migrated") && entry.contains("message") &&
          entry["message"].is_string() && !entry["message"].get<std::string>().empty()) {
        std::cout << ": " << entry["message"].get<std::string>();
      }
      if (entry.contains("error") && entry["error"].is_object()) {
        std::cout << ": " << entry["error"].value("type", "") << ": " << entry["error"].value("message", "");
      }
      std::cout << "\n";
      // What still holds the old code (a reference to an object a decorator change replaced, a
      // closure that could not follow): applied, but worth knowing.
      for (const auto& stale : entry.value("stale", json::array())) {
        if (stale.is_string()) std::cout << "    warning: " << stale.get<std::string>() << "\n";
      }
    }
  }
  return result.value("ok", false) ? kExitOk : kExitFailed;
}

}  // namespace

int run_serve(const ServeOptions& options) {
  std::string error;
  auto dir = server::prepare_runtime_dir(error);
  if (!dir) {
    std::cerr << "hotd serve: " << error << "\n";
    return kExitUsage;
  }
  bool held_by_another = false;
  auto lock = server::InstanceLock::acquire(*dir, held_by_another, error);
  if (!lock) {
    // Quiet (auto-start) hides only the race another daemon won; any other reason must be seen.
    if (!options.quiet || !held_by_another) std::cerr << "hotd serve: " << error << "\n";
    return held_by_another ? 3 : kExitUsage;
  }
  const int listen_fd = listen_on(dir->socket(), error);
  if (listen_fd < 0) {
    std::cerr << "hotd serve: " << error << "\n";
    return kExitUsage;
  }
  server::DaemonOptions daemon_options;
  daemon_options.patch_timeout_ms = options.patch_timeout_ms;
  daemon_options.allowed_origins = options.allowed_origins;
  daemon_options.max_connections = options.max_connections;
  for (const std::string& endpoint : options.listen) {
    std::string address;
    unsigned short port = 0;
    if (!server::parse_endpoint(endpoint, address, port, error)) {
      std::cerr << "hotd serve: --listen: " << error << "\n";
      return kExitUsage;
    }
    if (!server::is_loopback_address(address)) {
      std::cerr << "hotd serve: warning: agents may connect from the network on " << endpoint
                << "; the token in " << dir->path << "/web.json is the only protection, and the traffic is "
                << "not encrypted: use it only on a network you trust (docs/SECURITY.md)\n";
    }
    daemon_options.listen.push_back(endpoint);
  }
  if (options.foreground) return server::run_daemon(*dir, std::move(*lock), listen_fd, daemon_options);

  const int log = ::open(dir->log().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) {
    std::cerr << "hotd serve: cannot open the log " << dir->log() << ": " << std::strerror(errno) << "\n";
    return kExitUsage;
  }
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    std::cerr << "hotd serve: " << std::strerror(errno) << "\n";
    return kExitUsage;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    std::cerr << "hotd serve: cannot fork: " << std::strerror(errno) << "\n";
    return kExitUsage;
  }
  if (child == 0) {
    ::setsid();
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::close(null);
    ::close(log);
    ::close(ready[0]);
    if (::write(ready[1], "1", 1) != 1) _exit(kExitUsage);
    ::close(ready[1]);
    LogFile log_file(dir->log(), max_log_bytes());
    std::streambuf* const previous_cerr = std::cerr.rdbuf(&log_file);
    std::streambuf* const previous_cout = std::cout.rdbuf(&log_file);
    const int status = server::run_daemon(*dir, std::move(*lock), listen_fd, daemon_options);
    std::cerr.rdbuf(previous_cerr);  // the streams outlive log_file: they flush at exit
    std::cout.rdbuf(previous_cout);
    return status;
  }
  ::close(ready[1]);
  ::close(log);
  ::close(listen_fd);
  char byte = 0;
  if (::read(ready[0], &byte, 1) != 1) {
    std::cerr << "hotd serve: the daemon exited during start-up; see " << dir->log() << "\n";
    return kExitUsage;
  }
  if (!options.quiet) std::cout << "hotd: daemon started (pid " << child << "), socket " << dir->socket() << "\n";
  return kExitOk;
}

int run_stop() {
  std::string error;
  auto client = DaemonClient::connect(false, error);
  if (!client) {
    std::cout << "hotd: no daemon is running\n";
    return kExitOk;
  }
  const auto status = client->request("hotd/status", json::object(), kQuickTimeout, error);
  if (!client->request("hotd/stop", json::object(), kQuickTimeout, error)) {
    std::cerr << "hotd stop: " << error << "\n";
    return kExitUsage;
  }
  // Wait until the daemon is gone, socket and process (it holds the instance lock until it exits),
  // so that a following command starts a fresh daemon instead of losing the start to this one.
  const std::string socket = client->runtime_dir().socket();
  for (int i = 0; i < 200 && ::access(socket.c_str(), F_OK) == 0; ++i) ::usleep(10000);
  for (int i = 0; i < 500; ++i) {
    bool held = false;
    std::string ignored;
    if (server::InstanceLock::acquire(client->runtime_dir(), held, ignored) || !held) break;  // released here
    ::usleep(10000);
  }
  std::cout << "hotd: daemon stopped" << (status ? " (pid " + std::to_string(status->value("pid", 0)) + ")" : "") << "\n";
  return kExitOk;
}

int run_status(bool as_json) {
  std::string error;
  auto client = DaemonClient::connect(false, error);
  if (!client) {
    if (as_json) {
      std::cout << json{{"running", false}, {"socket", server::RuntimeDir{server::runtime_dir_path()}.socket()}}.dump(2) << "\n";
    } else {
      std::cout << "hotd: " << error << "\n";
    }
    return kExitFailed;
  }
  auto status = client->request("hotd/status", json::object(), kQuickTimeout, error);
  if (!status) {
    std::cerr << "hotd status: " << error << "\n";
    return kExitUsage;
  }
  if (as_json) {
    (*status)["running"] = true;
    std::cout << status->dump(2) << "\n";
    return kExitOk;
  }
  const double uptime = status->value("uptime_seconds", 0.0);
  std::cout << "hotd daemon " << status->value("version", "") << ": pid " << status->value("pid", 0) << ", up "
            << static_cast<long>(uptime) << " s\n"
            << "  socket:    " << status->value("socket", "") << "\n"
            << "  editors:   " << status->value("editors", 0) << "\n"
            << "  processes: " << (*status)["processes"].size() << "\n";
  for (const auto& process : (*status)["processes"]) {
    std::cout << "    " << process.value("pid", 0) << "  python " << process.value("python_version", "") << "  "
              << describe_process(process) << "\n";
  }
  if (!(*status)["waiting_for_gil"].empty()) {
    std::cout << "  waiting for the GIL: " << (*status)["waiting_for_gil"].dump() << "\n";
  }
  return kExitOk;
}

int run_ps(bool as_json) {
  std::string error;
  auto client = DaemonClient::connect(true, error);
  if (!client) {
    std::cerr << "hotd ps: " << error << "\n";
    return kExitUsage;
  }
  auto listing = client->request("hotd/listProcesses", json::object(), kQuickTimeout, error);
  if (!listing) {
    std::cerr << "hotd ps: " << error << "\n";
    return kExitUsage;
  }
  if (as_json) {
    std::cout << listing->dump(2) << "\n";
    return kExitOk;
  }
  const auto& processes = (*listing)["processes"];
  if (processes.empty()) {
    std::cout << "no attached processes (start one with `hotd run script.py`)\n";
    return kExitOk;
  }
  std::printf("%-8s %-8s %-7s %-6s %s\n", "PID", "PYTHON", "HOW", "FILES", "COMMAND");
  for (const auto& process : processes) {
    std::printf("%-8d %-8s %-7s %-6zu %s\n", process.value("pid", 0), process.value("python_version", "").c_str(),
                process.value("launcher", "").c_str(), process["files"].size(), describe_process(process).c_str());
  }
  return kExitOk;
}

int run_patch(const PatchOptions& options) {
  if (const std::string why = server::not_python_reason(options.path); !why.empty()) {
    std::cerr << "hotd patch: '" << options.path << "' is " << why << "\n";
    return kExitUsage;
  }
  const server::SourceFile file = server::read_source_file(options.path);
  if (!file.text) {
    std::cerr << "hotd patch: cannot read '" << options.path << "': " << file.error << "\n";
    return kExitUsage;
  }
  std::string error;
  auto client = DaemonClient::connect(true, error);
  if (!client) {
    std::cerr << "hotd patch: " << error << "\n";
    return kExitUsage;
  }
  const std::string path = fs::absolute(options.path).lexically_normal().string();
  const auto timeout = std::chrono::milliseconds(static_cast<long>(options.timeout_seconds * 1000));
  auto result = client->request("hotd/patchFile", {{"path", path}, {"text", *file.text}}, timeout, error);
  if (!result) {
    std::cerr << "hotd patch: " << error << "\n";
    return kExitUsage;
  }
  return print_save_result(*result, options.path, options.json);
}

int run_revert(const RevertOptions& options) {
  std::string error;
  auto client = DaemonClient::connect(true, error);
  if (!client) {
    std::cerr << "hotd revert: " << error << "\n";
    return kExitUsage;
  }
  const std::string path = fs::absolute(options.path).lexically_normal().string();
  const auto timeout = std::chrono::milliseconds(static_cast<long>(options.timeout_seconds * 1000));
  auto result = client->request("hotd/revert", {{"path", path}}, timeout, error);
  if (!result) {
    std::cerr << "hotd revert: " << error << "\n";
    return kExitUsage;
  }
  if (!options.json) {
    std::cout << "hotd: the processes go back to the version of " << options.path << " before the last one "
              << "(the file on disk is not changed; save it to apply it again)\n";
  }
  return print_save_result(*result, options.path, options.json);
}

int run_log(const LogOptions& options) {
  std::string error;
  auto client = DaemonClient::connect(false, error);
  if (!client) {
    std::cerr << "hotd log: " << error << "\n";
    return kExitUsage;
  }
  json params = json::object();
  if (!options.path.empty()) params["path"] = fs::absolute(options.path).lexically_normal().string();
  auto history = client->request("hotd/log", params, kQuickTimeout, error);
  if (!history) {
    std::cerr << "hotd log: " << error << "\n";
    return kExitUsage;
  }
  if (options.json) {
    std::cout << history->dump(2) << "\n";
    return kExitOk;
  }
  if ((*history)["entries"].empty()) std::cout << "no history yet\n";
  for (const auto& entry : (*history)["entries"]) {
    const std::time_t seconds = entry.value("time_ms", std::int64_t{0}) / 1000;
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&seconds));
    std::string outcome;
    if (entry.value("origin", "") == "loaded") {
      outcome = "loaded by the processes";
    } else if (entry.value("syntax_error", false)) {
      outcome = "syntax error, nothing applied";
    } else if (!entry.value("completed", false)) {
      outcome = "in progress";
    } else if (entry["processes"].empty()) {
      outcome = "no process runs it";
    } else {
      for (const auto& process : entry["processes"]) {
        if (!outcome.empty()) outcome += ", ";
        outcome += "pid " + std::to_string(process.value("pid", 0)) + " " + process.value("status", "");
      }
    }
    std::cout << "#" << entry.value("version", 0) << "  " << stamp << "  " << entry.value("file", "") << "  ("
              << entry.value("lines", 0) << " lines): " << outcome << "\n";
  }
  return kExitOk;
}

int run_reload(const ReloadOptions& options) {
  std::string error;
  auto client = DaemonClient::connect(true, error);
  if (!client) {
    std::cerr << "hotd reload: " << error << "\n";
    return kExitUsage;
  }
  const bool is_file = options.target.ends_with(".py") || fs::is_regular_file(options.target);
  const json params = is_file ? json{{"path", fs::absolute(options.target).lexically_normal().string()}}
                              : json{{"module", options.target}};
  const auto timeout = std::chrono::milliseconds(static_cast<long>(options.timeout_seconds * 1000));
  auto result = client->request("hotd/reload", params, timeout, error);
  if (!result) {
    std::cerr << "hotd reload: " << error << "\n";
    return kExitUsage;
  }
  return print_save_result(*result, options.target, options.json);
}

int run_detach(int pid) {
  std::string error;
  auto client = DaemonClient::connect(false, error);
  if (!client) {
    std::cerr << "hotd detach: " << error << "\n";
    return kExitUsage;
  }
  if (!client->request("hotd/detach", {{"pid", pid}}, kQuickTimeout, error)) {
    std::cerr << "hotd detach: " << error << "\n";
    return kExitUsage;
  }
  std::cout << "hotd: detached from " << pid << " (it keeps running; patched code stays)\n";
  return kExitOk;
}

// How the agent reaches the daemon: the local socket (starting the daemon when needed), or TCP with
// the token and path mappings (`--connect`). Empty with a message on stderr when it cannot.
std::string daemon_config(const RunOptions& options) {
  if (options.connect.empty()) {
    std::string error;
    auto client = DaemonClient::connect(true, error);
    if (!client) {
      std::cerr << "hotd run: " << error << "\n";
      return {};
    }
    return "socket=" + client->runtime_dir().socket() + "\n";
  }
  const auto colon = options.connect.rfind(':');
  if (colon == std::string::npos || colon == 0 || options.connect.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    std::cerr << "hotd run: --connect takes HOST:PORT, got '" << options.connect << "'\n";
    return {};
  }
  if (options.token_file.empty() || ::access(options.token_file.c_str(), R_OK) != 0) {
    std::cerr << "hotd run: --connect needs --token-file FILE, a readable copy or mount of the daemon's web.json\n";
    return {};
  }
  std::string config = "tcp=" + options.connect + "\ntoken_file=" + fs::absolute(options.token_file).string() + "\n";
  for (const std::string& mapping : options.path_map) {
    std::string error;
    if (!server::PathMap::parse(mapping, error)) {
      std::cerr << "hotd run: --map: " << error << "\n";
      return {};
    }
    config += "path_map=" + mapping + "\n";
  }
  return config;
}

int run_run(const RunOptions& options) {
  if ((!options.token_file.empty() || !options.path_map.empty()) && options.connect.empty()) {
    std::cerr << "hotd run: --token-file and --map go with --connect\n";
    return kExitUsage;
  }
  std::string config = daemon_config(options);
  if (config.empty()) return kExitUsage;
  std::vector<std::string> watch = options.watch;
  if (!options.no_watch) {
    std::error_code ignored;
    if (options.module.empty()) {
      watch.push_back(fs::weakly_canonical(fs::absolute(options.command.at(0)), ignored).parent_path().string());
    } else {
      watch.push_back(fs::current_path().string());
    }
  }
  config += "package=" HOTD_PYTHON_DIR "/hotd_agent\nlauncher=run\n";
  config += std::string("verbosity=") + (options.quiet ? "quiet" : options.verbose ? "verbose" : "normal") + "\n";
  config += "debounce=" + std::to_string(options.debounce_ms) + "\npoll=" + std::to_string(options.poll_seconds) + "\n";
  for (const std::string& glob : options.include) config += "include=" + glob + "\n";
  for (const std::string& glob : options.exclude) config += "exclude=" + glob + "\n";
  for (const std::string& directory : watch) {
    std::error_code ignored;
    config += "watch=" + fs::weakly_canonical(fs::absolute(directory), ignored).string() + "\n";
  }
  ::setenv("HOTD_AGENT_LIB", HOTD_AGENT_LIBRARY, 1);
  ::setenv("HOTD_AGENT_CONFIG", config.c_str(), 1);

  std::vector<std::string> arguments = {options.python, HOTD_PYTHON_DIR "/hotd_run.py"};
  if (options.interactive) arguments.push_back("-i");
  if (!options.module.empty()) {
    arguments.push_back("-m");
    arguments.push_back(options.module);
  }
  arguments.insert(arguments.end(), options.command.begin(), options.command.end());
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  std::cerr << "hotd run: cannot run '" << options.python << "': " << std::strerror(errno) << "\n";
  return 127;
}

}  // namespace hotd::cli
