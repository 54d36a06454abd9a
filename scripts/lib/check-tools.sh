#!/usr/bin/env bash
# Fails with a clear message when a tool the build needs is still missing after installation.
set -euo pipefail
for tool in g++ cmake pkg-config npm /usr/bin/python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "hotd setup: '$tool' is not available after installation; see the messages above" >&2
    exit 1
  fi
done
