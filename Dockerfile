# syntax=docker/dockerfile:1
# Container images of both MyEvents services, from one Dockerfile with a target per service:
#
#   docker build --target event-service   -t myevents/event-service .
#   docker build --target booking-service -t myevents/booking-service .
#
# Stages: `chef` (Rust toolchain + cargo-chef) -> `planner` (the dependency recipe) -> `builder`
# (dependencies compiled from the recipe, a layer that survives source changes, then our crates) ->
# one small runtime stage per service (distroless `cc`: glibc, libssl and CA certificates, no shell, numeric
# non-root user). Nothing is written at run time outside mounted volumes: the images run with a
# read-only root filesystem.
#
# Build arguments:
#   FEATURES       cargo features of both binaries (default "kafka sqs dynamodb otlp": one image serves
#                  RabbitMQ, Kafka and SNS + SQS, MongoDB and DynamoDB, with OTLP trace export;
#                  RabbitMQ and MongoDB are always compiled in)
#   VERSION        the version label (set it to the workspace version, as `cargo metadata` reports it)
#   GIT_COMMIT     the commit label, baked into the binaries and served at GET /version
#   SOURCE_URL     the source repository label
#   CHEF_IMAGE, RUNTIME_IMAGE   the base images (the defaults are the upstream ones)
ARG CHEF_IMAGE=lukemathwalker/cargo-chef:latest-rust-1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=unknown
ARG GIT_COMMIT=unknown
ARG SOURCE_URL=https://github.com/myevents/myevents
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.vendor="MyEvents"
# distroless' `nonroot` user; the Kubernetes manifests run the pods as the same UID.
USER 65532:65532
ENV LOG_FORMAT=json

FROM runtime AS event-service-base
LABEL org.opencontainers.image.title="myevents-event-service" \
      org.opencontainers.image.description="MyEvents event service: events and locations (HTTP 8181, metrics 9100)"
ENV LISTEN_URL=0.0.0.0:8181 METRICS_LISTEN_URL=0.0.0.0:9100
EXPOSE 8181 9100
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/event-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/event-service"]

FROM runtime AS booking-service-base
LABEL org.opencontainers.image.title="myevents-booking-service" \
      org.opencontainers.image.description="MyEvents booking service: bookings and seat inventory (HTTP 8282, metrics 9101)"
ENV LISTEN_URL=0.0.0.0:8282 METRICS_LISTEN_URL=0.0.0.0:9101
EXPOSE 8282 9101
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/booking-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/booking-service"]

# The same images from binaries built outside this file (`cargo build --features "kafka sqs dynamodb otlp"` on a
# Debian 12 machine, whose glibc the runtime image matches), for a test run that has built them already:
#
#   docker build -f Dockerfile --target event-service-prebuilt -t myevents/event-service DIR
#
# where DIR holds that one binary (`event-service`, or `booking-service` for its target). These stages
# come before the build stages so that the classic builder, which builds every stage up to the target,
# does not compile anything; it builds them on the way to the targets below too, from the source
# context, in stages no image keeps (hence a COPY of the whole context, which any context satisfies).
FROM event-service-base AS event-service-prebuilt
COPY . /usr/local/bin/

FROM booking-service-base AS booking-service-prebuilt
COPY . /usr/local/bin/

FROM ${CHEF_IMAGE} AS chef
WORKDIR /src
# librdkafka (feature `kafka`) is built from its bundled sources: make and a C++ compiler, and
# OpenSSL's headers for its TLS (the runtime image has libssl3).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make g++ libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG FEATURES="kafka sqs dynamodb otlp"
# Symbols stripped from the binaries (a third of their size; panics still name their location).
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
    -p myevents-event-service -p myevents-booking-service --features "${FEATURES}"
COPY . .
ARG GIT_COMMIT=unknown
RUN MYEVENTS_GIT_COMMIT="${GIT_COMMIT}" cargo build --release --locked \
    -p myevents-event-service -p myevents-booking-service --features "${FEATURES}" \
    && mkdir -p /out \
    && cp target/release/event-service target/release/booking-service /out/

# The images built here, from the sources (the default).
FROM event-service-base AS event-service
COPY --from=builder /out/event-service /usr/local/bin/event-service

FROM booking-service-base AS booking-service
COPY --from=builder /out/booking-service /usr/local/bin/booking-service
