#!/usr/bin/env bash
# Runs Jaeger (v2, all-in-one: OTLP receiver on :4318/:4317, UI and query API
# on :16686, in-memory storage) with deploy/jaeger/config.yaml, on 127.0.0.1
# unless JAEGER_LISTEN_HOST says otherwise. Without Docker: the first run
# builds the binary from the Go module proxy (Go 1.24+, a few minutes) into
# ${MESH_CACHE:-~/.cache/mesh}/bin; later runs start at once.
#   bash deploy/jaeger/run.sh        # then: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 npm start
# With Docker instead:
#   docker run --rm -p 16686:16686 -p 4318:4318 -v "$PWD/deploy/jaeger:/etc/mesh" \
#     -e JAEGER_LISTEN_HOST=0.0.0.0 jaegertracing/jaeger:2.13.0 --config /etc/mesh/config.yaml
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${JAEGER_MODULE_VERSION:-v1.76.0}" # Go module release v1.76.0 carries Jaeger v2.13.0 (cmd/jaeger)
bin="${MESH_CACHE:-$HOME/.cache/mesh}/bin/jaeger-$version"
if [ ! -x "$bin" ]; then
  command -v go > /dev/null || { echo "jaeger: needs Go to build the binary (or use Docker, see this script's header)" >&2; exit 1; }
  echo "[jaeger] building $version from the Go module proxy (once)…" >&2
  dir="$(go mod download -json "github.com/jaegertracing/jaeger@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  src="$(mktemp -d)"
  trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
  # The module has replace directives, so it is built as the main module from a copy of its source.
  cp -r "$dir/." "$src" && chmod -R u+w "$src"
  mkdir -p "$(dirname "$bin")"
  (cd "$src" && go build -o "$bin.tmp" ./cmd/jaeger) && mv "$bin.tmp" "$bin"
fi
exec "$bin" --config "$here/config.yaml"
