// One didChange on a long line: finding the byte offset of an LSP position (UTF-16 units) and
// replacing one character. The same edit at column 0 is the baseline of the run: the cost of a
// change must not grow with its column (it was 93 ms at the end of a 10 MB line).
#include <algorithm>
#include <string>

#include <benchmark/benchmark.h>

#include "lsp_document.hpp"

namespace {

using hotd::server::LspDocument;

// Line 1 (0-based) is `state.range(1)` bytes of ASCII with one 'é' at its end (the walk sees every
// kind of byte); each iteration replaces the character at column `state.range(0)` (clamped).
void BM_DidChangeOnALongLine(benchmark::State& state) {
  const auto length = static_cast<std::size_t>(state.range(1));
  LspDocument document("import sys\n" + std::string(length, 'x') + "é\nvalue = 1\n", 1);
  const auto column = static_cast<std::uint32_t>(std::min<std::int64_t>(state.range(0), state.range(1) - 1));
  bool flip = false;
  for (auto _ : state) {
    flip = !flip;
    document.apply_change({{1, column}, {1, column + 1}}, flip ? "y" : "x");
    benchmark::DoNotOptimize(document.text().data());
  }
}

}  // namespace

BENCHMARK(BM_DidChangeOnALongLine)->Args({0, 10'000'000})->Args({10'000'000, 10'000'000})->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
