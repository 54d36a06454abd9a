#!/usr/bin/env bash
# Configures and builds hotd into build/ (override with HOTD_BUILD_DIR). Two parallel jobs by default:
# the machines this is built on have two cores, and Beast-heavy units need the memory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${HOTD_BUILD_DIR:-$root/build}"
jobs="${HOTD_JOBS:-2}"
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="${HOTD_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build_dir" -j "$jobs"
