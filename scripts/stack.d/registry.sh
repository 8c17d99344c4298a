# Schema registry: Apicurio Registry 3 (Confluent-compatible API), stored in the stack's PostgreSQL.
# shellcheck shell=bash

APICURIO_VERSION="${MANIFOLD_APICURIO_VERSION:-3.3.3}"
REGISTRY_JVM_OPTS=(-Xmx256m -Xms64m -XX:+ExitOnOutOfMemoryError)
REGISTRY_PORT=$(port_setting REGISTRY_PORT 58081)
REGISTRY_MGMT_PORT=$(port_setting REGISTRY_MGMT_PORT 58082)

APICURIO_HOME="$CACHE/apicurio-registry-$APICURIO_VERSION"

install_apicurio() {
  [[ -f "$APICURIO_HOME/.complete" ]] && return
  log "downloading Apicurio Registry $APICURIO_VERSION into $APICURIO_HOME (Maven Central, ~160 MB)"
  local tmp="$APICURIO_HOME.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp/dl" "$tmp/app"
  # The app module attaches its Quarkus fast-jar distribution as the `all` tar.gz; there
  # is no zip. Run outside any project so Maven needs no pom.
  (cd "$tmp/dl" && mvn_cached "$DEPENDENCY_PLUGIN:copy" \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" -DoutputDirectory="$tmp/dl")
  tar -xzf "$tmp/dl/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$tmp/app"
  [[ -f "$tmp/app/quarkus-run.jar" ]] || die "unexpected Apicurio archive layout (no quarkus-run.jar)"
  rm -rf "$APICURIO_HOME"
  mv "$tmp/app" "$APICURIO_HOME"
  rm -rf "$tmp" "$CACHE/m2/io/apicurio/apicurio-registry-app/$APICURIO_VERSION"  # the unpacked copy is all we use
  touch "$APICURIO_HOME/.complete"
}

registry_url() { echo "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"; }

registry_answers() { curl -fs -o /dev/null --max-time 3 "$(registry_url)/subjects"; }

registry_start() {
  local dir="$STACK/registry"
  mkdir -p "$dir/config" "$dir/tmp"
  render "$CONF/registry.properties" | write_if_changed "$dir/config/application.properties"
  local fp
  fp=$( { echo "$REGISTRY_JAVA $APICURIO_VERSION ${REGISTRY_JVM_OPTS[*]}"; cat "$dir/config/application.properties"; } | fingerprint)

  java_needs_start registry "$fp" registry MANIFOLD_REGISTRY_PORT="$REGISTRY_PORT" MANIFOLD_REGISTRY_MGMT_PORT="$REGISTRY_MGMT_PORT" || return 0

  log "starting Apicurio Registry $APICURIO_VERSION on 127.0.0.1:$REGISTRY_PORT"
  # Working directory = $dir, where Quarkus picks up config/application.properties.
  start_java registry "$dir" "$REGISTRY_JAVA" "${REGISTRY_JVM_OPTS[@]}" -Djava.io.tmpdir="$dir/tmp" \
    -jar "$APICURIO_HOME/quarkus-run.jar"
  echo "$fp" >"$STATE/registry.fingerprint"
  echo "$REGISTRY_PORT $REGISTRY_MGMT_PORT" >"$STATE/registry.ports"
}

registry_pid() { owned_pid registry || true; }
