// Safe points under fire: inject into 240 fresh allocation-heavy targets (malloc, mmap, munmap and
// brk all the time), six at a time, at a random moment of their work. Every one must run the payload,
// keep working and exit cleanly. Without the safe-point rule most of them crash (docs/ATTACH.md).
#include <signal.h>
#include <sys/wait.h>

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "hotd/injector/injector.hpp"
#include "target_process.hpp"

namespace inj = hotd::injector;
using namespace hotd::attach_test;

namespace {

// Empty when the round went well, otherwise what went wrong. `deferred` is set when the first
// interrupt found the thread at an unsafe point (inside libc or a memory system call).
std::string one_round(int round, const std::string& directory, bool& deferred) {
  auto target = TargetProcess::spawn(python_target("/usr/bin/python3", "alloc"));
  if (!target) return "spawn failed";
  if (!target->wait_for_line("ready", 20000ms)) return "target did not start";
  std::minstd_rand random(static_cast<unsigned>(round));
  std::this_thread::sleep_for(std::chrono::milliseconds(random() % 30));
  std::string output = directory + "/out" + std::to_string(round);
  // This test is about crashes, not speed: on a loaded machine an allocation-heavy thread can stay
  // inside libc for seconds, so it gets more time to reach a safe point than the 2 s default.
  inj::InjectOptions options;
  options.timeout = 10000ms;
  auto result = inj::inject(target->pid(), payload_library(), "hotd_probe_start", output, options);
  if (!result) return std::string(inj::to_string(result.error().code)) + ": " + result.error().message;
  deferred = result->safe_point_attempts > 1;
  std::string content = wait_for_file_lines(output, 1);
  if (content != "pid=" + std::to_string(target->pid()) + " arg=" + output + "\n") return "payload output: " + content;
  auto status = target->status();
  if (!status) return "no status line after injection (alive: " + std::to_string(target->alive()) + ")";
  if (!status->ends_with(" ok")) return "target reports " + *status;
  auto exit = target->terminate(10000ms);
  if (!exit) return "did not exit on SIGTERM";
  if (WIFSIGNALED(*exit)) return "died of signal " + std::to_string(WTERMSIG(*exit));
  if (WEXITSTATUS(*exit) != 0) return "exit status " + std::to_string(WEXITSTATUS(*exit));
  return {};
}

}  // namespace

TEST_CASE("240 fresh allocation-heavy targets, zero crashes") {
  constexpr int kTargets = 240;
  constexpr int kParallel = 6;
  TempDir dir;
  std::atomic<int> next{0}, deferred_count{0};
  std::mutex lock;
  std::vector<std::string> failures;
  std::vector<std::thread> workers;
  for (int w = 0; w < kParallel; ++w) {
    workers.emplace_back([&] {
      for (int round; (round = next++) < kTargets;) {
        bool deferred = false;
        std::string failure = one_round(round, dir.path(), deferred);
        deferred_count += deferred;
        if (!failure.empty()) {
          std::lock_guard guard(lock);
          failures.push_back("target " + std::to_string(round) + ": " + failure);
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  for (const std::string& failure : failures) MESSAGE(failure);
  CHECK(failures.empty());
  const int succeeded = kTargets - static_cast<int>(failures.size());
  MESSAGE(succeeded << " of " << kTargets << " injections succeeded; " << deferred_count.load()
                    << " first found the thread at an unsafe point and waited");
}
