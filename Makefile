# The two commands of the README: `make demo` and `make test`. Both bring the local stack up
# themselves (installing what is missing), so they work on a fresh Debian machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
STACK := scripts/stack
MANIFOLD := target/debug/manifold
# Every recipe line sees the stack's connection settings unless the caller set their own.
WITH_STACK = eval "$$($(STACK) env --keep)" &&

.PHONY: demo test build stack-up stack-down stack-status lint shellcheck
# Every shell script under scripts/: the entry points and the files they source.
SHELL_SCRIPTS = $(shell grep -rlE '^(\#!/usr/bin/env bash|\# shellcheck shell=bash)' scripts | sort)

build:
	cargo build --bin manifold

# MANIFOLD_NO_STACK=1 skips the local stack: point DATABASE_URL, KAFKA_BROKERS and
# SCHEMA_REGISTRY_URL at existing services instead.
stack-up:
	@if [ -z "$${MANIFOLD_NO_STACK:-}" ]; then $(STACK) up; fi

stack-down:
	$(STACK) down

stack-status:
	$(STACK) status

demo: stack-up build
	scripts/demo

test: shellcheck stack-up
	$(WITH_STACK) MANIFOLD_PYTHON="$$(scripts/python-env)" cargo test --all-targets

lint: shellcheck
	cargo clippy --all-targets -- -D warnings

# Installed like the stack's Debian packages when missing (quietly; it is small).
shellcheck:
	@command -v shellcheck >/dev/null 2>&1 || { echo '[make] installing shellcheck (apt)' >&2; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; }
	shellcheck -x $(SHELL_SCRIPTS)

# The long form of the whole-path fuzz test (make test runs 150 messages): FUZZ_CASES messages,
# FUZZ_SEED to reproduce a failure it printed, FUZZ_SKIP_KNOWN=1 to leave out the known killers.
.PHONY: fuzz
fuzz: stack-up
	$(WITH_STACK) FUZZ_CASES="$${FUZZ_CASES:-5000}" cargo test --test fuzz_pipeline -- --nocapture

# The long form of the fault-injection suite (make test runs each scenario short: 3 faults in a
# ~32k-reading stream): CHAOS_READINGS readings paced over CHAOS_STREAM_SECONDS, CHAOS_KILLS
# faults per scenario, CHAOS_SEED to repeat the kill moments a run printed, CHAOS_ONLY to run
# one scenario (a test-name filter, e.g. ingest_kill).
# Part B (tests/chaos_faults.rs) restarts the stack's PostgreSQL and Kafka and cuts or stalls
# the database connections: CHAOS_FAULTS faults per scenario. It restarts this checkout's stack,
# so run it where no one else's tests share that stack.
# Overload (tests/chaos_overload.rs): a preloaded backlog of CHAOS_OVERLOAD_READINGS (default
# 195M: ten times a minute at the 322k readings/s benches/sustained held for ten minutes) drained
# by one ingest process, whose peak memory must stay under the bound derived from its queue
# settings. It needs about 20 GB of free disk for the run (dropped after).
.PHONY: chaos
chaos: stack-up
	$(WITH_STACK) CHAOS_READINGS="$${CHAOS_READINGS:-1000000}" CHAOS_KILLS="$${CHAOS_KILLS:-20}" \
	  CHAOS_STREAM_SECONDS="$${CHAOS_STREAM_SECONDS:-300}" CHAOS_SYSTEMS="$${CHAOS_SYSTEMS:-10}" \
	  cargo test --test chaos -- --nocapture $${CHAOS_ONLY:-}
	$(WITH_STACK) CHAOS_READINGS="$${CHAOS_READINGS:-1000000}" CHAOS_FAULTS="$${CHAOS_FAULTS:-5}" \
	  CHAOS_STREAM_SECONDS="$${CHAOS_STREAM_SECONDS:-300}" CHAOS_SYSTEMS="$${CHAOS_SYSTEMS:-10}" \
	  cargo test --test chaos_faults -- --nocapture $${CHAOS_ONLY:-}
	$(WITH_STACK) CHAOS_OVERLOAD_READINGS="$${CHAOS_OVERLOAD_READINGS:-195000000}" \
	  cargo test --test chaos_overload -- --nocapture
