#!/usr/bin/env bash
# Checks frontend-contract/ with the tools its readers use, installed here when missing:
#   - npm (frontend-contract/package.json, exact versions, package-lock.json): the TypeScript types
#     regenerated from the OpenAPI documents by openapi-typescript must equal the committed ones;
#     tsc type-checks them with the typed client example; @asyncapi/parser validates asyncapi.json;
#     the Swagger UI assets compiled into the services must equal the pinned swagger-ui-dist's;
#   - PyPI, in .cache/contract-venv (pinned): openapi-spec-validator on both OpenAPI documents,
#     check-jsonschema on every message schema, and Schemathesis against both service binaries
#     running over RabbitMQ and the MongoDB-wire test server with authentication on, and against both
#     services of the embedded suite (`cargo run`'s binary: in memory, authentication off), each
#     reading the document the service serves for its configuration, every check enabled, seeded,
#     and bounded by a number of cases (SCHEMATHESIS_MAX_EXAMPLES per operation and phase, default
#     25) and by time (SCHEMATHESIS_MAX_TIME seconds per service, default 150), whichever comes
#     first, all four at once: on the reference machine the coverage and stateful phases alone
#     outlast the time bound (25 examples: 600 s for the event service), so time still ends most
#     runs.
# The drift check of the documents themselves (code → frontend-contract/) is the Rust test
# crates/myevents-contract/tests/drift.rs.
#
# Needs MYEVENTS_TEST_AMQP_URL and MYEVENTS_TEST_MONGO_URL (scripts/test.sh exports them) and the
# debug binaries (scripts/test.sh builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/stages.sh
. scripts/lib/stages.sh
stages_init
trap 'stages_finish $?' EXIT

log() { printf '\n==> %s\n' "$*"; }

TARGET=${CARGO_TARGET_DIR:-target}/debug
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-25}
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-150}

VENV=.cache/contract-venv

# prepare: the npm packages (again only when package-lock.json changed) and the PyPI tools (again
# only when their pins or the Python changed). `scripts/contract.sh prepare` does only this.
prepare() {
  stage "contract: npm packages (frontend-contract/package-lock.json)" 240
  local lock
  lock=$(sha256sum frontend-contract/package-lock.json | cut -c1-16)
  if [ "$(cat frontend-contract/node_modules/.myevents-lock 2>/dev/null)" != "$lock" ]; then
    (cd frontend-contract && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock" > frontend-contract/node_modules/.myevents-lock
  fi

  # CPython 3.11 before 3.11.8 fails `ast.parse` deep in a recursion ("AST constructor recursion
  # depth mismatch", CPython gh-106905), which Hypothesis reaches when it describes a filter: the
  # venv takes a newer Python where the machine has one (pyenv's, or python3.12+ on the PATH).
  stage "contract: PyPI tools (Schemathesis, validators)" 300
  local python=python3 candidate wanted
  for candidate in python3.13 python3.12 \
    "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.1[23].*/bin/python3; do
    if "$candidate" -c "import venv" > /dev/null 2>&1; then python=$candidate; break; fi
  done
  wanted="$("$python" -c 'import sys; print(sys.version.split()[0])') $(sha256sum scripts/contract-requirements.txt | cut -c1-16)"
  if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$wanted" ]; then
    log "installing schemathesis, openapi-spec-validator and check-jsonschema (PyPI, pinned) into $VENV ($wanted)"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/contract-requirements.txt
    echo "$wanted" > "$VENV/.installed"
  fi
}

if [ "${1:-}" = prepare ]; then
  prepare
  exit 0
fi
: "${MYEVENTS_TEST_AMQP_URL:?set by scripts/test.sh}"
: "${MYEVENTS_TEST_MONGO_URL:?set by scripts/test.sh}"
prepare

stage "contract: TypeScript types, tsc, AsyncAPI parser, Swagger UI assets" 120
log "frontend-contract: TypeScript types regenerated from the OpenAPI documents equal the committed ones"
generated=$(mktemp -d)
trap 'rc=$?; rm -rf "$generated"; stages_finish $rc' EXIT
for service in event-service booking-service; do
  (cd frontend-contract && npx --no-install openapi-typescript "openapi/$service.json" \
    -o "$generated/$service.d.ts" --silent)
  if ! diff -u "frontend-contract/typescript/$service.d.ts" "$generated/$service.d.ts"; then
    echo "frontend-contract/typescript/$service.d.ts is stale: run (cd frontend-contract && npm run types)" >&2
    exit 1
  fi
done

log "frontend-contract: tsc type-checks the types and the typed client example"
(cd frontend-contract && npx --no-install tsc --noEmit -p tsconfig.json)

log "frontend-contract: @asyncapi/parser validates asyncapi.json"
(cd frontend-contract && node scripts/validate-asyncapi.mjs asyncapi.json)

log "the Swagger UI assets the services serve are the pinned swagger-ui-dist's"
for file in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE; do
  cmp "frontend-contract/node_modules/swagger-ui-dist/$file" "crates/myevents-http/assets/swagger-ui/$file"
done

stage "contract: OpenAPI and JSON Schema validators" 120
log "openapi-spec-validator: both OpenAPI documents"
"$VENV/bin/openapi-spec-validator" frontend-contract/openapi/event-service.json \
  frontend-contract/openapi/booking-service.json

log "check-jsonschema: every message schema against its metaschema, every example against its schema"
"$VENV/bin/check-jsonschema" --check-metaschema frontend-contract/schemas/*.json
examples=$(mktemp -d)
"$VENV/bin/python" - "$examples" <<'PY'
import json, sys
doc = json.load(open("frontend-contract/asyncapi.json"))
for key, message in doc["components"]["messages"].items():
    if key.endswith("Amqp"):
        for i, example in enumerate(message.get("examples", [])):
            json.dump(example["payload"], open(f"{sys.argv[1]}/{message['name']}-{i}.json", "w"))
PY
for example in "$examples"/*.json; do
  name=$(basename "$example" | sed 's/-[0-9]*\.json$//')
  "$VENV/bin/check-jsonschema" --schemafile "frontend-contract/schemas/$name.json" "$example"
done

stage "contract: Schemathesis against both services and the embedded suite, at once" 320
log "schemathesis: both services over RabbitMQ and the MongoDB-wire test server, authentication on"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
run_id="contract-$$-$(date +%s)"
secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
common=(
  BROKER_KIND=rabbitmq AMQP_BROKER_URL="$MYEVENTS_TEST_AMQP_URL" AMQP_EXCHANGE="$run_id"
  AMQP_QUEUE_EXPIRES=600 BOOKING_QUEUE="$run_id-booking" EVENTS_QUEUE="$run_id-events"
  STORE_KIND=mongodb MONGO_URL="$MYEVENTS_TEST_MONGO_URL"
  AUTH_MODE=jwt AUTH_HS256_SECRET="$secret" AUTH_ISSUER=schemathesis AUTH_AUDIENCE=myevents
  RATE_LIMIT_PER_SECOND=off METRICS_LISTEN_URL=127.0.0.1:0 LOG_FORMAT=json RUST_LOG=warn
)
pids=()
cleanup() {
  local rc=$?
  stages_finish "$rc"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$generated" "$examples" "$report_dir"
}
report_dir=$(mktemp -d)
trap cleanup EXIT
declare -A port
# await_ready SERVICE LOG: waits up to 30 s for SERVICE's /readyz to answer 2xx; else prints LOG and
# fails the run.
await_ready() {
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:${port[$1]}/readyz" > /dev/null && return 0
    sleep 0.1
  done
  cat "$2"
  exit 1
}
for service in event-service booking-service; do
  port[$service]=$(free_port)
  env "${common[@]}" LISTEN_URL="127.0.0.1:${port[$service]}" \
    MONGO_DATABASE="${run_id//-/_}_${service//-/_}" \
    "$TARGET/$service" > "$report_dir/$service.log" 2>&1 &
  pids+=("$!")
done
for service in event-service booking-service; do
  await_ready "$service" "$report_dir/$service.log"
done
token=$(env "${common[@]}" "$TARGET/event-service" token --sub schemathesis --roles organiser,admin --ttl 3600)
events_url="http://127.0.0.1:${port[event-service]}"
bookings_url="http://127.0.0.1:${port[booking-service]}"

# What the booking service's operations work on: an event the event service announced.
event=$(curl -fs -X POST "$events_url/events" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' \
  -d '{"Name":"schemathesis","StartDate":1768000000,"EndDate":1768007200,"Capacity":1000000,"Location":{"Name":"Fuzz Hall","Halls":[{"name":"A","capacity":1000000}]}}')
MYEVENTS_CONTRACT_EVENT_ID=$(printf '%s' "$event" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')
export MYEVENTS_CONTRACT_EVENT_ID
for _ in $(seq 1 300); do
  curl -fs "$bookings_url/events/$MYEVENTS_CONTRACT_EVENT_ID/bookings" -H "Authorization: Bearer $token" > /dev/null && break
  sleep 0.1
done

# The embedded suite as `cargo run` starts it (in memory, authentication off: the caller is whoever
# X-User-Id names, as the book's frontend has it), with an event of its own to book.
port[embedded-events]=$(free_port)
port[embedded-bookings]=$(free_port)
env EVENT_LISTEN_URL="127.0.0.1:${port[embedded-events]}" BOOKING_LISTEN_URL="127.0.0.1:${port[embedded-bookings]}" \
  RATE_LIMIT_PER_SECOND=off METRICS_LISTEN_URL=off LOG_FORMAT=json RUST_LOG=warn \
  "$TARGET/myevents" > "$report_dir/embedded.log" 2>&1 &
pids+=("$!")
for service in embedded-events embedded-bookings; do
  await_ready "$service" "$report_dir/embedded.log"
done
embedded_event=$(curl -fs -X POST "http://127.0.0.1:${port[embedded-events]}/events" -H 'X-User-Id: schemathesis' \
  -H 'Content-Type: application/json' \
  -d '{"Name":"schemathesis","StartDate":1768000000,"EndDate":1768007200,"Capacity":1000000,"Location":{"Name":"Fuzz Hall","Halls":[{"name":"A","capacity":1000000}]}}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')

# All four at once, each with its own run and report: they wait on their services and the
# MongoDB-wire server more than they compute. Per target: its port, its caller's token (none for
# the embedded suite: Schemathesis generates X-User-Id from the served document, as any header), the
# event its booking operations work on.
targets=(event-service booking-service embedded-events embedded-bookings)
declare -A auth=([event-service]="Authorization: Bearer $token" [booking-service]="Authorization: Bearer $token")
declare -A event_of=([event-service]="$MYEVENTS_CONTRACT_EVENT_ID" [booking-service]="$MYEVENTS_CONTRACT_EVENT_ID"
  [embedded-events]="$embedded_event" [embedded-bookings]="$embedded_event")
declare -A runs
for service in "${targets[@]}"; do
  url="http://127.0.0.1:${port[$service]}"
  log "schemathesis: $service ($MAX_EXAMPLES examples per operation and phase, seed 1), in the background"
  headers=()
  [ -n "${auth[$service]:-}" ] && headers=(-H "${auth[$service]}")
  (cd frontend-contract && MYEVENTS_CONTRACT_EVENT_ID="${event_of[$service]}" \
    "../$VENV/bin/schemathesis" run "$url/openapi.json" --url "$url" \
    "${headers[@]}" --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --seed 1 --workers 2 \
    --request-timeout 10) > "$report_dir/$service.out" 2>&1 &
  runs[$service]=$!
  pids+=("$!")
done
cases=()
failed=
for service in "${targets[@]}"; do
  status=0
  wait "${runs[$service]}" || status=$?
  log "schemathesis: $service (exit $status)"
  cat "$report_dir/$service.out"
  if [ "$status" -ne 0 ]; then
    case $service in
      embedded-*) tail -n 50 "$report_dir/embedded.log" ;;
      *) tail -n 50 "$report_dir/$service.log" ;;
    esac
    failed=1
  fi
  cases+=("$service: $(grep -Eo '[0-9]+ generated' "$report_dir/$service.out" | tail -n 1)")
done
[ -z "$failed" ] || exit 1
log "schemathesis: test cases ${cases[*]}"
