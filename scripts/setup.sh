#!/usr/bin/env bash
# The first README command: install what hotd needs, build it, and run the demo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/install-editors.sh"
"$root/scripts/build.sh"
"$root/scripts/demo.sh"
