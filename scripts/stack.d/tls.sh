# A throw-away certificate authority and a server certificate for 127.0.0.1 and localhost,
# made once per .stack and shared by every service that speaks TLS (PostgreSQL, Kafka's
# SASL_SSL listener), so a client trusts all of them with one CA file.
# shellcheck shell=bash

STACK_TLS_DIR="$STACK/tls"

ensure_stack_tls() {
  local dir=$STACK_TLS_DIR
  [[ -s "$dir/ca.crt" && -s "$dir/server.crt" && -s "$dir/server.key" ]] && return
  ensure_cmd openssl openssl
  mkdir -p "$dir"
  log "generating a test CA and server certificate in $dir"
  local ext="$dir/server.ext"
  printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
    'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$ext"
  if ! { openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=manifold stack test CA' \
           -keyout "$dir/ca.key" -out "$dir/ca.crt" \
         && openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' \
           -keyout "$dir/server.key" -out "$dir/server.csr" \
         && openssl x509 -req -days 3650 -in "$dir/server.csr" -CA "$dir/ca.crt" \
           -CAkey "$dir/ca.key" -CAcreateserial -extfile "$ext" -out "$dir/server.crt"; \
       } >"$LOGS/stack-tls.log" 2>&1; then
    cat "$LOGS/stack-tls.log" >&2
    rm -f "$dir/ca.crt" "$dir/server.crt"
    die "could not generate the stack's test certificates"
  fi
  rm -f "$dir/server.csr" "$ext"
}

stack_ca_file() { echo "$STACK_TLS_DIR/ca.crt"; }
