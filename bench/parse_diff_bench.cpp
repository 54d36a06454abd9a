// Parse + diff of a one-line edit in large modules: what one save costs the daemon before anything is
// sent to a process. Compares a fresh parse of the new text with an incremental reparse that keeps
// the previous tree (what the daemon does), at 5,000 and 50,000 lines.
#include <algorithm>
#include <string>

#include <benchmark/benchmark.h>

#include "hotd/parser/patch_plan.hpp"
#include "hotd/parser/python_document.hpp"
#include "hotd/protocol/plan_json.hpp"

namespace {

using namespace hotd;

// A module of roughly `lines` lines: classes with methods and properties, functions, statements.
std::string make_module(int lines) {
  std::string source = "\"\"\"Generated module.\"\"\"\nimport os\nimport sys\n\nLIMIT = 10\n\n";
  int index = 0;
  while (std::count(source.begin(), source.end(), '\n') < lines) {
    const std::string n = std::to_string(index++);
    source += "class Model" + n + "(Base):\n    \"\"\"A model.\"\"\"\n    rate = " + n + "\n\n"
              "    def __init__(self, value=0):\n        self.value = value  # keep it\n\n"
              "    def compute(self, x, y=2):\n        total = self.value + x * y\n        for i in range(3):\n"
              "            total += i\n        return total\n\n"
              "    @property\n    def doubled(self):\n        return self.value * 2\n\n\n"
              "def helper_" + n + "(a, b):\n    if a > b:\n        return a - b\n    return b - a\n\n\n";
  }
  return source;
}

// The text with one line changed in the middle: `return a - b` becomes `return a - b + 1` there.
std::string edit_middle(const std::string& source) {
  const std::size_t at = source.find("        return a - b\n", source.size() / 2);
  std::string edited = source;
  edited.insert(at + std::string("        return a - b").size(), " + 1");
  return edited;
}

void BM_FullParseAndDiff(benchmark::State& state) {
  const std::string before = make_module(static_cast<int>(state.range(0)));
  const std::string after = edit_middle(before);
  const parser::Module baseline = parser::parse_module(before);
  for (auto _ : state) {
    const parser::Module module = parser::parse_module(after);
    const parser::Plan plan = parser::diff_modules(baseline, module);
    benchmark::DoNotOptimize(plan.changes.data());
  }
  state.counters["bytes"] = static_cast<double>(after.size());
}

// The daemon keeps the previous tree: each iteration is one real one-line edit, alternating between
// the two versions, reparsed incrementally and diffed against the process's baseline.
void BM_IncrementalParseAndDiff(benchmark::State& state) {
  const std::string before = make_module(static_cast<int>(state.range(0)));
  const std::string after = edit_middle(before);
  const parser::Module baseline = parser::parse_module(before);
  parser::PythonDocument document(before);
  bool edited = false;
  std::size_t changes = 0;
  for (auto _ : state) {
    edited = !edited;
    document.update(edited ? after : before);
    const parser::Plan plan = parser::diff_modules(baseline, document.module());
    changes += plan.changes.size();
    benchmark::DoNotOptimize(plan.changes.data());
  }
  benchmark::DoNotOptimize(changes);
}

// Everything the daemon does for one save to one process: incremental reparse, diff, plan to JSON.
void BM_SaveToPlanJson(benchmark::State& state) {
  const std::string before = make_module(static_cast<int>(state.range(0)));
  const std::string after = edit_middle(before);
  const parser::Module baseline = parser::parse_module(before);
  parser::PythonDocument document(before);
  bool edited = false;
  for (auto _ : state) {
    edited = !edited;
    document.update(edited ? after : before);
    const parser::Plan plan = parser::diff_modules(baseline, document.module());
    const std::string wire = protocol::plan_to_json(plan, document.module()).dump();
    benchmark::DoNotOptimize(wire.data());
  }
}

}  // namespace

BENCHMARK(BM_FullParseAndDiff)->Arg(5000)->Arg(50000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IncrementalParseAndDiff)->Arg(5000)->Arg(50000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SaveToPlanJson)->Arg(5000)->Arg(50000)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
