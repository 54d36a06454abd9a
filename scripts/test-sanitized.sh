#!/usr/bin/env bash
# Builds hotd and the C++ tests with AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer
# into build-asan/, then runs the C++ tests, the CLI test, and the end-to-end tests that drive the daemon
# (lifecycle, patching, LSP transcripts and hostile inputs, faults) against the instrumented hotd. The
# agent stays uninstrumented: it loads into Python processes. Any sanitizer report, also one from a
# daemon in the background, is written to build-asan/sanitizer-reports/ and fails the run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${HOTD_ASAN_BUILD_DIR:-$root/build-asan}"
jobs="${HOTD_JOBS:-2}"
# -O1 -g1 (line tables): what the sanitizers' reports need, and much quicker to compile than -O2 -g.
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DHOTD_SANITIZE=address,undefined -DHOTD_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir" -j "$jobs" --target hotd hotd_unit_tests hotd_lsp_unit_tests
reports="$build_dir/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# A small quarantine: the fault tests bound the daemon's peak memory.
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:quarantine_size_mb=16"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1"
export HOTD_SANITIZED=1  # tests that cannot run under the sanitizers say so and skip (docs/RELIABILITY.md)
# Not here: conformance (Python only), attach (ptrace into targets; no daemon code), editors, benchmarks,
# and C++ test programs not among the targets built above (ctest lists them as *_NOT_BUILT).
status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" \
  -E '^(conformance|attach|e2e\.test_attach|editors|bench)|_NOT_BUILT' || status=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "hotd: sanitizer reports in $reports:" >&2
  head -n 60 "$reports"/* >&2
  status=1
fi
exit "$status"
