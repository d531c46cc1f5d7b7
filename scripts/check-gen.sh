#!/usr/bin/env bash
# Fails when gen/ (from proto/, buf.gen.yaml) or test/gen/ (from test/proto/,
# buf.gen.test.yaml) differs from what `buf generate` produces: generated code
# is committed and must never drift from the contracts.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
# check <template> <output dir>: generates into $tmp and diffs with the committed copy.
check() {
  node_modules/.bin/buf generate --template "$1" -o "$tmp"
  if ! diff -r "$tmp/$2" "$2" > "$tmp/diff.txt"; then
    echo "$2/ is stale: run 'npm run gen' and commit the result. Differences:" >&2
    head -n 40 "$tmp/diff.txt" >&2
    status=1
  fi
}
check buf.gen.yaml gen
check buf.gen.test.yaml test/gen
[ "$status" -eq 0 ] && echo "gen/ matches proto/, test/gen/ matches test/proto/"
exit "$status"
