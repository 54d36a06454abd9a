#!/usr/bin/env bash
# Installs everything hotd needs to build and test on Debian bookworm, from apt and the npm registry.
# Idempotent: installs only what is missing, and waits for the apt lock instead of failing on it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

apt_packages=(
  g++ cmake make pkg-config git ca-certificates ccache
  libboost1.81-dev nlohmann-json3-dev doctest-dev libtree-sitter-dev libcli11-dev libbenchmark-dev
  python3 python3-dev python3-pytest
  python3-numpy python3-pandas valgrind
  neovim emacs-nox elpa-eglot chromium libkrb5-dev tmux aha
  clang-14 libclang-rt-14-dev  # libFuzzer and the sanitizer runtimes for clang (scripts/fuzz.sh)
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "hotd setup: installing from apt: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get -o DPkg::Lock::Timeout=600 update -q
  as_root apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
else
  echo "hotd setup: apt packages already installed"
fi

# tree-sitter-python is fetched by CMake (cmake/TreeSitterPython.cmake) with `npm pack`, pinned by
# SHA-256 and cached in ${HOTD_CACHE_DIR:-~/.cache/hotd}; nothing to do here beyond having npm.
"$root/scripts/lib/check-tools.sh"
