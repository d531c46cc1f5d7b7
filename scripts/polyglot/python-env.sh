#!/usr/bin/env bash
# Creates (once) the Python environment the polyglot examples and tests use:
# a venv under ${MESH_CACHE:-~/.cache/mesh}/py with grpcio, grpcio-tools
# (protoc for Python) and grpcio-reflection from PyPI, at the versions below.
# Prints the venv's python. Re-run after changing the versions.
#   PY=$(bash scripts/polyglot/python-env.sh)
set -euo pipefail
GRPC_VERSION=1.85.1
venv="${MESH_CACHE:-$HOME/.cache/mesh}/py"
stamp="$venv/.mesh-grpc-$GRPC_VERSION"
if [ ! -f "$stamp" ]; then
  command -v python3 > /dev/null || { echo "python-env: python3 is required (3.9+)" >&2; exit 1; }
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "grpcio==$GRPC_VERSION" "grpcio-tools==$GRPC_VERSION" "grpcio-reflection==$GRPC_VERSION" >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
