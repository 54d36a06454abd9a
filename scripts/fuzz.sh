#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) into build-fuzz/ and fuzzes.
#   scripts/fuzz.sh                      every harness for HOTD_FUZZ_SECONDS (30) each, as ctest tests
#   scripts/fuzz.sh parser 3600 [flags]  one harness (framing, agent_frame, parser, agent_protocol) for an hour
# New inputs are kept in build-fuzz/tests/fuzz/corpus/<harness>/, crashes in .../artifacts/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${HOTD_FUZZ_BUILD_DIR:-$root/build-fuzz}"
jobs="${HOTD_JOBS:-2}"
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHOTD_FUZZ=ON \
  -DHOTD_SANITIZE=address,undefined -DHOTD_BUILD_TESTS=OFF -DHOTD_BUILD_BENCHMARKS=OFF \
  -DHOTD_FUZZ_SECONDS="${HOTD_FUZZ_SECONDS:-30}" >/dev/null
cmake --build "$build_dir" -j "$jobs" --target framing_fuzzer agent_frame_fuzzer parser_fuzzer agent_protocol_fuzzer
if [ $# -eq 0 ]; then
  exec ctest --test-dir "$build_dir" -L fuzz --output-on-failure -j "$jobs"
fi
harness="$1"
seconds="${2:-60}"
shift $(($# < 2 ? $# : 2))
exec "$root/tests/fuzz/run.sh" "$build_dir/tests/fuzz/${harness}_fuzzer" "$seconds" "$@"
