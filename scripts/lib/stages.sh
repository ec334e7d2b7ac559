# Stage timings for the test scripts (sourced by scripts/test.sh, scripts/contract.sh and
# scripts/deploy/test.sh).
#
#   stage NAME BUDGET   closes the open stage and opens NAME, whose budget is BUDGET seconds (about
#                       twice its cold figure on the 2-core reference machine);
#   stage_done          closes the open stage without opening another;
#   stages_init         once per script, before the first stage: the outermost script owns the log
#                       (MYEVENTS_STAGE_LOG, exported to the scripts it calls); a nested script only
#                       appends its stages to it;
#   stages_finish RC    first thing in the script's EXIT trap, with the exit status: closes the open
#                       stage (FAILED when RC is not 0) and, in the outermost script, prints the table;
#   background NAME CMD...  runs CMD (a command or a function) in the background while the script goes
#                       on, its output in target/background/NAME.log and its stages marked as
#                       background ones (not counted in the total: they overlap the others);
#   await NAME BUDGET   waits for it, as a stage of its own ("waiting for NAME"); when it failed,
#                       prints its log and fails;
#   stop_background     ends whatever still runs in the background (for the EXIT trap);
#   background_priority in a background job: this script and its children at nice 19, and
#                       DOCKER_LOW_PRIORITY set to the `docker build` options that put the build's
#                       containers in a cgroup with cpu.idle, so that both take only the processor time
#                       the foreground leaves (elsewhere, or where the machine has no such cgroup,
#                       nothing changes).
#
# The table goes to standard output and to target/test-timings.txt; a stage over its budget is marked
# OVER and named again in a closing warning line. A warning, never a failure: timings on a shared
# machine are noisy. Bash only; needs `set -e` semantics left as the caller has them.

_stage_name=
_stage_budget=
_stage_started=
_stage_owner=

# _stage_close STATUS: records the open stage, if any, as
# "name<TAB>seconds<TAB>budget<TAB>status<TAB>foreground|background".
_stage_close() {
  [ -n "$_stage_name" ] || return 0
  printf '%s\t%s\t%s\t%s\t%s\n' "$_stage_name" "$((SECONDS - _stage_started))" "$_stage_budget" "$1" \
    "${MYEVENTS_STAGE_KIND:-foreground}" >> "$MYEVENTS_STAGE_LOG"
  _stage_name=
}

# stage_done: closes the open stage (before a nested script that records stages of its own).
stage_done() { _stage_close ok; }

stage() {
  _stage_close ok
  _stage_name=$1
  _stage_budget=$2
  _stage_started=$SECONDS
  printf '\n==> %s\n' "$1"
}

# stages_table LOG: the table of LOG's stages with a total line, then the warning line if any stage
# (or the total) went over its budget.
stages_table() {
  awk -F '\t' '
    BEGIN { printf "%-58s %8s %8s  %s\n", "stage", "seconds", "budget", "status" }
    {
      mark = ($2 > $3) ? "OVER" : ""
      status = ($4 == "ok") ? mark : ($4 " " mark)
      if ($5 == "background") status = "(background) " status
      printf "%-58s %8d %8d  %s\n", $1, $2, $3, status
      if ($5 != "background") { total += $2; budget += $3 }
      if ($2 > $3) { over = over sprintf("%s%s (%d s of %d s)", sep, $1, $2, $3); sep = ", " }
    }
    END {
      printf "%-58s %8d %8d  %s\n", "total (foreground stages)", total, budget, (total > budget) ? "OVER" : ""
      if (total > budget) { over = over sprintf("%stotal (%d s of %d s)", sep, total, budget) }
      if (over != "") printf "warning: over budget: %s\n", over
    }' "$1"
}

stages_finish() {
  local rc=$1
  if [ "$rc" -eq 0 ]; then _stage_close ok; else _stage_close "FAILED($rc)"; fi
  if [ -n "$_stage_owner" ] && [ -s "$MYEVENTS_STAGE_LOG" ]; then
    mkdir -p target
    {
      echo "# $(date -u '+%F %R UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), exit $rc"
      stages_table "$MYEVENTS_STAGE_LOG"
    } > target/test-timings.txt
    printf '\n==> stage timings (target/test-timings.txt)\n'
    cat target/test-timings.txt
    rm -f "$MYEVENTS_STAGE_LOG"
  fi
}

declare -A _background_pid=()

background() {
  local name=$1
  shift
  mkdir -p target/background
  # Its own process group (set -m), so that stop_background ends its children too.
  set -m
  (
    _stage_owner=
    _stage_name=
    MYEVENTS_STAGE_KIND=background
    export MYEVENTS_STAGE_KIND
    trap 'stages_finish $?' EXIT
    trap 'exit 143' TERM
    "$@"
  ) > "target/background/$name.log" 2>&1 &
  _background_pid[$name]=$!
  set +m
  printf '\n==> started in the background: %s (target/background/%s.log)\n' "$name" "$name"
}

await() {
  local name=$1 rc=0
  stage "waiting for: $name" "$2"
  wait "${_background_pid[$name]}" || rc=$?
  unset "_background_pid[$name]"
  if [ "$rc" -ne 0 ]; then
    cat "target/background/$name.log" >&2
    echo "$name failed in the background (exit $rc): its log is above" >&2
    return "$rc"
  fi
}

stop_background() {
  local pid
  for pid in "${_background_pid[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
}

DOCKER_LOW_PRIORITY=()
background_priority() {
  [ "${MYEVENTS_STAGE_KIND:-}" = background ] || return 0
  renice -n 19 -p $$ >/dev/null 2>&1 || true
  # cgroup v1's cpu controller (cgroup v2 keeps cpu.idle under a different tree; there, nice only).
  local cgroup=/sys/fs/cgroup/cpu/myevents-background
  if { [ -d "$cgroup" ] || mkdir "$cgroup" 2>/dev/null; } && echo 1 > "$cgroup/cpu.idle" 2>/dev/null; then
    DOCKER_LOW_PRIORITY=(--cgroup-parent /myevents-background)
  fi
}

stages_init() {
  if [ -z "${MYEVENTS_STAGE_LOG:-}" ]; then
    MYEVENTS_STAGE_LOG=$(mktemp "${TMPDIR:-/tmp}/myevents-stages.XXXXXX")
    export MYEVENTS_STAGE_LOG
    _stage_owner=1
  fi
}
