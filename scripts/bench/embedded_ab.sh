#!/usr/bin/env bash
# Throughput of two builds of the embedded suite (`myevents`), measured back to back in one run:
# `GET /events` (one stored event) and `POST /events/{id}/bookings` (one seat each), `wrk -t2 -c50`,
# the two binaries alternated ROUNDS times so that the machine's drift hits both alike.
#
#   scripts/bench/embedded_ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS] [SECONDS]
#
# Prints one line per measurement and the median requests/s of each binary and route, with the
# ratio after/before. Needs wrk and curl (apt: wrk, curl).
set -euo pipefail

before=$1
after=$2
rounds=${3:-3}
seconds=${4:-5}
events_port=18181
bookings_port=18282
lua=$(mktemp --suffix=.lua)
trap 'rm -f "$lua"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
cat > "$lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"seats":1}'
wrk.headers["Content-Type"] = "application/json"
LUA

wait_for() {
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "no answer from $1" >&2
  return 1
}

# measure BINARY LABEL: starts the suite, stores a location and an event of 10^9 seats, runs wrk on
# both routes and prints "LABEL route requests/s non-2xx".
measure() {
  local binary=$1 label=$2
  EVENT_LISTEN_URL=127.0.0.1:$events_port BOOKING_LISTEN_URL=127.0.0.1:$bookings_port \
    METRICS_LISTEN_URL=off RUST_LOG=info LOG_FORMAT=json "$binary" > /dev/null 2>&1 &
  pid=$!
  wait_for "http://127.0.0.1:$events_port/healthz"
  wait_for "http://127.0.0.1:$bookings_port/healthz"
  local event
  event=$(curl -fsS "http://127.0.0.1:$events_port/events" -H 'content-type: application/json' -d \
    '{"Name":"bench","StartDate":1768000000,"EndDate":1768007200,"Capacity":1000000000,
      "Location":{"Name":"Arena","Halls":[{"name":"Main","capacity":1000000000}]}}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')
  wait_for "http://127.0.0.1:$bookings_port/events/$event/bookings"
  for route in get post; do
    local out
    if [ "$route" = get ]; then
      out=$(wrk -t2 -c50 -d"${seconds}s" "http://127.0.0.1:$events_port/events")
    else
      out=$(wrk -t2 -c50 -d"${seconds}s" -s "$lua" "http://127.0.0.1:$bookings_port/events/$event/bookings")
    fi
    local rps non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<< "$out")
    echo "$label $route $rps ${non2xx:-0}"
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

results=$(mktemp)
for round in $(seq 1 "$rounds"); do
  measure "$before" before | tee -a "$results"
  measure "$after" after | tee -a "$results"
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
median = {}
for label, route, rps, _ in rows:
    median.setdefault((label, route), []).append(float(rps))
for route in ("get", "post"):
    b = statistics.median(median[("before", route)])
    a = statistics.median(median[("after", route)])
    name = "GET /events" if route == "get" else "POST /events/{id}/bookings"
    print(f"{name}: before {b:.0f} req/s, after {a:.0f} req/s, after/before {a / b:.2f}")
PY
rm -f "$results"
