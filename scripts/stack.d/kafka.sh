# Apache Kafka: a single-node KRaft broker+controller, jars from Maven Central.
# shellcheck shell=bash

KAFKA_VERSION="${MANIFOLD_KAFKA_VERSION:-4.4.0}"
KAFKA_JVM_OPTS=(-Xmx512m -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError)
KAFKA_PORT=$(port_setting KAFKA_PORT 59092)
KAFKA_CONTROLLER_PORT=$(port_setting KAFKA_CONTROLLER_PORT 59093)
KAFKA_SASL_PORT=$(port_setting KAFKA_SASL_PORT 59094)
# The SASL_SSL listener's store and its SCRAM user: throw-away values for a loopback-only
# test broker, handed to tests by `scripts/stack env`.
KAFKA_KEYSTORE="$STACK/kafka/tls/server.p12"
KAFKA_KEYSTORE_PASSWORD=manifold-stack
KAFKA_SASL_USERNAME=manifold
KAFKA_SASL_PASSWORD=manifold-sasl
KAFKA_SCRAM_MECHANISMS=(SCRAM-SHA-512 SCRAM-SHA-256)

KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"

# The marker holds the pom's hash, so an edited dependency list is fetched again.
kafka_installed() { [[ "$(cat "$KAFKA_HOME/.complete" 2>/dev/null)" == "$(fingerprint <"$CONF/pom.xml")" ]]; }

install_kafka() {
  kafka_installed && return
  log "downloading Kafka $KAFKA_VERSION jars into $KAFKA_HOME (Maven Central)"
  rm -rf "$KAFKA_HOME/libs.tmp"
  mkdir -p "$KAFKA_HOME"
  mvn_cached -f "$CONF/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    "$DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs.tmp"
  rm -rf "$KAFKA_HOME/libs"
  mv "$KAFKA_HOME/libs.tmp" "$KAFKA_HOME/libs"
  fingerprint <"$CONF/pom.xml" >"$KAFKA_HOME/.complete"
}

kafka_java_args() {
  # tmpdir: compression codecs unpack native libraries there; keep them in .stack.
  printf '%s\n' "${KAFKA_JVM_OPTS[@]}" \
    -Djava.awt.headless=true \
    "-Djava.io.tmpdir=$STACK/kafka/tmp" \
    "-Dlog4j2.configurationFile=$CONF/kafka-log4j2.xml" \
    -cp "$KAFKA_HOME/libs/*"
}

# Metadata request answered by the broker: kcat when installed, else a hand-made
# Metadata v4 request (the oldest version Kafka 4 still accepts) over bash's /dev/tcp,
# which costs nothing compared to starting a JVM-based admin client.
kafka_answers() {
  if command -v kcat >/dev/null 2>&1; then
    kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 >/dev/null 2>&1
    return
  fi
  local hex
  # Request: size 17 | api_key 3 | version 4 | correlation id 1 | client id "ms" | all topics (null) | no auto-create
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  hex=$(timeout 5 bash -c '
      exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      printf "\x00\x00\x00\x11\x00\x03\x00\x04\x00\x00\x00\x01\x00\x02ms\xff\xff\xff\xff\x00" >&3
      head -c 16 <&3 | od -An -tx1' _ "$KAFKA_PORT" 2>/dev/null) || return 1
  hex=${hex//[[:space:]]/}
  # Response: size | correlation id (must be 1) | throttle ms | broker count (must be > 0)
  [[ ${#hex} -eq 32 && "${hex:8:8}" == 00000001 && "${hex:24:8}" != 00000000 ]]
}

# The stack's server certificate and key as the PKCS12 store Kafka reads; made again only when
# the certificate changed, so an unchanged stack keeps its fingerprint (and its running broker).
kafka_keystore() {
  ensure_stack_tls
  [[ -s "$KAFKA_KEYSTORE" && ! "$STACK_TLS_DIR/server.crt" -nt "$KAFKA_KEYSTORE" ]] && return
  ensure_cmd openssl openssl
  mkdir -p "$(dirname "$KAFKA_KEYSTORE")"
  openssl pkcs12 -export -name kafka -in "$STACK_TLS_DIR/server.crt" -inkey "$STACK_TLS_DIR/server.key" \
    -certfile "$STACK_TLS_DIR/ca.crt" -passout "pass:$KAFKA_KEYSTORE_PASSWORD" -out "$KAFKA_KEYSTORE.tmp" \
    >"$LOGS/kafka-keystore.log" 2>&1 || { cat "$LOGS/kafka-keystore.log" >&2; die "could not make Kafka's keystore"; }
  mv -f "$KAFKA_KEYSTORE.tmp" "$KAFKA_KEYSTORE"
}

# The SCRAM users as ConfigCommand and StorageTool take them, one argument per mechanism.
kafka_scram_specs() {
  local mechanism
  for mechanism in "${KAFKA_SCRAM_MECHANISMS[@]}"; do
    echo "$mechanism=[name=$KAFKA_SASL_USERNAME,password=$KAFKA_SASL_PASSWORD]"
  done
}

# Written once the broker's metadata holds the users (a new format writes it too); its content
# says which users, so a changed password or mechanism list is applied again.
kafka_scram_marker() { echo "$STACK/kafka/scram-users"; }
kafka_scram_wanted() { kafka_scram_specs | fingerprint; }

# A storage formatted before the SASL listener existed (or with other users) gets them through
# the running broker, only when the marker says they are missing. One call per mechanism: the
# broker refuses two credentials of one user in the same request.
kafka_scram_users() {
  local marker mechanism
  marker=$(kafka_scram_marker)
  [[ "$(cat "$marker" 2>/dev/null)" == "$(kafka_scram_wanted)" ]] && return
  log "adding the SCRAM user $KAFKA_SASL_USERNAME to Kafka"
  local -a args
  mapfile -t args < <(kafka_java_args)
  : >"$LOGS/kafka-scram.log"
  for mechanism in "${KAFKA_SCRAM_MECHANISMS[@]}"; do
    "$KAFKA_JAVA" "${args[@]}" org.apache.kafka.tools.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --alter --entity-type users --entity-name "$KAFKA_SASL_USERNAME" \
      --add-config "$mechanism=[password=$KAFKA_SASL_PASSWORD]" >>"$LOGS/kafka-scram.log" 2>&1 \
      || { cat "$LOGS/kafka-scram.log" >&2; die "could not add Kafka's SCRAM user ($mechanism)"; }
  done
  kafka_scram_wanted >"$marker"
}

kafka_start() {
  local dir="$STACK/kafka"
  mkdir -p "$dir/data" "$dir/tmp"
  kafka_keystore
  render "$CONF/kafka-server.properties" | write_if_changed "$dir/server.properties"
  local -a args
  mapfile -t args < <(kafka_java_args)
  local fp
  fp=$( { echo "$KAFKA_JAVA $KAFKA_VERSION"; printf '%s\n' "${args[@]}"; cat "$dir/server.properties" "$CONF/kafka-log4j2.xml" "$KAFKA_KEYSTORE"; } | fingerprint)

  java_needs_start kafka "$fp" Kafka MANIFOLD_KAFKA_PORT="$KAFKA_PORT" MANIFOLD_KAFKA_CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT" \
    MANIFOLD_KAFKA_SASL_PORT="$KAFKA_SASL_PORT" || return 0

  if [[ ! -f "$dir/data/meta.properties" ]]; then
    [[ -s "$dir/cluster-id" ]] || \
      head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$dir/cluster-id"
    log "formatting Kafka storage (cluster id $(<"$dir/cluster-id"))"
    local -a scram=()
    mapfile -t scram < <(kafka_scram_specs | sed 's/^/--add-scram\n/')
    "$KAFKA_JAVA" "${args[@]}" kafka.tools.StorageTool format --standalone --ignore-formatted \
      -t "$(<"$dir/cluster-id")" -c "$dir/server.properties" "${scram[@]}" >"$LOGS/kafka-format.log" 2>&1 \
      || { cat "$LOGS/kafka-format.log" >&2; die "kafka storage format failed"; }
    kafka_scram_wanted >"$(kafka_scram_marker)"
  fi

  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT, SASL_SSL $KAFKA_SASL_PORT)"
  start_java kafka "$dir" "$KAFKA_JAVA" "${args[@]}" kafka.Kafka "$dir/server.properties"
  echo "$fp" >"$STATE/kafka.fingerprint"
  echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT $KAFKA_SASL_PORT" >"$STATE/kafka.ports"
}

# The broker stopped (a controlled shutdown, up to a minute before it is killed) and started
# again with the same configuration and data.
kafka_restart() {
  [[ -n "$(kafka_pid)" ]] || die "Kafka is not running; use: scripts/stack up"
  ensure_java
  stop_java kafka
  # A JVM killed after the stop timeout may hold its sockets a moment longer: starting on top of
  # them fails one listener (address in use) and leaves a broker that never answers.
  local port i
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT"; do
    for ((i = 0; i < 300; i++)); do
      port_open "$port" || break
      sleep 0.1
    done
  done
  kafka_start
  wait_until kafka kafka_answers
}

kafka_pid() { owned_pid kafka || true; }
