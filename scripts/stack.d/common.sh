# Shared by every service of scripts/stack: where things live, logging, ports, installing
# packages, and waiting for the processes the stack starts.
# shellcheck shell=bash

REPO=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck disable=SC2034 # CONF and REPO_ID are read by the service files
CONF="$SCRIPT_DIR/stack.d"
STACK="$REPO/.stack"
STATE="$STACK/state"
LOGS="$STACK/logs"
CACHE="${MANIFOLD_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/manifold}"
# Distinguishes this clone's processes and fallback directories from another clone's.
# shellcheck disable=SC2034
REPO_ID=$(printf '%s' "$REPO" | sha256sum | cut -c1-12)
READY_TIMEOUT="${MANIFOLD_READY_TIMEOUT:-180}"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# Ports: an explicit variable wins; otherwise the ports the running stack was started with
# (so `env` and a repeated `up` agree with what is actually listening); otherwise defaults.
recorded_port() {
  [[ -f "$STATE/ports" ]] && sed -n "s/^$1=//p" "$STATE/ports" | head -n1
  return 0
}
# port_setting NAME DEFAULT: $MANIFOLD_<NAME>, else the recorded NAME, else DEFAULT.
port_setting() {
  local explicit="MANIFOLD_$1" port
  port=${!explicit:-$(recorded_port "$1")}
  echo "${port:-$2}"
}

# A zombie (its parent may be a PID 1 that never reaps) has an empty command line.
alive() { local c; c=$(tr -d '\0' 2>/dev/null <"/proc/$1/cmdline") && [[ -n "$c" ]]; }

# The pid recorded in state/SERVICE.pid while that process is still the one this stack started:
# its command line has MARKER as one argument, which guards against a recycled pid or another
# clone's process. Arguments: SERVICE MARKER.
started_pid() {
  local pidfile="$STATE/$1.pid" pid cmdline
  [[ -f "$pidfile" ]] || return 1
  pid=$(<"$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  grep -qxF -- "$2" <<<"$cmdline" || return 1
  echo "$pid"
}

# Stops SERVICE's process PID (empty: none runs) with TERM, waits up to 60 s for a clean
# shutdown (Kafka's controlled shutdown takes a few seconds; don't cut it short), then KILLs;
# forgets its state either way. Arguments: SERVICE PID.
stop_service() {
  local svc=$1 pid=$2 i
  if [[ -n "$pid" ]]; then
    log "stopping $svc (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$svc did not stop within 60s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$STATE/$svc.pid" "$STATE/$svc.fingerprint" "$STATE/$svc.ports"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fingerprint() { sha256sum | cut -c1-16; }

# Fills @NAME@ placeholders from the variables of the same name.
render() {
  sed -e "s|@PG_PORT@|$PG_PORT|g" \
      -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@KAFKA_SASL_PORT@|$KAFKA_SASL_PORT|g" \
      -e "s|@KAFKA_DATA@|$STACK/kafka/data|g" \
      -e "s|@KAFKA_KEYSTORE@|$KAFKA_KEYSTORE|g" \
      -e "s|@KAFKA_KEYSTORE_PASSWORD@|$KAFKA_KEYSTORE_PASSWORD|g" \
      -e "s|@REGISTRY_PORT@|$REGISTRY_PORT|g" \
      -e "s|@REGISTRY_MGMT_PORT@|$REGISTRY_MGMT_PORT|g" \
      -e "s|@REGISTRY_DIR@|$STACK/registry|g" \
      "$1"
}

# Writes a file only when its content changes, so mtimes stay meaningful.
write_if_changed() {
  local target=$1 tmp
  tmp=$(mktemp "$target.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$target"; then rm -f "$tmp"; else mv -f "$tmp" "$target"; fi
}

# Starting a log anew on every (re)start keeps one run's output together; the previous
# run stays in <name>.log.1 for post-mortems.
rotate_log() {
  local f="$LOGS/$1.log"
  [[ -s "$f" ]] && mv -f "$f" "$f.1"
  : >"$f"
}

APT_UPDATED=
apt_install() {
  [[ $EUID -eq 0 ]] || die "need root to install: $*"
  log "installing $* (apt)"
  if [[ -z "$APT_UPDATED" ]]; then
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_cmd() { # ensure_cmd COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

# Serialises installs into the shared cache between clones running `up` at the same time.
with_cache_lock() {
  mkdir -p "$CACHE"
  (
    flock -w 1800 8 || die "timed out waiting for $CACHE/.lock"
    "$@"
  ) 8>"$CACHE/.lock"
}

# Polls CHECK until it succeeds; gives up early when the process died, showing its log.
wait_until() { # wait_until SERVICE CHECK...
  local svc=$1 deadline=$((SECONDS + READY_TIMEOUT))
  shift
  until "$@"; do
    if [[ "$svc" != postgres && -z "$("${svc}_pid")" ]]; then
      tail -n 40 "$LOGS/$svc.log" >&2 || true
      die "$svc exited during startup (log: $LOGS/$svc.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$LOGS/$svc.log" >&2 || true
      die "$svc did not answer within ${READY_TIMEOUT}s (log: $LOGS/$svc.log)"
    fi
    sleep 0.5
  done
}

# Whether SERVICE is to be started: not while it runs (pid PID) with the configuration whose
# fingerprint is FP; one running with another configuration is stopped first (STOP SERVICE). A
# port held by anything else fails here, before anything is stopped or started.
needs_start() { # needs_start SERVICE PID STOP FP NAME VARIABLE=PORT...
  local svc=$1 pid=$2 stop=$3 fp=$4 name=$5
  shift 5
  if [[ -n "$pid" ]]; then
    [[ "$(cat "$STATE/$svc.fingerprint" 2>/dev/null)" == "$fp" ]] && return 1
    claim_ports "$svc" 1 "$@"
    log "$name configuration changed; restarting it"
    "$stop" "$svc"
  fi
  claim_ports "$svc" 0 "$@"
}

# Fails unless each port is free or held by this service's own running instance, so a
# clash is reported before anything is stopped or started. Arguments: SERVICE RUNNING(0|1)
# VARIABLE=PORT...; the ports a service listens on are recorded in state/<service>.ports.
claim_ports() {
  local svc=$1 running=$2 spec port ours=
  shift 2
  if ((running)); then
    # Without a record of its ports, leave the check to the call made after stopping it.
    [[ -f "$STATE/$svc.ports" ]] || return 0
    ours=" $(<"$STATE/$svc.ports") "
  fi
  for spec in "$@"; do
    port=${spec#*=}
    [[ "$ours" == *" $port "* ]] && continue
    if port_open "$port"; then
      die "port $port for $svc is already in use by another process; free it or set ${spec%%=*}"
    fi
  done
}

prepare_dirs() {
  mkdir -p "$STATE" "$LOGS"
  # Ignores .stack even where the repo's .gitignore does not mention it.
  [[ -f "$STACK/.gitignore" ]] || echo '*' >"$STACK/.gitignore"
}

# One `up`/`down` at a time per clone.
lock_stack() {
  exec 9>"$STACK/.lock"
  flock -w 900 9 || die "another scripts/stack up/down is still running"
}
