# Prometheus: Debian's package, run as an instance of the stack's own (its own port, config and
# data under .stack/prometheus), never the package's system service. It loads manifold's alert
# rules from config/prometheus/rules and scrapes the targets tests write into
# .stack/prometheus/targets (PROMETHEUS_FILE_SD_DIR).
# shellcheck shell=bash

PROMETHEUS_PORT=$(port_setting PROMETHEUS_PORT 59090)
PROMETHEUS_DIR="$STACK/prometheus"

# The package also brings promtool, which `make test` runs on the rules. Installing it may
# start the package's own service (on 9090) where systemd runs: the stack never uses that one,
# so it is stopped and disabled again.
ensure_prometheus_installed() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return
  apt_install prometheus
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    log "stopping and disabling the prometheus system service the package started (the stack runs its own)"
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

prometheus_url() { echo "http://127.0.0.1:$PROMETHEUS_PORT"; }

prometheus_answers() { curl -fs -o /dev/null --max-time 3 "$(prometheus_url)/-/ready"; }

# The process this stack started: its command line names this stack's config.
prometheus_pid() { started_pid prometheus "--config.file=$PROMETHEUS_DIR/prometheus.yml" || true; }

prometheus_start() {
  mkdir -p "$PROMETHEUS_DIR/data" "$PROMETHEUS_DIR/targets"
  sed -e "s|@PROMETHEUS_DIR@|$PROMETHEUS_DIR|g" -e "s|@RULES_DIR@|$REPO/config/prometheus/rules|g" \
    "$CONF/prometheus.yml" | write_if_changed "$PROMETHEUS_DIR/prometheus.yml"
  # Rules are part of the fingerprint: a changed rule file restarts the instance, so it never
  # evaluates stale rules.
  local fp
  fp=$( { echo "$PROMETHEUS_PORT"; cat "$PROMETHEUS_DIR/prometheus.yml" "$REPO"/config/prometheus/rules/*.yml; } | fingerprint)
  needs_start prometheus "$(prometheus_pid)" prometheus_stop "$fp" Prometheus MANIFOLD_PROMETHEUS_PORT="$PROMETHEUS_PORT" || return 0
  promtool check config "$PROMETHEUS_DIR/prometheus.yml" >"$LOGS/promtool.log" 2>&1 ||
    { cat "$LOGS/promtool.log" >&2; die "the stack's Prometheus configuration does not check (promtool)"; }
  log "starting Prometheus on 127.0.0.1:$PROMETHEUS_PORT"
  rotate_log prometheus
  # Like the JVMs (java.sh): its own session, no stack lock inherited, $! is its pid.
  (exec setsid prometheus "--config.file=$PROMETHEUS_DIR/prometheus.yml" \
    "--storage.tsdb.path=$PROMETHEUS_DIR/data" --storage.tsdb.retention.time=1d \
    "--web.listen-address=127.0.0.1:$PROMETHEUS_PORT" >>"$LOGS/prometheus.log" 2>&1 </dev/null 9>&-) &
  echo $! >"$STATE/prometheus.pid"
  echo "$fp" >"$STATE/prometheus.fingerprint"
  echo "$PROMETHEUS_PORT" >"$STATE/prometheus.ports"
}

prometheus_stop() { stop_service prometheus "$(prometheus_pid)"; }
