#!/usr/bin/env bash
# The demo: what hotd would patch when examples/diff-demo/before.py is saved as after.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hotd="${HOTD_BUILD_DIR:-$root/build}/server/hotd"
echo "== hotd diff examples/diff-demo/before.py examples/diff-demo/after.py"
"$hotd" diff "$root/examples/diff-demo/before.py" "$root/examples/diff-demo/after.py"
