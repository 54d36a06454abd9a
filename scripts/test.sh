#!/usr/bin/env bash
# The second README command: make sure everything is installed and built, then run every test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${HOTD_BUILD_DIR:-$root/build}"
# Each step says how long it took, so a slow machine shows where the time goes.
step() { local started=$SECONDS; "$@"; local status=$?; echo "hotd test: ${1##*/} took $((SECONDS - started)) s" >&2; return $status; }
step "$root/scripts/install-deps.sh"
step "$root/scripts/install-editors.sh"
step "$root/scripts/build.sh"
# Reliability (docs/RELIABILITY.md): the C++ tests and the daemon's end-to-end and fault tests under
# ASan/LSan/UBSan in build-asan/, then each fuzzer for HOTD_FUZZ_SECONDS (30) in build-fuzz/. A failure
# here still lets the main suite below run, and fails the script at the end. HOTD_SKIP_RELIABILITY=1 skips both.
reliability=0
if [ "${HOTD_SKIP_RELIABILITY:-0}" != 1 ]; then
  step "$root/scripts/test-sanitized.sh" || reliability=1
  step "$root/scripts/fuzz.sh" || reliability=1
fi
trap '[ "$reliability" = 0 ] || { echo "hotd: the sanitizer or fuzz step failed (see above)" >&2; exit 1; }' EXIT
step ctest --test-dir "$build_dir" --output-on-failure -j "${HOTD_JOBS:-2}"
