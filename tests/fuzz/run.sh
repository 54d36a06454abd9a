#!/usr/bin/env bash
# Fuzzes one harness for a given time: run.sh <build-fuzz>/tests/fuzz/<harness>_fuzzer SECONDS [libFuzzer flags]
# Starts from the seeds in tests/fuzz/corpus/<harness>/ plus what earlier runs found (kept next to the
# binary, in corpus/<harness>/); a crash or hang is written to artifacts/ there and fails the run.
set -euo pipefail
binary="$1"
seconds="$2"
shift 2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
harness="$(basename "$binary" _fuzzer)"
out="$(dirname "$binary")"
mkdir -p "$out/corpus/$harness" "$out/artifacts"
dictionary=()
if [ -f "$here/$harness.dict" ]; then dictionary=("-dict=$here/$harness.dict"); fi
exec "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/$harness-" "${dictionary[@]}" "$@" "$out/corpus/$harness" "$here/corpus/$harness"
