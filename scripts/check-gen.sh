#!/usr/bin/env bash
# Fails when gen/ differs from what `buf generate` produces from proto/:
# generated code is committed and must never drift from the contracts.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node_modules/.bin/buf generate --template buf.gen.yaml -o "$tmp"
if ! diff -r "$tmp/gen" gen > "$tmp/diff.txt"; then
  echo "gen/ is stale: run 'npm run gen' and commit the result. Differences:" >&2
  head -n 40 "$tmp/diff.txt" >&2
  exit 1
fi
echo "gen/ matches proto/"
