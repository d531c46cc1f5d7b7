#!/usr/bin/env bash
# Installs (once) the protoc plugins `npm run gen:polyglot` uses for Go:
# protoc-gen-go and protoc-gen-go-grpc from the Go module proxy, at the
# versions below, into ${MESH_CACHE:-~/.cache/mesh}/bin. Prints that bin dir.
# Re-run after changing the versions (a plugin of another version is replaced).
#   PATH="$(bash scripts/polyglot/go-plugins.sh):$PATH"
set -euo pipefail
PROTOBUF_VERSION=v1.36.12     # google.golang.org/protobuf (protoc-gen-go)
GRPC_PLUGIN_VERSION=v1.6.2    # google.golang.org/grpc/cmd/protoc-gen-go-grpc
bin="${MESH_CACHE:-$HOME/.cache/mesh}/bin"

go="$(command -v go || true)"
[ -n "$go" ] || go=/usr/local/go/bin/go
[ -x "$go" ] || { echo "go-plugins: Go is required (1.25+; not on PATH, not in /usr/local/go/bin)" >&2; exit 1; }

# has NAME WANT: the cached plugin runs and reports version WANT (without the
# "v"). Output is captured first: `… | grep -q` could SIGPIPE it under pipefail.
has() {
  local out
  out="$("$bin/$1" --version 2>/dev/null)" || return 1
  [ "${out##* }" = "$2" ] || [ "${out##* }" = "v$2" ]
}

# install PACKAGE VERSION: go install into a scratch dir, then move the binary
# into place (atomic; replaces whatever was there, even a non-Go file).
install() {
  local tmp
  echo "go-plugins: installing $1@$2 into $bin" >&2
  tmp="$(mktemp -d "$bin/.install.XXXXXX")"
  # GOWORK=off, outside any module: only the requested module is resolved.
  if ! (cd / && GOWORK=off GOBIN="$tmp" "$go" install "$1@$2") >&2; then
    rm -rf "$tmp"
    echo "go-plugins: go install $1@$2 failed" >&2
    exit 1
  fi
  mv -f "$tmp/${1##*/}" "$bin/${1##*/}"
  rm -rf "$tmp"
}

mkdir -p "$bin"
# (`if`, not `has || install`: set -e stays in force inside install.)
if ! has protoc-gen-go "${PROTOBUF_VERSION#v}"; then
  install google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOBUF_VERSION"
fi
if ! has protoc-gen-go-grpc "${GRPC_PLUGIN_VERSION#v}"; then
  install google.golang.org/grpc/cmd/protoc-gen-go-grpc "$GRPC_PLUGIN_VERSION"
fi
echo "$bin"
