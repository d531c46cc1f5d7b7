#!/usr/bin/env bash
# Stop the servers started by scripts/infra/up.sh. Works only from the PIDs
# recorded in $MESH_INFRA_DIR/pids -- never kills anything by name. A PID whose
# process start time no longer matches the recorded one belongs to some other
# process by now and is left alone. Safe to run when nothing is running.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PIDS_FILE="$MESH_INFRA_DIR/pids"
TERM_TIMEOUT="${MESH_INFRA_STOP_TIMEOUT:-10}" # seconds before escalating to SIGKILL

# wait_gone PID START SECONDS: true once the process is gone.
wait_gone() {
  local deadline=$((SECONDS + $3))
  while pid_alive "$1" "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# stop_pid NAME PID START [SIGNAL]: SIGNAL (default TERM), bounded wait, then KILL.
stop_pid() {
  local name="$1" pid="$2" start="$3" sig="${4:-TERM}"
  if ! pid_alive "$pid" "$start"; then
    mesh_log "$name (pid $pid) already stopped"
    return 0
  fi
  kill -s "$sig" "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$start" "$TERM_TIMEOUT"; then
    mesh_log "$name (pid $pid) ignored SIG$sig for ${TERM_TIMEOUT}s; sending SIGKILL"
    kill -s KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" "$start" 5 || { mesh_log "$name (pid $pid) survived SIGKILL"; return 1; }
  fi
  mesh_log "$name (pid $pid) stopped"
}

# stop_postgres PID START DATADIR: `pg_ctl stop -m fast` as the cluster's owner,
# falling back to signalling the postmaster (SIGINT = fast shutdown).
stop_postgres() {
  local pid="$1" start="$2" data="$3" bin owner done=0
  local -a as_owner=()
  if pid_alive "$pid" "$start" && [ -f "$data/PG_VERSION" ]; then
    bin="/usr/lib/postgresql/$(cat "$data/PG_VERSION")/bin"
    owner="$(stat -c %U "$data")"
    # The server refuses root; as root, act as the cluster's owner.
    if [ "$(id -u)" -eq 0 ] && [ "$owner" != root ]; then as_owner=(runuser -u "$owner" --); fi
    if [ -x "$bin/pg_ctl" ] &&
      (cd / && "${as_owner[@]}" "$bin/pg_ctl" -D "$data" -m fast -w -t "$TERM_TIMEOUT" stop) >/dev/null 2>&1 &&
      wait_gone "$pid" "$start" 5; then
      mesh_log "postgres (pid $pid) stopped (pg_ctl stop -m fast)"
      done=1
    fi
  fi
  if [ "$done" -eq 0 ]; then
    stop_pid postgres "$pid" "$start" INT || return 1
  fi
  # Cluster placed in /tmp by up.sh (repo not accessible to `postgres`):
  # keep its log next to the other logs, then remove it.
  case "$data" in
    "${TMPDIR:-/tmp}"/mesh-pg.*/data)
      mkdir -p "$MESH_INFRA_DIR/postgres"
      cp -f "$(dirname "$data")/postgres.log" "$MESH_INFRA_DIR/postgres/" 2>/dev/null || true
      rm -rf "$(dirname "$data")"
      ;;
  esac
}

if [ ! -f "$PIDS_FILE" ]; then
  mesh_log "no $PIDS_FILE: nothing to stop"
  exit 0
fi

status=0
# Stop in reverse start order. Line format: NAME PID START_TIME [DATA_DIR...]
while read -r name pid start extra; do
  [ -n "${name:-}" ] || continue
  case "$pid" in '' | *[!0-9]*)
    mesh_log "ignoring malformed line: $name $pid"
    continue
    ;;
  esac
  case "$name" in
    postgres) stop_postgres "$pid" "$start" "$extra" || status=1 ;;
    *) stop_pid "$name" "$pid" "$start" || status=1 ;;
  esac
done < <(tac "$PIDS_FILE")

if [ "$status" -eq 0 ]; then
  rm -f "$PIDS_FILE" "$MESH_INFRA_DIR/env"
fi
exit "$status"
