# pglite: a test-only TimescaleDB. PGlite (PostgreSQL 17 compiled to WASM, run by Node) with
# TimescaleDB 2.23 and its TSL features, served over the wire protocol by pglite-socket. It holds
# one backend and serves one connection at a time (others queue), so it hosts the TimescaleDB
# tests (migrate, detection, maintenance, the readings_1m round trip), never the pipeline.
# The npm packages are pinned with integrity hashes in pglite/package-lock.json and installed
# once into $CACHE/pglite-<hash of the lockfile>; the database lives in memory, so every start
# is a clean server. Needs no root: `scripts/stack up pglite` starts it alone.
# shellcheck shell=bash

PGLITE_PORT=$(port_setting PGLITE_PORT 55433)
PGLITE_DIR="$STACK/pglite"
PGLITE_CONF="$CONF/pglite"

pglite_npm_dir() { echo "$CACHE/pglite-$(fingerprint <"$PGLITE_CONF/package-lock.json")"; }

install_pglite() {
  local dir
  dir=$(pglite_npm_dir)
  [[ -f "$dir/.installed" ]] && return
  log "installing PGlite with TimescaleDB (npm, pinned) into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$PGLITE_CONF/package.json" "$PGLITE_CONF/package-lock.json" "$dir/"
  # pglite-socket names the upstream PGlite as a peer; the TimescaleDB build replaces it.
  if ! (cd "$dir" && npm ci --legacy-peer-deps --no-audit --no-fund --no-update-notifier --loglevel=error) \
    >"$LOGS/pglite-install.log" 2>&1; then
    cat "$LOGS/pglite-install.log" >&2
    rm -rf "$dir"
    die "could not install the pglite packages (log: $LOGS/pglite-install.log)"
  fi
  touch "$dir/.installed"
}

timescale_url() { echo "postgres://postgres:postgres@127.0.0.1:$PGLITE_PORT/postgres?sslmode=disable"; }

# pglite-socket answers an SSLRequest with garbage, so the probe asks for plaintext. A probe
# holds the single connection for a moment only.
pglite_answers() {
  local bin
  bin=$(pg_bindir 2>/dev/null || true)
  if [[ -n "$bin" ]]; then
    PGCONNECT_TIMEOUT=3 "$bin/psql" -X -q -At "$(timescale_url)" -c 'SELECT 1' >/dev/null 2>&1
  else
    port_open "$PGLITE_PORT"
  fi
}

pglite_pid() { started_pid pglite "$PGLITE_DIR/server.mjs" || true; }

pglite_start() {
  ensure_cmd node nodejs
  ensure_cmd npm npm
  with_cache_lock install_pglite
  mkdir -p "$PGLITE_DIR"
  # ES modules resolve packages from the script's own directory: the script is copied next to a
  # link to the cached node_modules.
  ln -sfn "$(pglite_npm_dir)/node_modules" "$PGLITE_DIR/node_modules"
  write_if_changed "$PGLITE_DIR/server.mjs" <"$PGLITE_CONF/server.mjs"
  write_if_changed "$PGLITE_DIR/copy-shim.mjs" <"$PGLITE_CONF/copy-shim.mjs"
  local fp
  fp=$( { echo "$PGLITE_PORT"; cat "$PGLITE_DIR"/*.mjs "$PGLITE_CONF/package-lock.json"; } | fingerprint)
  needs_start pglite "$(pglite_pid)" pglite_stop "$fp" pglite MANIFOLD_PGLITE_PORT="$PGLITE_PORT" || return 0
  log "starting pglite (TimescaleDB, test-only) on 127.0.0.1:$PGLITE_PORT"
  rotate_log pglite
  (cd "$PGLITE_DIR" && PGLITE_PORT=$PGLITE_PORT exec setsid node "$PGLITE_DIR/server.mjs" \
    >>"$LOGS/pglite.log" 2>&1 </dev/null 9>&-) &
  echo $! >"$STATE/pglite.pid"
  echo "$fp" >"$STATE/pglite.fingerprint"
  echo "$PGLITE_PORT" >"$STATE/pglite.ports"
}

pglite_stop() { stop_service pglite "$(pglite_pid)"; }
