#!/usr/bin/env bash
# Install (when missing) and start the servers the integration tests need,
# all bound to 127.0.0.1 on free ports, with fresh data dirs on every run:
#
#   PostgreSQL  (Debian package `postgresql`)      -> TEST_DATABASE_URL
#   Redis       (Debian package `redis-server`)    -> TEST_REDIS_URL
#   FerretDB    (built from the Go module proxy,   -> TEST_MONGO_URL
#                SQLite backend, no auth)
#
# State lives in $MESH_INFRA_DIR (default <repo>/.data/infra):
#   pids   one line per server: "NAME PID START_TIME [POSTGRES_DATA_DIR]"
#   env    `export TEST_...=...` lines, to be sourced by the test runner
#   */     data dirs and logs
# Stop everything with scripts/infra/down.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WAIT_TIMEOUT="${MESH_INFRA_TIMEOUT:-30}" # seconds, per server
PIDS_FILE="$MESH_INFRA_DIR/pids"
ENV_FILE="$MESH_INFRA_DIR/env"
FERRETDB="$MESH_CACHE/bin/ferretdb"
T0=$SECONDS

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

# Newest /usr/lib/postgresql/<major>/bin that has initdb (empty if none).
# (Numeric sort on the major: the glob alone would put "10" before "9".)
pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then echo "$d"; fi
  done | sort -t/ -k5,5n | tail -n 1
}

# Run a command as the OS user owning the Postgres cluster. initdb/postgres
# refuse to run as root, so as root we use the `postgres` user the Debian
# package creates. Runs from / so the user needs no access to our cwd.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# record NAME PID [EXTRA]: append a started server to the pids file.
record() {
  printf '%s %s %s%s\n' "$1" "$2" "$(proc_start_time "$2")" "${3:+ $3}" >>"$PIDS_FILE"
}

# wait_until NAME PID LOG CMD...: retry CMD (quietly) until it succeeds, the
# server process dies, or WAIT_TIMEOUT passes; fail with the log tail.
wait_until() {
  local name="$1" pid="$2" log="$3"
  shift 3
  local deadline=$((SECONDS + WAIT_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$pid"; then
      log_tail "$log"
      mesh_die "$name (pid $pid) exited during startup"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log_tail "$log"
      mesh_die "$name (pid $pid) not ready after ${WAIT_TIMEOUT}s: $*"
    fi
    sleep 0.2
  done
}

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]; }

# mongo_ping HOST PORT: a real MongoDB wire-protocol round trip ({ping: 1} as
# OP_MSG, expect ok: 1) with nothing but node's standard library, since
# neither mongosh nor a driver can be assumed to be installed.
mongo_ping() {
  if command -v mongosh >/dev/null 2>&1; then
    mongosh --quiet "mongodb://$1:$2/admin" --eval 'quit(db.runCommand({ping: 1}).ok === 1 ? 0 : 1)'
    return
  fi
  command -v node >/dev/null 2>&1 || return 0 # TCP check already passed; nothing better available
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const net = require("net");
    const [host, port] = process.argv.slice(1);
    const cstr = (s) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);
    const i32 = (n) => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b; };
    // BSON {ping: 1 (int32), $db: "admin"}
    const body = Buffer.concat([Buffer.from([0x10]), cstr("ping"), i32(1),
      Buffer.from([0x02]), cstr("$db"), i32(6), cstr("admin"), Buffer.from([0])]);
    const doc = Buffer.concat([i32(body.length + 4), body]);
    // OP_MSG (opcode 2013): flagBits, section kind 0, document
    const payload = Buffer.concat([i32(0), Buffer.from([0]), doc]);
    const msg = Buffer.concat([i32(16 + payload.length), i32(1), i32(0), i32(2013), payload]);
    const sock = net.connect(Number(port), host, () => sock.write(msg));
    sock.setTimeout(3000, () => process.exit(1));
    sock.on("error", () => process.exit(1));
    let buf = Buffer.alloc(0);
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 4 || buf.length < buf.readInt32LE(0)) return;
      // reply: 16-byte header, 4 flag bytes, 1 kind byte, then the document;
      // look for the double field "ok" and require it to be 1.
      const i = buf.indexOf(Buffer.from([0x01, 0x6f, 0x6b, 0x00]), 21);
      process.exit(i >= 0 && buf.readDoubleLE(i + 4) === 1 ? 0 : 1);
    });' "$1" "$2"
}

# Build FerretDB into $FERRETDB. `go install ...@version` does not work here
# (the proxy answers 403 for the module's version list), so download the exact
# module version, build it from a writable copy, and provide the
# build/version/version.txt that the release tooling normally generates (the
# binary panics at startup without it).
build_ferretdb() {
  local go tmp dir
  go="$(command -v go || true)"
  [ -n "$go" ] || go=/usr/local/go/bin/go
  [ -x "$go" ] || mesh_die "Go is needed to build FerretDB (not on PATH, not in /usr/local/go/bin)"
  mesh_log "building FerretDB $MESH_FERRETDB_VERSION with $("$go" version | cut -d' ' -f3) (takes a minute on a cold cache)"
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/mesh-ferretdb.XXXXXX")"
  # Run outside any Go module/workspace, so only the requested module is resolved.
  dir="$(cd "$tmp" && GOFLAGS=-mod=mod GOWORK=off "$go" mod download -json \
    "github.com/FerretDB/FerretDB@$MESH_FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
  [ -n "$dir" ] && [ -d "$dir" ] || { rm -rf "$tmp"; mesh_die "go mod download of FerretDB failed"; }
  cp -R "$dir" "$tmp/src"
  chmod -R u+w "$tmp/src" # the module cache is read-only
  printf '%s\n' "$MESH_FERRETDB_VERSION" >"$tmp/src/build/version/version.txt"
  mkdir -p "$(dirname "$FERRETDB")"
  if ! (cd "$tmp/src" && GOWORK=off "$go" build -trimpath -tags ferretdb_no_postgresql \
    -o "$FERRETDB.tmp.$$" ./cmd/ferretdb) >"$tmp/build.log" 2>&1; then
    log_tail "$tmp/build.log"
    rm -rf "$tmp" "$FERRETDB.tmp.$$"
    mesh_die "building FerretDB failed"
  fi
  mv -f "$FERRETDB.tmp.$$" "$FERRETDB" # atomic: never leave a half-written binary
  rm -rf "$tmp"
}

# True if the cached binary runs and is the wanted version. (Output is captured
# first: `... | grep -q` could SIGPIPE the writer and fail under pipefail.)
ferretdb_ok() {
  local out
  out="$("$FERRETDB" --version 2>/dev/null)" || return 1
  grep -qx "version: $MESH_FERRETDB_VERSION" <<<"$out"
}

# If anything below fails, stop whatever was already started.
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -f "$PIDS_FILE" ]; then
    mesh_log "up.sh failed; stopping the servers started so far"
    bash "$MESH_ROOT/scripts/infra/down.sh" || true
  fi
}
trap on_exit EXIT

# --------------------------------------------------------------------------
# 1. Clean state: stop servers of a previous run, wipe their data.
# --------------------------------------------------------------------------
if [ -f "$PIDS_FILE" ]; then
  mesh_log "stopping servers left over from a previous run"
  bash "$MESH_ROOT/scripts/infra/down.sh"
fi
mkdir -p "$MESH_INFRA_DIR"
rm -rf "${MESH_INFRA_DIR:?}/postgres" "${MESH_INFRA_DIR:?}/redis" "${MESH_INFRA_DIR:?}/ferretdb"
rm -f "$PIDS_FILE" "$ENV_FILE"

# --------------------------------------------------------------------------
# 2. Install what is missing (one apt-get update + install at most).
# --------------------------------------------------------------------------
missing=()
[ -n "$(pg_bindir)" ] || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
# Not a server: the deployment tests render the Kubernetes manifests offline (`kubectl kustomize`).
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
  hash -r
fi
PG_BIN="$(pg_bindir)"
[ -n "$PG_BIN" ] || mesh_die "PostgreSQL binaries not found in /usr/lib/postgresql/*/bin"
command -v redis-server >/dev/null 2>&1 || mesh_die "redis-server not found after install"

ferretdb_ok || build_ferretdb
ferretdb_ok || mesh_die "$FERRETDB does not report version $MESH_FERRETDB_VERSION"

# --------------------------------------------------------------------------
# 3. Start the servers. Redis and FerretDB start in the background first so
#    they boot while Postgres runs initdb; readiness is checked afterwards.
# --------------------------------------------------------------------------
mapfile -t ports < <(free_port 3)
[ "${#ports[@]}" -eq 3 ] || mesh_die "could not get free ports"
PG_PORT="${ports[0]}" REDIS_PORT="${ports[1]}" MONGO_PORT="${ports[2]}"

# --- Redis: in-memory only (no RDB snapshots, no AOF).
REDIS_DIR="$MESH_INFRA_DIR/redis"
mkdir -p "$REDIS_DIR"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
  --daemonize no --dir "$REDIS_DIR" >"$REDIS_DIR/redis.log" 2>&1 </dev/null &
REDIS_PID=$!
record redis "$REDIS_PID"

# --- FerretDB: SQLite backend (one file per database in data/), no auth;
#     telemetry off, debug/metrics HTTP listener off. Inserts commit 1000
#     documents per SQLite transaction instead of 100 (one per ingest batch;
#     bench/README.md "Findings").
FDB_DIR="$MESH_INFRA_DIR/ferretdb"
mkdir -p "$FDB_DIR/data" "$FDB_DIR/state"
"$FERRETDB" --handler=sqlite --sqlite-url="file:$FDB_DIR/data/" \
  --listen-addr="127.0.0.1:$MONGO_PORT" --state-dir="$FDB_DIR/state" \
  --debug-addr=- --telemetry=disable --log-level=info --test-batch-size=1000 \
  >"$FDB_DIR/ferretdb.log" 2>&1 </dev/null &
FDB_PID=$!
record ferretdb "$FDB_PID"

# --- PostgreSQL: a throwaway cluster with trust auth (initdb also limits
#     trust to local connections), TCP on 127.0.0.1 only, no Unix socket,
#     durability off for speed.
PG_DIR="$MESH_INFRA_DIR/postgres"
mkdir -p "$PG_DIR"
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || mesh_die "OS user 'postgres' missing (created by the postgresql package)"
  chown postgres: "$PG_DIR"
  if ! as_pg test -w "$PG_DIR"; then
    # A parent dir is not traversable for `postgres` (e.g. a checkout under
    # /root): keep the cluster in /tmp; down.sh removes it again.
    PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mesh-pg.XXXXXX")"
    chown postgres: "$PG_DIR"
    mesh_log "postgres cannot access $MESH_INFRA_DIR; using $PG_DIR"
  fi
fi
PGDATA_DIR="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
if ! as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres -A trust -E UTF8 --locale=C --no-sync \
  >"$MESH_INFRA_DIR/initdb.log" 2>&1; then
  log_tail "$MESH_INFRA_DIR/initdb.log"
  mesh_die "initdb failed"
fi
cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# --- mesh test settings (scripts/infra/up.sh)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
# -w: pg_ctl waits until the server reports ready (or -t seconds pass).
if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t "$WAIT_TIMEOUT" start >/dev/null 2>&1; then
  # Record the postmaster (if any) so on_exit -> down.sh stops it.
  pid="$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)"
  [ -z "$pid" ] || record postgres "$pid" "$PGDATA_DIR"
  log_tail "$PG_LOG"
  mesh_die "PostgreSQL did not start within ${WAIT_TIMEOUT}s"
fi
PG_PID="$(head -n 1 "$PGDATA_DIR/postmaster.pid")"
record postgres "$PG_PID" "$PGDATA_DIR"
wait_until postgres "$PG_PID" "$PG_LOG" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1
"$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
  -c 'CREATE DATABASE mesh_test' >/dev/null || mesh_die "CREATE DATABASE mesh_test failed"

# --- Readiness of the background servers.
wait_until redis "$REDIS_PID" "$REDIS_DIR/redis.log" redis_ping "$REDIS_PORT"
wait_until ferretdb "$FDB_PID" "$FDB_DIR/ferretdb.log" wait_for_port 127.0.0.1 "$MONGO_PORT" 1
wait_until ferretdb "$FDB_PID" "$FDB_DIR/ferretdb.log" mongo_ping 127.0.0.1 "$MONGO_PORT"

# --------------------------------------------------------------------------
# 4. Publish connection URLs.
# --------------------------------------------------------------------------
TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/mesh_test"
TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
TEST_MONGO_URL="mongodb://127.0.0.1:$MONGO_PORT/mesh_test"
cat >"$ENV_FILE.tmp" <<EOF
# Written by scripts/infra/up.sh; source this file.
export TEST_DATABASE_URL=$TEST_DATABASE_URL
export TEST_REDIS_URL=$TEST_REDIS_URL
export TEST_MONGO_URL=$TEST_MONGO_URL
EOF
mv -f "$ENV_FILE.tmp" "$ENV_FILE"

printf 'postgres  pid %-7s %s  (PostgreSQL %s, log %s)\n' "$PG_PID" "$TEST_DATABASE_URL" \
  "$("$PG_BIN/postgres" --version | awk '{print $3}')" "$PG_LOG"
printf 'redis     pid %-7s %s  (Redis %s, log %s)\n' "$REDIS_PID" "$TEST_REDIS_URL" \
  "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')" "$REDIS_DIR/redis.log"
printf 'ferretdb  pid %-7s %s  (FerretDB %s/SQLite, log %s)\n' "$FDB_PID" "$TEST_MONGO_URL" \
  "$MESH_FERRETDB_VERSION" "$FDB_DIR/ferretdb.log"
mesh_log "servers up in $((SECONDS - T0))s; env: $ENV_FILE"
