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
#                       stage (FAILED when RC is not 0) and, in the outermost script, prints the table.
#
# The table goes to standard output and to target/test-timings.txt; a stage over its budget is marked
# OVER and named again in a closing warning line. A warning, never a failure: timings on a shared
# machine are noisy. Bash only; needs `set -e` semantics left as the caller has them.

_stage_name=
_stage_budget=
_stage_started=
_stage_owner=

# _stage_close STATUS: records the open stage, if any, as "name<TAB>seconds<TAB>budget<TAB>status".
_stage_close() {
  [ -n "$_stage_name" ] || return 0
  printf '%s\t%s\t%s\t%s\n' "$_stage_name" "$((SECONDS - _stage_started))" "$_stage_budget" "$1" \
    >> "$MYEVENTS_STAGE_LOG"
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
      printf "%-58s %8d %8d  %s\n", $1, $2, $3, status
      total += $2; budget += $3
      if ($2 > $3) { over = over sprintf("%s%s (%d s of %d s)", sep, $1, $2, $3); sep = ", " }
    }
    END {
      printf "%-58s %8d %8d  %s\n", "total", total, budget, (total > budget) ? "OVER" : ""
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

stages_init() {
  if [ -z "${MYEVENTS_STAGE_LOG:-}" ]; then
    MYEVENTS_STAGE_LOG=$(mktemp "${TMPDIR:-/tmp}/myevents-stages.XXXXXX")
    export MYEVENTS_STAGE_LOG
    _stage_owner=1
  fi
}
