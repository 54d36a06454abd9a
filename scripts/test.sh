#!/usr/bin/env bash
# The second README command: make sure everything is installed and built, then run every test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${HOTD_BUILD_DIR:-$root/build}"
"$root/scripts/install-deps.sh"
"$root/scripts/install-editors.sh"
"$root/scripts/build.sh"
ctest --test-dir "$build_dir" --output-on-failure -j "${HOTD_JOBS:-2}"
