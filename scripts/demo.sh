#!/usr/bin/env bash
# The demo: a running program picks up a saved edit without restarting, and keeps its state.
# Starts examples/shop/shop.py under `hotd run` (on a copy, in a private runtime directory), edits
# price_of() the way an editor saves a file, and shows the same process printing the new totals.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hotd="${HOTD_BUILD_DIR:-$root/build}/server/hotd"
work="$(mktemp -d)"
export HOTD_RUNTIME_DIR="$work/runtime"
cleanup() {
  [ -n "${app:-}" ] && kill "$app" 2>/dev/null || true
  "$hotd" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cp "$root/examples/shop/shop.py" "$work/shop.py"
echo "== hotd run shop.py   (a long-running app with a cart in memory)"
"$hotd" run --verbose "$work/shop.py" 24 >"$work/out.txt" 2>"$work/err.txt" &
app=$!
for _ in $(seq 100); do grep -q "tick  4" "$work/out.txt" 2>/dev/null && break; sleep 0.05; done
cat "$work/out.txt"

echo
echo "== save an edit: price_of() now gives 50% off coffee"
python3 - "$work/shop.py" <<'PY'
import sys
path = sys.argv[1]
source = open(path).read().replace(
    "    return PRICES[item] * quantity\n",
    "    discount = 0.5 if item == \"coffee\" else 1.0\n    return PRICES[item] * quantity * discount\n")
open(path + ".tmp", "w").write(source)
PY
mv "$work/shop.py.tmp" "$work/shop.py"   # saved the way many editors do: write a temp file, rename it
lines_before=$(wc -l <"$work/out.txt")
for _ in $(seq 100); do grep -q "hotd: updated" "$work/err.txt" 2>/dev/null && break; sleep 0.02; done
sleep 1
echo "-- the app said on stderr:"
sed 's/^/   /' "$work/err.txt"
echo "-- and kept running, same pid, same cart, new prices:"
tail -n +"$((lines_before + 1))" "$work/out.txt" | head -4

echo
echo "== hotd ps"
"$hotd" ps
if ! grep -q "hotd: updated shop.price_of" "$work/err.txt"; then
  echo "demo failed: the running app did not report the patch" >&2
  exit 1
fi
echo
echo "The process was patched in place: no restart, state intact."
