#include "attach_command.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "daemon_client.hpp"
#include "hotd/injector/injector.hpp"
#include "source_commands.hpp"

namespace hotd::cli {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// The local process `pid` as the daemon knows it (null when it does not). Processes over TCP are left
// out: their pids are of other places, and may be anything they claim.
std::optional<json> find_process(DaemonClient& client, int pid, bool& waiting_for_gil, std::string& error) {
  const auto status = client.request("hotd/status", json::object(), std::chrono::seconds(5), error);
  if (!status) return std::nullopt;
  waiting_for_gil = false;
  for (const auto& waiting : (*status)["waiting_for_gil"]) waiting_for_gil |= waiting.get<int>() == pid;
  for (const auto& process : (*status)["processes"]) {
    if (process.value("pid", 0) == pid && !process.contains("remote")) return process;
  }
  return json();
}

// What the target's main thread is doing, for a message about why it never let the agent in.
std::string main_thread_activity(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/syscall");
  std::string first;
  file >> first;
  if (first.empty()) return "in an unknown state";
  if (first == "running") return "running Python or C code without releasing the GIL";
  static const std::map<long, const char*> names = {
      {0, "read"},          {7, "poll"},           {23, "select"},       {35, "nanosleep"},  {43, "accept"},
      {61, "wait4"},        {202, "futex"},        {230, "clock_nanosleep"}, {232, "epoll_wait"},
      {270, "pselect6"},    {271, "ppoll"},        {281, "epoll_pwait"}, {288, "accept4"}, {45, "recvfrom"},
      {219, "restart_syscall (a sleep or wait resumed after an interruption)"}};
  const long number = std::strtol(first.c_str(), nullptr, 10);
  const auto found = names.find(number);
  return std::string("blocked in the system call ") + (found != names.end() ? found->second : first) +
         " while holding the GIL (a C extension that does not release it)";
}

std::string describe(const json& process) {
  std::string script = "?";
  const auto& argv = process.value("argv", json::array());
  if (!argv.empty()) script = argv[0].get<std::string>();
  const std::size_t files = process.value("files", json::array()).size();
  return "python " + process.value("python_version", std::string("?")) + ", " + script + ", " + std::to_string(files) +
         (files == 1 ? " module file" : " module files");
}

// Files the process runs an older version of than the disk has (edited after it imported them): the
// agent compared the live code with the disk, and the next save of the file brings those definitions
// up to date.
void print_drift(int pid, const json& process) {
  for (const json& file : process.value("files", json::array())) {
    if (!file.contains("drift")) continue;
    std::vector<std::string> names = file["drift"].value("differs", std::vector<std::string>{});
    for (const std::string& missing : file["drift"].value("missing", std::vector<std::string>{})) {
      names.push_back(missing + " (new)");
    }
    std::string list;
    for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
    const std::string path = file.value("file", std::string());
    std::cout << path << " changed on disk since pid " << pid << " imported it: " << names.size()
              << (names.size() == 1 ? " definition differs (" : " definitions differ (") << list
              << "); `hotd patch " << path << "` applies the version on disk\n";
  }
}

// A descriptor closed when it goes out of scope.
struct Descriptor {
  int fd;
  ~Descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

constexpr std::string_view kPackagePrefix = "hotd-agent-";

// A name nobody can guess, so nobody can have made it first; it starts with the pid of the target it
// is made for, so that a later attach can remove it once that process is gone.
std::string unpredictable_name(int pid) {
  unsigned char bytes[12];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) return {};
  std::string name = std::string(kPackagePrefix) + std::to_string(pid) + "-";
  for (const unsigned char byte : bytes) {
    static const char digits[] = "0123456789abcdef";
    name += digits[byte >> 4];
    name += digits[byte & 15];
  }
  return name;
}

bool write_all(int fd, const std::string& content) {
  for (std::size_t done = 0; done < content.size();) {
    const ssize_t wrote = ::write(fd, content.data() + done, content.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return false;
    done += static_cast<std::size_t>(wrote);
  }
  return true;
}

// Copies the package's .py files into `name`/hotd_agent, `name` being the directory just made under
// `parent_fd`, owner-only. False with `error` set, and whatever was made left for the caller to remove.
// (The target has our uid: a target of another uid could not reach the daemon's 0700 runtime directory.)
bool copy_package(int parent_fd, const std::string& name, const std::vector<std::filesystem::path>& files,
                  std::string& error) {
  const auto failed = [&](const std::string& what) {
    error = what + ": " + std::strerror(errno);
    return false;
  };
  const Descriptor top{::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  struct stat made {};
  if (top.fd < 0 || ::fstat(top.fd, &made) != 0) return failed("open " + name);
  if (made.st_uid != ::geteuid() || (made.st_mode & 077) != 0) {
    error = name + " is not the private directory just made";
    return false;
  }
  if (::mkdirat(top.fd, "hotd_agent", 0700) != 0) return failed("mkdir hotd_agent");
  const Descriptor package{::openat(top.fd, "hotd_agent", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  if (package.fd < 0) return failed("open hotd_agent");
  for (const std::filesystem::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string leaf = file.filename().string();
    const Descriptor out{
        ::openat(package.fd, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)};
    if (out.fd < 0 || !in || !write_all(out.fd, content)) return failed("copy " + leaf);
  }
  return true;
}

// Packages staged in `directory` (as we reach it) for processes that have exited: only directories of
// ours, 0700, named as unpredictable_name names them.
void remove_packages_of_exited_processes(const std::filesystem::path& directory) {
  std::error_code failed;
  for (const auto& entry : std::filesystem::directory_iterator(directory, failed)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(kPackagePrefix)) continue;
    const char* digits = name.c_str() + kPackagePrefix.size();
    char* end = nullptr;
    const long pid = std::strtol(digits, &end, 10);
    struct stat info {};
    if (end == digits || *end != '-' || pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH ||
        ::lstat(entry.path().c_str(), &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != ::geteuid() ||
        (info.st_mode & 077) != 0) {
      continue;
    }
    std::filesystem::remove_all(entry.path(), failed);
  }
}

struct StagedPackage {
  std::string in_target;     // the package directory as the target sees it
  std::filesystem::path top; // the directory made for it, as we reach it (to remove it)
};

// The agent's Python package, copied where a target in another mount namespace sees it (the injector
// stages the native library likewise). Nobody else may have written a file the target imports from
// it: the directory is made fresh under an unpredictable name, mode 0700, in a staging directory
// nobody else controls (injector::open_staging_dir); an existing one is never reused. It stays while
// the target may import from it (the reloader is imported on first use), and goes at a later attach
// once the target has exited.
std::optional<StagedPackage> stage_package(const injector::TargetInfo& target, const std::string& package,
                                           std::string& error) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(package)) {
    if (entry.path().extension() == ".py") files.push_back(entry.path());
  }
  std::string tried;
  for (const std::string directory : {"/dev/shm", "/tmp", "/var/tmp"}) {
    auto parent = injector::open_staging_dir(target.pid, target.uid, directory);
    if (!parent) {
      tried += "; " + parent.error().message;
      continue;
    }
    const Descriptor parent_fd{*parent};
    remove_packages_of_exited_processes(target.root + directory);
    const std::string name = unpredictable_name(target.pid);
    // mkdirat fails when the name exists: what we fill and may remove is only ever ours.
    if (name.empty() || ::mkdirat(parent_fd.fd, name.c_str(), 0700) != 0) {
      tried += "; " + directory + ": " + (name.empty() ? "no random name: " : "mkdir: ") + std::strerror(errno);
      continue;
    }
    std::string why;
    if (copy_package(parent_fd.fd, name, files, why)) {
      return StagedPackage{directory + "/" + name + "/hotd_agent", target.root + directory + "/" + name};
    }
    tried += "; " + directory + ": " + why;
    std::error_code ignored;
    std::filesystem::remove_all(target.root + directory + "/" + name, ignored);
  }
  error = "could not copy the agent's Python package into the target's /dev/shm, /tmp or /var/tmp" + tried;
  return std::nullopt;
}

bool visible_in_target(const std::string& root, const std::string& path) {
  struct stat ours {}, theirs {};
  return stat(path.c_str(), &ours) == 0 && stat((root + path).c_str(), &theirs) == 0 && ours.st_ino == theirs.st_ino &&
         ours.st_dev == theirs.st_dev;
}

}  // namespace

int run_attach(const AttachOptions& options) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long>(options.timeout_seconds * 1000));
  const auto target = injector::inspect_target(options.pid);
  if (!target) {
    std::cerr << "hotd attach: " << target.error().message << "\n";
    return kExitUsage;
  }
  std::string error;
  auto client = DaemonClient::connect(true, error);
  if (!client) {
    std::cerr << "hotd attach: " << error << "\n";
    return kExitUsage;
  }
  bool waiting = false;
  if (const auto existing = find_process(*client, options.pid, waiting, error); existing && !existing->is_null()) {
    std::cout << "hotd: already attached to " << options.pid << " (" << describe(*existing) << ")\n";
    return kExitOk;
  }

  const std::string socket = client->runtime_dir().socket();
  std::string package = HOTD_PYTHON_DIR "/hotd_agent";
  std::optional<StagedPackage> staged;
  if (target->other_mount_namespace) {
    if (!visible_in_target(target->root, socket)) {
      std::cerr << "hotd attach: process " << options.pid << " runs in another mount namespace (a container?) "
                << "where the daemon's socket " << socket << " is not visible. Run hotd inside that namespace, "
                << "or give it a runtime directory both see with HOTD_RUNTIME_DIR.\n";
      return kExitUsage;
    }
    if (!visible_in_target(target->root, package)) {
      staged = stage_package(*target, package, error);
      if (!staged) {
        std::cerr << "hotd attach: " << error << " (process " << options.pid << ")\n";
        return kExitUsage;
      }
      package = staged->in_target;
    }
  }

  const std::string config = "socket=" + socket + "\npackage=" + package + "\nlauncher=attach\n";
  injector::InjectOptions inject_options;
  inject_options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  const auto report = injector::inject(options.pid, HOTD_AGENT_LIBRARY, "hotd_agent_start", config, inject_options);
  if (!report) {
    std::cerr << "hotd attach: " << report.error().message << "\n";
    if (staged) {  // the agent never ran: nothing will import from it
      std::error_code ignored;
      std::filesystem::remove_all(staged->top, ignored);
    }
    return kExitUsage;
  }
  if (report->start_result < 0) {
    std::cerr << "hotd attach: the agent could not start in " << options.pid << " (out of memory or threads?)\n";
    return kExitUsage;
  }

  // The agent connects, announces itself, then takes the GIL to register: wait for that.
  for (;;) {
    const auto process = find_process(*client, options.pid, waiting, error);
    if (!process) {
      std::cerr << "hotd attach: " << error << "\n";
      return kExitUsage;
    }
    if (!process->is_null()) {
      if (options.json) {
        std::cout << json{{"pid", options.pid}, {"process", *process},
                          {"attach_ms", std::chrono::duration<double, std::milli>(report->duration).count()}}
                         .dump(2)
                  << "\n";
      } else {
        std::cout << "attached to " << options.pid << ": " << describe(*process) << "\n";
        print_drift(options.pid, *process);
      }
      return kExitOk;
    }
    if (Clock::now() > deadline) {
      if (waiting) {
        std::cerr << "hotd attach: the agent is loaded in " << options.pid << " but the process never released the "
                  << "GIL: its main thread is " << main_thread_activity(options.pid)
                  << ". It will register as soon as it does; the process is unharmed.\n";
      } else {
        std::cerr << "hotd attach: the agent was loaded in " << options.pid
                  << " but did not connect to the daemon; is the process still running?\n";
      }
      return kExitFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace hotd::cli
