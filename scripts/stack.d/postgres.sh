# PostgreSQL (Debian package): a cluster of the stack's own, not the machine's default one.
# shellcheck shell=bash

PG_PORT=$(port_setting PG_PORT 55432)

pg_bindir() {
  local d
  # Newest major version first.
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
    # postgresql-client alone also creates this directory, but without a server.
    [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && { echo "$d"; return; }
  done
  return 1
}

ensure_postgres_installed() {
  pg_bindir >/dev/null && return
  # The package's postinst would otherwise create and start the machine's default cluster
  # on 5432; policy-rc.d answering 101 ("action forbidden") stops it from starting it.
  local policy=/usr/sbin/policy-rc.d created=
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created=1
  fi
  apt_install postgresql || { [[ -n "$created" ]] && rm -f "$policy"; die "could not install postgresql"; }
  [[ -n "$created" ]] && rm -f "$policy"
  pg_bindir >/dev/null || die "postgresql installed but no server binaries under /usr/lib/postgresql"
}

# Runs a command as the postgres OS user from a directory it can read (runuser keeps the
# caller's cwd, which may be inside an unreadable /root).
as_pg() { (cd / && runuser -u postgres -- "$@"); }

# Where the cluster lives. Preferred: inside .stack, next to everything else. The server
# runs as `postgres`, so when that user cannot reach the repo (a clone under /root, which
# is 0700) the cluster goes under postgres's home, keyed by this clone's path.
PG_ROOT='' PG_DATA='' PG_SOCKDIR='' PG_BIN=
pg_layout() {
  local inrepo="$STACK/postgres"
  mkdir -p "$inrepo"
  chown postgres:postgres "$inrepo"
  chmod 0700 "$inrepo"
  if as_pg test -w "$inrepo" -a -x "$inrepo"; then
    PG_ROOT=$inrepo
  else
    rmdir "$inrepo" 2>/dev/null || true
    local home
    home=$(getent passwd postgres | cut -d: -f6)
    PG_ROOT="${home:-/var/lib/postgresql}/manifold-stack-$REPO_ID"
    mkdir -p "$PG_ROOT"
    chown postgres:postgres "$PG_ROOT"
    chmod 0700 "$PG_ROOT"
  fi
  PG_DATA="$PG_ROOT/data"
  PG_SOCKDIR="$PG_ROOT/run"
  # A Unix socket path must fit in 107 bytes; a deep clone path would not.
  if (( ${#PG_SOCKDIR} + 20 > 100 )); then
    PG_SOCKDIR="/tmp/manifold-stack-$REPO_ID"
  fi
  mkdir -p "$PG_SOCKDIR"
  chown postgres:postgres "$PG_SOCKDIR"
  chmod 0755 "$PG_SOCKDIR"
}

# The postmaster named in DATA/postmaster.pid is alive. Unlike `pg_ctl status` this does
# not count a zombie: where PID 1 never reaps orphans (as in this sandbox), a killed
# postmaster stays a zombie and its lock file would block every later start.
pg_running() { # pg_running DATA
  local pid
  pid=$(head -n1 "$1/postmaster.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid"
}

pg_answers() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

# The server's copies of the stack's certificate (tls.sh) live in its data directory.
pg_tls_files() {
  ensure_stack_tls
  install -o postgres -g postgres -m 0644 "$STACK_TLS_DIR/server.crt" "$PG_DATA/server.crt"
  install -o postgres -g postgres -m 0600 "$STACK_TLS_DIR/server.key" "$PG_DATA/server.key"
}

# The TLS test role may only connect over TLS; every other rule initdb wrote stays as it was.
# Kept at the top of pg_hba.conf (first match wins) and rewritten on every `up`.
pg_hba_tls_rules() {
  local hba="$PG_DATA/pg_hba.conf" begin='# manifold-stack TLS rules: begin' end='# manifold-stack TLS rules: end'
  {
    echo "$begin"
    echo 'hostssl   all manifold_tls 127.0.0.1/32 scram-sha-256'
    echo 'hostnossl all manifold_tls 127.0.0.1/32 reject'
    echo "$end"
    awk -v b="$begin" -v e="$end" '$0 == b {skip = 1} !skip {print} $0 == e {skip = 0}' "$hba"
  } | write_if_changed "$hba"
  chown postgres:postgres "$hba"
  chmod 0600 "$hba"
}

pg_psql() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKDIR" -p "$PG_PORT" -U postgres "$@"; }

postgres_up() {
  PG_BIN=$(pg_bindir)
  pg_layout

  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "initialising PostgreSQL cluster in $PG_DATA"
    # peer auth on the socket lets root administer it via runuser without a superuser
    # password; TCP (all the application uses) requires the role's password.
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >"$LOGS/postgres-initdb.log" 2>&1 \
      || { cat "$LOGS/postgres-initdb.log" >&2; die "initdb failed"; }
    echo "include_if_exists = 'manifold-stack.conf'" >>"$PG_DATA/postgresql.conf"
  fi

  pg_tls_files
  pg_hba_tls_rules

  # Rewritten on every `up` so port changes apply; the fingerprint decides on a restart.
  write_if_changed "$PG_DATA/manifold-stack.conf" <<EOF
# Written by scripts/stack on every 'up'; edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKDIR'
# Every test creates its own database and connection pool.
max_connections = 300
shared_buffers = 256MB
# TLS is offered to everybody and required of the manifold_tls role only (pg_hba.conf).
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
EOF
  chown postgres:postgres "$PG_DATA/manifold-stack.conf"
  local fp
  fp=$( { cat "$PG_DATA/manifold-stack.conf" "$PG_DATA/pg_hba.conf" "$PG_DATA/server.crt"; echo "$PG_BIN"; } | fingerprint)

  if pg_running "$PG_DATA"; then
    if [[ "$(cat "$STATE/postgres.fingerprint" 2>/dev/null)" != "$fp" ]]; then
      claim_ports postgres 1 MANIFOLD_PG_PORT="$PG_PORT"
      log "PostgreSQL configuration changed; restarting it"
      as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w >/dev/null
    fi
  fi
  if ! pg_running "$PG_DATA"; then
    claim_ports postgres 0 MANIFOLD_PG_PORT="$PG_PORT"
    # Lock files of a dead (or zombie) postmaster; its backends exit on their own once
    # they notice the postmaster is gone.
    local lock
    for lock in "$PG_DATA/postmaster.pid" "$PG_SOCKDIR/.s.PGSQL.$PG_PORT.lock"; do
      if [[ -f "$lock" ]] && ! alive "$(head -n1 "$lock")"; then
        log "removing stale $lock"
        rm -f "$lock" "${lock%.lock}"
      fi
    done
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    rotate_log postgres
    # Output goes to a log opened here by root, which works even when `postgres` could
    # not open a file in .stack itself; setsid detaches the server from this session.
    (cd / && exec setsid runuser -u postgres -- "$PG_BIN/pg_ctl" start -D "$PG_DATA" -w -t 120 -s) \
      >>"$LOGS/postgres.log" 2>&1 </dev/null 9>&- \
      || { tail -n 30 "$LOGS/postgres.log" >&2; die "PostgreSQL did not start (log: $LOGS/postgres.log)"; }
  fi
  echo "$PG_DATA" >"$STATE/postgres.datadir"
  echo "$fp" >"$STATE/postgres.fingerprint"
  echo "$PG_PORT" >"$STATE/postgres.ports"
  wait_until postgres pg_answers

  # Idempotent bootstrap: roles and databases are created once, the password is re-asserted.
  pg_psql -d postgres <<'SQL'
SELECT 'CREATE ROLE manifold' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'manifold')\gexec
ALTER ROLE manifold WITH LOGIN CREATEDB PASSWORD 'manifold';
SELECT 'CREATE ROLE manifold_tls' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'manifold_tls')\gexec
ALTER ROLE manifold_tls WITH LOGIN PASSWORD 'manifold_tls';
SELECT 'CREATE ROLE manifold_admin' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'manifold_admin')\gexec
ALTER ROLE manifold_admin WITH LOGIN CREATEROLE PASSWORD 'manifold_admin';
SELECT 'CREATE DATABASE manifold OWNER manifold' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'manifold')\gexec
SELECT 'CREATE DATABASE apicurio OWNER manifold' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'apicurio')\gexec
SQL
  # Proves the exact URL that `env` hands out works over TCP with password auth.
  PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -At "$(database_url)" -c 'SELECT 1' >/dev/null \
    || die "cannot log in as manifold at $(database_url)"
}

postgres_down() {
  local data
  data=$(cat "$STATE/postgres.datadir" 2>/dev/null) || return 0
  PG_BIN=$(pg_bindir) || return 0
  if pg_running "$data"; then
    log "stopping PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t 120 >/dev/null
  fi
  rm -f "$STATE/postgres.datadir" "$STATE/postgres.fingerprint" "$STATE/postgres.ports"
}

# A fast restart of the running cluster: sessions are ended, not waited for. Like `up`, the
# server is detached from this shell and writes to the stack's log.
postgres_restart() {
  local data
  data=$(cat "$STATE/postgres.datadir" 2>/dev/null) || die "PostgreSQL was not started by this stack"
  PG_BIN=$(pg_bindir) || die "no PostgreSQL server binaries"
  pg_running "$data" || die "PostgreSQL is not running; use: scripts/stack up"
  log "restarting PostgreSQL (fast shutdown: every session ends)"
  (cd / && exec setsid runuser -u postgres -- "$PG_BIN/pg_ctl" restart -D "$data" -m fast -w -t 120 -s) \
    >>"$LOGS/postgres.log" 2>&1 </dev/null 9>&- \
    || { tail -n 30 "$LOGS/postgres.log" >&2; die "PostgreSQL did not restart (log: $LOGS/postgres.log)"; }
  wait_until postgres pg_answers
}

database_url() { echo "postgres://manifold:manifold@127.0.0.1:$PG_PORT/manifold"; }
# A role that may create roles (the application role may not), for `manifold grants … --execute`.
database_admin_url() { echo "postgres://manifold_admin:manifold_admin@127.0.0.1:$PG_PORT/manifold"; }
pg_ca_file() { stack_ca_file; }

# For `status`: the live postmaster's pid (none for a zombie), and whether it answers.
postgres_pid() {
  local data pid=
  data=$(cat "$STATE/postgres.datadir" 2>/dev/null || true)
  [[ -n "$data" && -f "$data/postmaster.pid" ]] && pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)
  [[ -n "$pid" ]] && ! alive "$pid" && pid=
  echo "$pid"
}

postgres_answers() {
  PG_BIN=$(pg_bindir || true)
  [[ -n "$PG_BIN" ]] && pg_answers
}
