# syntax=docker/dockerfile:1
# manifold's image: one binary, every subcommand (docker-compose.kafka.yml runs migrate, topics,
# schemas, ingest, infer and api from it). Two stages: a Rust toolchain builds the release binary;
# the runtime stage is Debian 12 (bookworm, the builder's glibc), slim, with only the shared libraries
# the binary links, which tests/compose.rs checks with ldd against the runtime package list.

FROM rust:1.95-bookworm AS build
# librdkafka is compiled from source by rdkafka-sys (a C toolchain and make come with the image)
# against the system's OpenSSL and zlib.
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Everything `cargo build` reads: the manifest declares the benches, and the code include_str!s
# the default configuration, the Avro schemas and the migrations.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY config ./config
COPY schemas ./schemas
COPY migrations ./migrations
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin manifold \
    && cp target/release/manifold /usr/local/bin/manifold

FROM debian:12.12-slim AS runtime
# The shared libraries of the binary (ldd) and the Debian packages that hold them; libc6 is the
# base image itself. ca-certificates: TLS to PostgreSQL, Kafka and the registry.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g libgcc-s1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 manifold \
    && useradd --system --uid 10001 --gid manifold --home-dir /app --shell /usr/sbin/nologin manifold
WORKDIR /app
# Read at run time, relative to the working directory: the model artifact (infer.model_dir).
COPY models ./models
COPY --from=build /usr/local/bin/manifold /usr/local/bin/manifold
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/manifold"]
CMD ["run"]
