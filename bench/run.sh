#!/usr/bin/env bash
# routetrace's benchmark: the `make bench` entry (after `make bench-deps` and `make all`).
# Sections, in order (each prints its table(s) and the command that reproduces it alone):
#   router    micro-benchmarks: $BUILD/bench/bench_router and $BUILD/bench/bench_reasm, if built
#   overhead  sysbench direct vs haproxy vs routetrace (+ trace, + guard variants)  proxy_overhead.sh
#   instr     user-space instructions per statement, haproxy vs routetrace (callgrind)  proxy_instr.sh
#   hop       each proxy's own time on a statement's critical path, from syscall tracepoints  proxy_hop.sh
#   idle      10,000 idle sessions: proxy RSS and bytes per session (rt and haproxy)  idle.sh
#   capture   pcap of sysbench traffic + ground truth; routetrace capture vs tshark vs pt-query-digest
# usage: BUILD=build bench/run.sh        or   make bench [BUILD=...]
# env: BENCH_ONLY=overhead,idle (run only these)   BENCH_SKIP=capture (run all but these)
#      RESULTS_DIR ($BUILD/bench): the whole output is appended to RESULTS_DIR/results-<timestamp>.txt
#      section knobs (see each script): DURATION REPEATS THREADS TESTS PS_MODES TABLE_SIZE
#      IDLE_CONNS SCALE RUNS ROUTETRACE ROUTETRACE_ARGS CAPTURE_ARGS BENCH_ROUTER_ARGS BENCH_REASM_ARGS
# Defaults keep a full run under ~25 minutes on 2 cores; the machine is shared and noisy, so only
# ratios between targets measured in the same run mean anything.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
SECTIONS=(router overhead instr hop idle capture)
RESULTS_DIR=${RESULTS_DIR:-$BUILD/bench}
mkdir -p "$RESULTS_DIR"
RESULTS=$RESULTS_DIR/results-$(date -u +%Y%m%dT%H%M%SZ).txt
REL_BUILD=${BUILD#"$ROOT"/}
trap 'echo "interrupted" >&2; exit 130' INT TERM

selected() {
  local s=$1
  if [ -n "${BENCH_ONLY:-}" ]; then [[ ",$BENCH_ONLY," == *",$s,"* ]] || return 1; fi
  if [ -n "${BENCH_SKIP:-}" ]; then [[ ",$BENCH_SKIP," != *",$s,"* ]] || return 1; fi
  return 0
}

# env_of VAR...: "VAR=value" for each VAR that is set, to make the reproduce line exact
env_of() { local v out=""; for v in "$@"; do [ -z "${!v+x}" ] || out+="$v='${!v}' "; done; echo "$out"; }

header() {
  echo "routetrace benchmark  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r);" \
       "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (+ uncommitted changes)')"
  echo "binary: $RT $( [ -x "$RT" ] && echo "($(stat -c %y "$RT" | cut -d. -f1))" || echo '(not built)')"
  echo "versions: $(mariadbd --version 2>/dev/null | awk '{print $3}' | sed 's/^/MariaDB /') ·" \
       "$(sysbench --version 2>/dev/null) · $(haproxy -v 2>/dev/null | awk 'NR == 1 {print "HAProxy", $3}') ·" \
       "$(tshark --version 2>/dev/null | awk 'NR == 1 {print "TShark", $3}') ·" \
       "$(pt-query-digest --version 2>/dev/null | awk '{print "pt-query-digest", $2}')"
  echo "results: $RESULTS"
}

section() {  # section NAME REPRODUCE-COMMAND
  echo; bench_hr 100
  echo "== $1"
  echo "   reproduce: $2"
  echo "   (or: BENCH_ONLY=$1 make bench BUILD=$REL_BUILD)"
  bench_hr 100
}

micro() {  # micro NAME ARGS: run one micro-benchmark binary if it was built
  local bin=$BUILD/bench/$1 rc=0
  if [ ! -x "$bin" ]; then
    if [ -f "$ROOT/bench/$1.c" ]; then echo "$1: not built (make BUILD=$REL_BUILD ${bin#"$ROOT"/})"
    else echo "$1: not built (bench/$1.c does not exist yet)"; fi
    return 0
  fi
  echo "\$ ${bin#"$ROOT"/} $2"
  # shellcheck disable=SC2086
  timeout 600 "$bin" $2 || rc=$?
  [ "$rc" = 0 ] || echo "$1: exited with status $rc"
}

run_router() {
  section router "$REL_BUILD/bench/bench_router ${BENCH_ROUTER_ARGS:-}; $REL_BUILD/bench/bench_reasm ${BENCH_REASM_ARGS:-}"
  micro bench_router "${BENCH_ROUTER_ARGS:-}"
  echo
  micro bench_reasm "${BENCH_REASM_ARGS:-}"
}

run_overhead() {
  section overhead "BUILD=$REL_BUILD $(env_of TESTS THREADS PS_MODES DURATION REPEATS WARMUP TABLES TABLE_SIZE TARGETS ROUTETRACE ROUTETRACE_ARGS TRACE_ARGS)bench/proxy_overhead.sh"
  "$BENCH_DIR/proxy_overhead.sh"
}

run_instr() {
  section instr "BUILD=$REL_BUILD $(env_of TESTS PS_MODES EVENTS INSTR_THREADS INSTR_TARGETS KEEP TABLES TABLE_SIZE ROUTETRACE)bench/proxy_instr.sh"
  "$BENCH_DIR/proxy_instr.sh"
}

run_hop() {
  section hop "BUILD=$REL_BUILD $(env_of TESTS PS_MODES DURATION REPEATS HOP_TARGETS TABLES TABLE_SIZE ROUTETRACE)bench/proxy_hop.sh"
  "$BENCH_DIR/proxy_hop.sh"
}

run_idle() {
  section idle "BUILD=$REL_BUILD $(env_of IDLE_CONNS IDLE_TARGETS IDLE_WINDOW ROUTETRACE ROUTETRACE_ARGS IDLE_RT_ARGS)bench/idle.sh"
  "$BENCH_DIR/idle.sh"
}

run_capture() {
  local pcap=${CAPTURE_PCAP:-$BUILD/bench/corpus.pcap}
  section capture "BUILD=$REL_BUILD $(env_of SCALE)bench/capture_corpus.sh ${pcap#"$ROOT"/} && BUILD=$REL_BUILD $(env_of RUNS PTQD_RUNS ROUTETRACE CAPTURE_ARGS)bench/capture_parse.sh ${pcap#"$ROOT"/}"
  if [ -n "${CAPTURE_PCAP:-}" ] && [ -f "$pcap.truth" ]; then echo "  reusing $pcap"
  else "$BENCH_DIR/capture_corpus.sh" "$pcap" || return $?; fi
  "$BENCH_DIR/capture_parse.sh" "$pcap"
}

main() {
  local s rc failed=() t0
  header
  for s in "${SECTIONS[@]}"; do
    selected "$s" || continue
    t0=$(date +%s); rc=0
    "run_$s" || rc=$?
    echo "-- $s: $(( $(date +%s) - t0 )) s$([ "$rc" = 0 ] || echo ", FAILED (exit $rc)")"
    [ "$rc" = 0 ] || failed+=("$s")
  done
  echo
  echo "results appended to $RESULTS"
  [ ${#failed[@]} = 0 ] || { echo "sections that failed: ${failed[*]}"; return 1; }
}

main 2>&1 | tee -a "$RESULTS"
