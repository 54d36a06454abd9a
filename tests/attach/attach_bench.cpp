// Attach-time benchmark (not a test): from the start of inject() until the payload's thread has
// written its file, for fresh idle targets, and for the same target injected again.
//
//   hotd_attach_bench [runs=50] [interpreter=/usr/bin/python3] [mode=idle]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "hotd/injector/injector.hpp"
#include "target_process.hpp"

namespace inj = hotd::injector;
using namespace hotd::attach_test;
using Clock = std::chrono::steady_clock;

namespace {

void summarize(const char* label, std::vector<double> ms) {
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  std::printf("%-34s n=%zu  median %.2f ms  p90 %.2f ms  min %.2f ms  max %.2f ms\n", label, ms.size(), ms[ms.size() / 2],
              ms[ms.size() * 9 / 10], ms.front(), ms.back());
}

// Milliseconds from inject() to the payload's line in `output`, or a negative value on failure.
double timed_injection(TargetProcess& target, const std::string& output, int expected_lines) {
  auto started = Clock::now();
  auto result = inj::inject(target.pid(), payload_library(), "hotd_probe_start", output);
  if (!result) {
    std::fprintf(stderr, "inject: %s\n", result.error().message.c_str());
    return -1;
  }
  for (;;) {
    if (count_lines(read_file(output)) >= expected_lines) break;
    if (Clock::now() - started > 5s) return -1;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - started).count();
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 50;
  std::string python = argc > 2 ? argv[2] : "/usr/bin/python3";
  std::string mode = argc > 3 ? argv[3] : "idle";
  TempDir dir;
  std::vector<double> fresh, again;
  for (int i = 0; i < runs; ++i) {
    auto target = TargetProcess::spawn(python_target(python, mode));
    if (!target || !target->wait_for_line("ready", 10000ms)) return 1;
    std::this_thread::sleep_for(20ms);
    std::string output = dir.file("out" + std::to_string(i));
    double first = timed_injection(*target, output, 1);
    double second = timed_injection(*target, output, 2);
    if (first < 0 || second < 0) return 1;
    fresh.push_back(first);
    again.push_back(second);
    target->terminate();
  }
  std::printf("%s, %s targets:\n", python.c_str(), mode.c_str());
  summarize("attach -> payload ran (first)", fresh);
  summarize("attach -> payload ran (again)", again);
  return 0;
}
