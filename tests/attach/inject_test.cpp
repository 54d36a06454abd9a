// Injections that must succeed: each kind of target, the private mount namespace, signals during the
// hijack, and the interpreter matrix. After each one: the payload ran in the target (its file), and
// the target is alive and behaves as before (status line, its own work, a clean exit).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <thread>

#include "hotd/injector/injector.hpp"
#include "target_process.hpp"

namespace inj = hotd::injector;
using namespace hotd::attach_test;

namespace {

const char* kStart = "hotd_probe_start";

long iterations_of(const std::string& status_line) {
  // "status <iterations> ok"
  return std::stol(status_line.substr(7));
}

// Starts `mode` under `interpreter` and waits for it to be ready.
std::optional<TargetProcess> start_target(const std::string& interpreter, const std::string& mode,
                                          std::string* ready_line = nullptr) {
  auto target = TargetProcess::spawn(python_target(interpreter, mode));
  REQUIRE(target);
  auto ready = target->wait_for_line("ready", 10000ms);
  REQUIRE_MESSAGE(ready, "target " << mode << " under " << interpreter << " did not start");
  if (ready_line) *ready_line = *ready;
  return target;
}

// Injects the probe, which appends one line to `output` (our path; `output_in_target` is the path the
// target sees), and checks that it ran inside the target.
inj::InjectReport inject_probe(TargetProcess& target, const std::string& output, int expected_lines,
                               const std::string& output_in_target = {}, const std::string& library = payload_library(),
                               const char* function = kStart) {
  const std::string argument = output_in_target.empty() ? output : output_in_target;
  auto result = inj::inject(target.pid(), library, function, argument);
  REQUIRE_MESSAGE(result.ok(), inj::to_string(result.error().code) << ": " << result.error().message);
  CHECK(result->start_result == 42);
  std::string content = wait_for_file_lines(output, expected_lines);
  CHECK(count_lines(content) == expected_lines);
  CHECK(content.find("pid=" + std::to_string(target.pid()) + " arg=" + argument + "\n") != std::string::npos);
  return *result;
}

// The target answers SIGUSR1 with "status <n> ok", keeps working, and exits cleanly on SIGTERM.
void check_behaves(TargetProcess& target, bool keeps_iterating) {
  REQUIRE(target.alive());
  auto first = target.status();
  REQUIRE_MESSAGE(first, "no status line after the injection");
  CHECK(first->ends_with(" ok"));
  if (keeps_iterating) {
    // Its work goes on (an iteration can take a while when four threads share two busy cores).
    long latest = iterations_of(*first);
    for (int i = 0; i < 100 && latest <= iterations_of(*first); ++i) {
      std::this_thread::sleep_for(50ms);
      auto next = target.status();
      REQUIRE(next);
      CHECK(next->ends_with(" ok"));
      latest = iterations_of(*next);
    }
    CHECK(latest > iterations_of(*first));
  }
}

void check_clean_exit(TargetProcess& target) {
  auto status = target.terminate();
  REQUIRE_MESSAGE(status, "target did not exit on SIGTERM");
  CHECK_MESSAGE(WIFEXITED(*status), "target died of signal " << (WIFSIGNALED(*status) ? WTERMSIG(*status) : 0));
  CHECK(WEXITSTATUS(*status) == 0);
}

std::string ask_server(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    std::string line = request + "\n";
    if (write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
      char buffer[256];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof buffer)) > 0) reply.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  return reply;
}

void idle_scenario(const std::string& interpreter) {
  TempDir dir;
  auto target = start_target(interpreter, "idle");
  auto before = target->status();
  REQUIRE(before);
  inject_probe(*target, dir.file("out"), 1);
  // A second injection reuses the loaded library and runs the start function again.
  inject_probe(*target, dir.file("out"), 2);
  check_behaves(*target, true);
  check_clean_exit(*target);
}

void input_scenario(const std::string& interpreter) {
  TempDir dir;
  auto target = start_target(interpreter, "input");
  REQUIRE(wait_until([&] { return process_state(target->pid()) == 'S'; }));  // blocked in read()
  inject_probe(*target, dir.file("out"), 1);
  check_behaves(*target, false);
  // The interrupted read() was restarted: the input still arrives, whole.
  REQUIRE(target->write_line("hello after injection"));
  auto got = target->wait_for_line("got ");
  REQUIRE(got);
  CHECK(*got == "got hello after injection");
  auto status = target->wait_exit();  // it exits by itself after the line
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

void server_scenario(const std::string& mode) {
  TempDir dir;
  std::string ready;
  auto target = start_target("/usr/bin/python3", mode, &ready);
  int port = std::stoi(ready.substr(6));
  CHECK(ask_server(port, "before") == "pong before\n");
  REQUIRE(wait_until([&] { return process_state(target->pid()) == 'S'; }));  // back in select() or accept()
  inject_probe(*target, dir.file("out"), 1);
  CHECK(ask_server(port, "after") == "pong after\n");
  inject_probe(*target, dir.file("out"), 2);
  CHECK(ask_server(port, "again") == "pong again\n");
  check_behaves(*target, false);
  check_clean_exit(*target);
}

void busy_scenario(const std::string& mode, int injections) {
  TempDir dir;
  auto target = start_target("/usr/bin/python3", mode);
  for (int i = 1; i <= injections; ++i) {
    auto report = inject_probe(*target, dir.file("out"), i);
    MESSAGE(mode << " injection " << i << ": " << report.safe_point_attempts << " tries, "
                 << report.duration.count() << " us");
  }
  check_behaves(*target, true);
  check_clean_exit(*target);
}

}  // namespace

TEST_CASE("inspect_target describes Debian's python3") {
  auto target = start_target("/usr/bin/python3", "idle");
  auto info = inj::inspect_target(target->pid());
  REQUIRE_MESSAGE(info.ok(), info.error().message);
  CHECK(info->pid == target->pid());
  CHECK(info->python_version.major == 3);
  CHECK(info->python_version.minor >= 7);
  CHECK(info->python_version.text.rfind("3.", 0) == 0);
  CHECK(info->libc.find("libc.so.6") != std::string::npos);
  CHECK_FALSE(info->other_mount_namespace);
  CHECK_FALSE(info->supports_remote_exec);
  CHECK(info->root == "/proc/" + std::to_string(target->pid()) + "/root");
}

TEST_CASE("idle target (time.sleep loop), injected twice") { idle_scenario("/usr/bin/python3"); }

TEST_CASE("target blocked in input() still gets its input") { input_scenario("/usr/bin/python3"); }

TEST_CASE("target blocked in select() still serves") { server_scenario("select"); }

TEST_CASE("target blocked in accept() still serves") { server_scenario("accept"); }

TEST_CASE("CPU-busy target") { busy_scenario("busy", 5); }

TEST_CASE("multi-threaded target") { busy_scenario("threads", 5); }

TEST_CASE("allocation-heavy target") { busy_scenario("alloc", 10); }

TEST_CASE("target in a private mount namespace gets a staged copy") {
  // The library lives in our /tmp, which the target (private tmpfs on /tmp) cannot see.
  TempDir ours;
  std::string library = ours.file("libprobe.so");
  std::filesystem::copy_file(payload_library(), library);
  auto target = TargetProcess::spawn(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
       // The script is opened before the mount: the checkout itself may live under /tmp.
       "exec 3< " + targets_script() + " && mount -t tmpfs tmpfs /tmp && exec /usr/bin/python3 -u /dev/fd/3 idle"});
  REQUIRE(target);
  REQUIRE(target->wait_for_line("ready", 10000ms));
  const std::string root = "/proc/" + std::to_string(target->pid()) + "/root";
  REQUIRE_FALSE(std::filesystem::exists(root + library));

  auto info = inj::inspect_target(target->pid());
  REQUIRE(info.ok());
  CHECK(info->other_mount_namespace);

  for (int round = 1; round <= 2; ++round) {
    auto report = inject_probe(*target, root + "/tmp/probe-out", round, "/tmp/probe-out", library);
    CHECK(report.staged);
    CHECK(report.library_path_in_target.rfind("/dev/shm/hotd-", 0) == 0);
    // The copy is removed once loaded, and the second round used the same name (one load).
    CHECK_FALSE(std::filesystem::exists(root + report.library_path_in_target));
  }
  check_behaves(*target, true);
  check_clean_exit(*target);
}

TEST_CASE("a signal arriving during the hijack is re-delivered after the restore") {
  TempDir dir;
  auto target = start_target("/usr/bin/python3", "idle");
  auto result = inj::inject(target->pid(), payload_library(), "hotd_probe_start_with_signal", dir.file("out"));
  REQUIRE_MESSAGE(result.ok(), result.error().message);
  CHECK(result->redelivered_signals == 1);
  // The SIGUSR1 the payload raised reaches the target's Python handler after we detached.
  auto status = target->wait_for_line("status ");
  REQUIRE(status);
  CHECK(status->ends_with(" ok"));
  CHECK(count_lines(wait_for_file_lines(dir.file("out"), 1)) == 1);
  check_behaves(*target, true);
  check_clean_exit(*target);
}

// The interpreter matrix: Debian's python3 and every pyenv CPython from 3.7 on. A missing
// interpreter is reported as skipped by ctest (exit 77, main.cpp), never as passed.
#define HOTD_INTERPRETER_CASE(SERIES)                                                        \
  TEST_CASE("interpreter pyenv " SERIES ": idle and input() targets") {                       \
    const std::string python = pyenv_interpreter(SERIES);                                    \
    if (python.empty()) {                                                                    \
      skip("no pyenv CPython " SERIES ".x in /root/.pyenv/versions");                         \
      return;                                                                                \
    }                                                                                        \
    MESSAGE("interpreter: " << python);                                                      \
    idle_scenario(python);                                                                   \
    input_scenario(python);                                                                  \
  }

HOTD_INTERPRETER_CASE("3.7")
HOTD_INTERPRETER_CASE("3.8")
HOTD_INTERPRETER_CASE("3.9")
HOTD_INTERPRETER_CASE("3.10")
HOTD_INTERPRETER_CASE("3.11")
HOTD_INTERPRETER_CASE("3.12")
HOTD_INTERPRETER_CASE("3.13")

TEST_CASE("interpreter /usr/bin/python3: input() target") { input_scenario("/usr/bin/python3"); }
