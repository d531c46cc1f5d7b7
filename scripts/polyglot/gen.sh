#!/usr/bin/env bash
# `npm run gen:polyglot [-- python|go ...]`: client stubs for the polyglot
# examples from proto/ (the mesh's contracts and the google/api, google/rpc
# files they import), for the languages named (default: both).
#   python → examples/python/gen: messages, .pyi and grpc stubs, by grpcio-tools'
#            protoc in the venv of scripts/polyglot/python-env.sh (or $MESH_PYTHON)
#   go     → examples/go/gen: buf with buf.gen.polyglot.yaml and the plugins of
#            scripts/polyglot/go-plugins.sh; google/* map to google.golang.org/genproto
# Neither directory is committed (.gitignore): both are rebuilt from scratch.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The googleapis files the mesh imports, directly or through each other (as in buf.gen.yaml).
GOOGLE_PROTOS=(google/api/annotations.proto google/api/http.proto
  google/rpc/code.proto google/rpc/error_details.proto google/rpc/status.proto)

gen_python() {
  local py out=examples/python/gen
  local -a mesh
  py="${MESH_PYTHON:-$(bash scripts/polyglot/python-env.sh)}"
  rm -rf "$out"
  mkdir -p "$out"
  mapfile -t mesh < <(cd proto && find mesh -name '*.proto' | LC_ALL=C sort)
  # grpc_tools.protoc adds its bundled google/protobuf/*.proto to the include path itself.
  "$py" -m grpc_tools.protoc -I proto -I node_modules/google-proto-files \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" "${mesh[@]}" "${GOOGLE_PROTOS[@]}"
  echo "gen:polyglot: python → $out ($("$py" -m grpc_tools.protoc --version))"
}

gen_go() {
  local plugins
  plugins="$(bash scripts/polyglot/go-plugins.sh)"
  PATH="$plugins:$PATH" node_modules/.bin/buf generate --template buf.gen.polyglot.yaml
  echo "gen:polyglot: go → examples/go/gen ($("$plugins/protoc-gen-go" --version), $("$plugins/protoc-gen-go-grpc" --version))"
}

[ "$#" -gt 0 ] || set -- python go
for lang in "$@"; do
  case "$lang" in
    python | go) "gen_$lang" ;;
    *) echo "gen:polyglot: unknown language \"$lang\" (python, go)" >&2; exit 2 ;;
  esac
done
