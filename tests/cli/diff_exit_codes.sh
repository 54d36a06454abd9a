#!/usr/bin/env bash
# `hotd diff` as a user runs it: exit 0 with a plan, 1 on a syntax error, 2 on usage or I/O errors,
# each with a message that says what went wrong.
set -u
hotd="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
expect() {  # expect <name> <wanted exit> <pattern in output> -- command...
  local name="$1" wanted="$2" pattern="$3"; shift 4
  local output status
  output="$("$@" 2>&1)"; status=$?
  if [ "$status" -ne "$wanted" ] || ! grep -qE -- "$pattern" <<<"$output"; then
    echo "FAIL $name: exit $status (wanted $wanted), output:"; echo "$output" | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
printf 'def f():\n    return 1\n' >"$work/old.py"
printf 'def f():\n    return 2\n' >"$work/new.py"
printf 'def f(:\n    return 2\n' >"$work/broken.py"

expect plan 0 '^update +function +f +line 1' -- "$hotd" diff "$work/old.py" "$work/new.py"
expect json 0 '"op": "update"' -- "$hotd" diff --json "$work/old.py" "$work/new.py"
expect syntax-error 1 'syntax error: line 1, column' -- "$hotd" diff "$work/old.py" "$work/broken.py"
expect missing-file 2 "cannot read '$work/nope.py': No such file" -- "$hotd" diff "$work/old.py" "$work/nope.py"
expect missing-argument 2 'NEW is required|required' -- "$hotd" diff "$work/old.py"
expect help 0 'Exit status' -- "$hotd" diff --help
expect no-command 2 'subcommand' -- "$hotd"
echo "$((7 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
