# shellcheck shell=bash
# Shared helpers for the test-infrastructure scripts (scripts/infra/*.sh, .ci/run).
# This file is meant to be *sourced*, not executed; it only defines variables
# and functions and has no side effects beyond that.

# Repository root (this file lives in <root>/scripts/infra/).
MESH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Cache for things that are expensive to fetch or build (Node 24, FerretDB).
# Survives between CI runs on a warm machine.
MESH_CACHE="${MESH_CACHE:-$HOME/.cache/mesh}"

# State of the running test servers: data dirs, logs, pids, env file.
# Anchored at the repository root so up.sh and down.sh agree on it whatever
# the current directory is (for .ci/run, which cds there, this is $PWD/.data/infra).
MESH_INFRA_DIR="${MESH_INFRA_DIR:-$MESH_ROOT/.data/infra}"

export MESH_ROOT MESH_CACHE MESH_INFRA_DIR

# FerretDB release built from the Go module proxy.
MESH_FERRETDB_VERSION="${MESH_FERRETDB_VERSION:-v1.24.0}"

mesh_log() { printf '[infra] %s\n' "$*" >&2; }
mesh_die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG... : install Debian packages. `apt-get update` runs at most
# once per shell, and only when something actually has to be installed.
MESH_APT_UPDATED="${MESH_APT_UPDATED:-}"
apt_install() {
  [ "$#" -gt 0 ] || return 0
  command -v apt-get >/dev/null 2>&1 || mesh_die "apt-get not found; install manually: $*"
  if [ -z "$MESH_APT_UPDATED" ]; then
    mesh_log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
      || mesh_die "apt-get update failed"
    MESH_APT_UPDATED=1
  fi
  mesh_log "apt-get install $*"
  local log
  log="$(mktemp "${TMPDIR:-/tmp}/mesh-apt.XXXXXX")"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >"$log" 2>&1; then
    log_tail "$log"
    rm -f "$log"
    mesh_die "apt-get install $* failed"
  fi
  rm -f "$log"
}

# node_major [NODE]: major version of the given node binary (0 if unusable).
node_major() {
  local v
  v="$("${1:-node}" --version 2>/dev/null)" || { echo 0; return; }
  v="${v#v}"
  echo "${v%%.*}"
}

# ensure_node24: make `node` on PATH be Node >= 24. If the current one is older,
# install the `node-linux-<arch>@24` npm package into $MESH_CACHE/node24 (once)
# and put its bin dir first on PATH. The system `npm` then runs on that node.
ensure_node24() {
  if [ "$(node_major)" -ge 24 ]; then
    return 0
  fi
  local arch pkg prefix bindir
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) mesh_die "ensure_node24: unsupported architecture $(uname -m)" ;;
  esac
  pkg="node-linux-$arch"
  prefix="$MESH_CACHE/node24"
  bindir="$prefix/node_modules/$pkg/bin"
  if [ "$(node_major "$bindir/node")" -lt 24 ]; then
    command -v npm >/dev/null 2>&1 || mesh_die "ensure_node24: npm is needed to fetch $pkg@24"
    mesh_log "installing $pkg@24 into $prefix"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$pkg@24" >&2 \
      || mesh_die "ensure_node24: npm install $pkg@24 failed"
    [ "$(node_major "$bindir/node")" -ge 24 ] || mesh_die "ensure_node24: $bindir/node is not Node 24+"
  fi
  export PATH="$bindir:$PATH"
  hash -r
}

# wait_for_port HOST PORT TIMEOUT_SECONDS: wait until a TCP connect succeeds.
# Returns 1 on timeout. Each attempt is itself bounded to 1 s.
wait_for_port() {
  local host="$1" port="$2" timeout="${3:-30}"
  local deadline=$((SECONDS + timeout))
  while :; do
    if timeout 1 bash -c ">/dev/tcp/$host/$port" 2>/dev/null; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# free_port [N]: print N (default 1) distinct TCP ports on 127.0.0.1 that are
# free right now. All sockets are held open until every port has been picked,
# so the N ports never collide with each other.
free_port() {
  local n="${1:-1}"
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$n" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
  else
    node -e '
      const net = require("net");
      const n = Number(process.argv[1]); const servers = []; const ports = [];
      const next = () => {
        if (ports.length === n) { console.log(ports.join("\n")); servers.forEach((s) => s.close()); return; }
        const s = net.createServer(); servers.push(s);
        s.listen(0, "127.0.0.1", () => { ports.push(s.address().port); next(); });
      };
      next();' "$n"
  fi
}

# proc_stat PID: "STATE START_TIME" from /proc/PID/stat (fields 3 and 22);
# empty if the process does not exist. The start time identifies a process:
# it tells a recorded PID apart from an unrelated process that reused it.
proc_stat() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }" # drop "PID (COMM) ": COMM may contain spaces
  # shellcheck disable=SC2086
  set -- $stat
  echo "$1 ${20}"
}

# proc_start_time PID: start time of a running process, "-" if not running.
proc_start_time() {
  local st
  st="$(proc_stat "$1")"
  if [ -n "$st" ]; then echo "${st#* }"; else echo -; fi
}

# pid_alive PID [START_TIME]: true if PID runs, is not a zombie and (when
# START_TIME is given) still is the process that had that start time.
# START_TIME "-" means "was already gone when recorded".
pid_alive() {
  local pid="$1" start="${2:-}" st
  kill -0 "$pid" 2>/dev/null || return 1
  [ -d /proc/self ] || return 0 # no procfs: kill -0 is all we have
  [ "$start" != "-" ] || return 1
  st="$(proc_stat "$pid")"
  [ -n "$st" ] || return 1
  [ "${st%% *}" != Z ] || return 1 # exited, waiting to be reaped
  [ -z "$start" ] || [ "${st#* }" = "$start" ]
}

# log_tail FILE: last lines of a server log, for error messages.
log_tail() {
  if [ -f "$1" ]; then
    printf -- '--- last lines of %s ---\n' "$1" >&2
    tail -n 25 "$1" >&2
    printf -- '---\n' >&2
  fi
}
