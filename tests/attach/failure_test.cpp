// Injections that must fail with a clear error, leaving the target alive and unchanged: the payload
// never ran (no output file), the target answers its status request, and exits cleanly.
#include <grp.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "hotd/injector/injector.hpp"
#include "target_process.hpp"

namespace inj = hotd::injector;
using namespace hotd::attach_test;

namespace {

const char* kStart = "hotd_probe_start";

TargetProcess start(const std::vector<std::string>& argv) {
  auto target = TargetProcess::spawn(argv);
  REQUIRE(target);
  REQUIRE_MESSAGE(target->wait_for_line("ready", 10000ms), "target did not start: " << argv[0]);
  return std::move(*target);
}

void check_unharmed(TargetProcess& target, const std::string& output) {
  CHECK_FALSE(std::filesystem::exists(output));
  REQUIRE(target.alive());
  auto status = target.status();
  REQUIRE(status);
  CHECK(status->ends_with(" ok"));
  auto exit = target.terminate();
  REQUIRE(exit);
  CHECK(WIFEXITED(*exit));
  CHECK(WEXITSTATUS(*exit) == 0);
}

void check_error(const inj::Result<inj::InjectReport>& result, inj::InjectError code, const std::string& text) {
  REQUIRE_FALSE(result.ok());
  CHECK_MESSAGE(result.error().code == code, "got " << inj::to_string(result.error().code) << ": " << result.error().message);
  CHECK_MESSAGE(result.error().message.find(text) != std::string::npos, "message: " << result.error().message);
}

struct Outcome {
  bool ok = false;
  std::string code;
  std::string message;
};

// Runs inject() in a child process with other credentials (and so without CAP_SYS_PTRACE), so the
// test process keeps root.
Outcome inject_as(uid_t uid, gid_t gid, pid_t pid, const std::string& output) {
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  pid_t child = fork();
  if (child == 0) {
    close(pipe_fds[0]);
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) _exit(2);
    auto result = inj::inject(pid, payload_library(), kStart, output);
    std::string text = result.ok() ? std::string("ok\n") : std::string(inj::to_string(result.error().code)) + "\n" + result.error().message;
    (void)!write(pipe_fds[1], text.data(), text.size());
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string text;
  char buffer[1024];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE_MESSAGE(WIFEXITED(status), "injecting child crashed");
  REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, "could not change credentials");
  Outcome outcome;
  auto newline = text.find('\n');
  outcome.code = text.substr(0, newline);
  outcome.ok = outcome.code == "ok";
  if (newline != std::string::npos) outcome.message = text.substr(newline + 1);
  return outcome;
}

std::vector<std::string> as_nobody(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  return argv;
}

}  // namespace

TEST_CASE("no such process") {
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  auto result = inj::inject(gone, payload_library(), kStart, "/nowhere");
  check_error(result, inj::InjectError::NoSuchProcess, "no process with pid " + std::to_string(gone));
}

TEST_CASE("not a Python process") {
  auto target = TargetProcess::spawn({"/usr/bin/sleep", "100"});
  REQUIRE(target);
  const std::string exe = "/proc/" + std::to_string(target->pid()) + "/exe";
  REQUIRE(wait_until([&] {
    std::error_code error;
    return std::filesystem::read_symlink(exe, error) == "/usr/bin/sleep";  // past the fork, sleep runs
  }));
  auto result = inj::inject(target->pid(), payload_library(), kStart, "/nowhere");
  check_error(result, inj::InjectError::NotPython, "is not a Python process");
  CHECK(target->alive());
}

TEST_CASE("Python older than 3.7 is refused") {
  for (const char* series : {"3.6", "2.7"}) {
    std::string python = pyenv_interpreter(series);
    if (python.empty()) {
      skip("no pyenv CPython " + std::string(series) + ".x in /root/.pyenv/versions");
      continue;
    }
    TempDir dir;
    auto target = start(python_target(python, "idle"));
    auto result = inj::inject(target.pid(), payload_library(), kStart, dir.file("out"));
    check_error(result, inj::InjectError::UnsupportedPython, "runs Python " + std::string(series) + ".");
    CHECK(result.error().message.find("needs CPython 3.7 or newer") != std::string::npos);
    check_unharmed(target, dir.file("out"));
  }
}

TEST_CASE("library that does not exist") {
  TempDir dir;
  auto target = start(python_target("/usr/bin/python3", "idle"));
  auto result = inj::inject(target.pid(), "/nonexistent/libnothing.so", kStart, dir.file("out"));
  check_error(result, inj::InjectError::LibraryNotFound, "cannot read the library /nonexistent/libnothing.so: No such file");
  check_unharmed(target, dir.file("out"));
}

TEST_CASE("dlopen fails in the target: the dlerror text is reported") {
  TempDir dir;
  std::string bogus = dir.file("libbogus.so");
  std::ofstream(bogus) << std::string(512, '#') << "\nthis is not an ELF file\n";
  auto target = start(python_target("/usr/bin/python3", "idle"));
  auto result = inj::inject(target.pid(), bogus, kStart, dir.file("out"));
  check_error(result, inj::InjectError::LoaderFailed, bogus + ": invalid ELF header");
  check_unharmed(target, dir.file("out"));
}

TEST_CASE("function that does not exist: the dlerror text is reported") {
  TempDir dir;
  auto target = start(python_target("/usr/bin/python3", "busy"));
  auto result = inj::inject(target.pid(), payload_library(), "hotd_no_such_function", dir.file("out"));
  check_error(result, inj::InjectError::FunctionNotFound, "undefined symbol: hotd_no_such_function");
  check_unharmed(target, dir.file("out"));
}

TEST_CASE("a crash inside the injected function is contained") {
  TempDir dir;
  auto target = start(python_target("/usr/bin/python3", "idle"));
  auto result = inj::inject(target.pid(), payload_library(), "hotd_probe_crash", dir.file("out"));
  check_error(result, inj::InjectError::CallCrashed, "Segmentation fault at 0x");
  CHECK(result.error().message.find("libhotd_probe_payload.so") != std::string::npos);
  check_unharmed(target, dir.file("out"));
}

TEST_CASE("permission denied: target of another uid, injector without CAP_SYS_PTRACE") {
  // Honest about the case: the injector runs as uid 65533 (no capabilities), the target as 65534.
  TempDir dir;
  auto target = start(as_nobody(python_target("/usr/bin/python3", "idle")));
  Outcome outcome = inject_as(65533, 65533, target.pid(), dir.file("out"));
  CHECK(outcome.code == "not_permitted");
  CHECK_MESSAGE(outcome.message.find("runs as uid 65534 and you are uid 65533") != std::string::npos, outcome.message);
  check_unharmed(target, dir.file("out"));
}

TEST_CASE("permission denied: non-dumpable target of the same uid") {
  TempDir dir;
  auto target = start(as_nobody(python_target("/usr/bin/python3", "idle", {"--nondumpable"})));
  Outcome outcome = inject_as(65534, 65534, target.pid(), dir.file("out"));
  CHECK(outcome.code == "not_permitted");
  CHECK_MESSAGE(outcome.message.find("is not dumpable") != std::string::npos, outcome.message);
  check_unharmed(target, dir.file("out"));
}

TEST_CASE("same uid without CAP_SYS_PTRACE is permitted (no Yama restriction here)") {
  std::ifstream yama("/proc/sys/kernel/yama/ptrace_scope");
  int scope = 0;
  if (yama >> scope && scope != 0) {
    skip("kernel.yama.ptrace_scope is " + std::to_string(scope));
    return;
  }
  TempDir dir;
  auto target = start(as_nobody(python_target("/usr/bin/python3", "idle")));
  Outcome outcome = inject_as(65534, 65534, target.pid(), dir.file("out"));
  CHECK_MESSAGE(outcome.ok, outcome.code << ": " << outcome.message);
  CHECK(count_lines(wait_for_file_lines(dir.file("out"), 1)) == 1);
  auto exit = target.terminate();
  REQUIRE(exit);
  CHECK(WEXITSTATUS(*exit) == 0);
}

TEST_CASE("no safe point: the main thread stays inside libc (qsort) past the timeout") {
  TempDir dir;
  auto target = start(python_target("/usr/bin/python3", "libc_spin"));
  // "ready" comes just before the call into qsort (~3 s of CPU): 100 ms of CPU after it are spent there.
  const auto at_ready = cpu_time(target.pid());
  REQUIRE(wait_until([&] { return cpu_time(target.pid()) >= at_ready + 100ms; }));
  inj::InjectOptions options;
  options.timeout = 400ms;
  auto result = inj::inject(target.pid(), payload_library(), kStart, dir.file("out"), options);
  check_error(result, inj::InjectError::NoSafePoint, "never reached a safe point in 400 ms");
  CHECK_MESSAGE(result.error().message.find("last seen running code inside libc.so.6") != std::string::npos,
                result.error().message);
  // Unchanged: the sort finishes and the target carries on.
  CHECK(target.wait_for_line("sorted", 30000ms));
  check_unharmed(target, dir.file("out"));
}

TEST_CASE("a target traced by someone else is refused") {
  TempDir dir;
  auto target = start(python_target("/usr/bin/python3", "idle"));
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t tracer = fork();
  if (tracer == 0) {
    close(ready[0]);
    int ok = ptrace(PTRACE_SEIZE, target.pid(), nullptr, nullptr) == 0;
    (void)!write(ready[1], &ok, sizeof ok);
    pause();
    _exit(0);
  }
  close(ready[1]);
  int seized = 0;
  REQUIRE(read(ready[0], &seized, sizeof seized) == sizeof seized);
  close(ready[0]);
  REQUIRE(seized);
  auto result = inj::inject(target.pid(), payload_library(), kStart, dir.file("out"));
  check_error(result, inj::InjectError::AlreadyTraced, "is already traced by pid " + std::to_string(tracer));
  kill(tracer, SIGKILL);  // the kernel detaches it
  waitpid(tracer, nullptr, 0);
  check_unharmed(target, dir.file("out"));
}

TEST_CASE("a job-control stopped target is refused, and stays stopped") {
  TempDir dir;
  auto target = start(python_target("/usr/bin/python3", "idle"));
  kill(target.pid(), SIGSTOP);
  REQUIRE(wait_until([&] { return process_state(target.pid()) == 'T'; }));
  auto result = inj::inject(target.pid(), payload_library(), kStart, dir.file("out"));
  check_error(result, inj::InjectError::TargetStopped, "kill -CONT " + std::to_string(target.pid()));
  kill(target.pid(), SIGCONT);
  check_unharmed(target, dir.file("out"));
}

TEST_CASE("invalid arguments") {
  CHECK(inj::inject(0, payload_library(), kStart, "x").error().code == inj::InjectError::InvalidArgument);
  CHECK(inj::inject(getpid(), payload_library(), "", "x").error().code == inj::InjectError::InvalidArgument);
  CHECK(inj::inject(getpid(), payload_library(), kStart, std::string(70000, 'x')).error().code ==
        inj::InjectError::InvalidArgument);
}
