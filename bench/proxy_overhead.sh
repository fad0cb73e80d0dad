#!/usr/bin/env bash
# Proxy overhead: sysbench against MariaDB direct, through haproxy in TCP mode (the L4 floor) and
# through routetrace (plain; with --trace to a file; with --trace and --guard block), in one run.
# For each configuration (test x ps-mode x threads) the targets run back to back, REPEATS times,
# in a rotating order, every other repeat backwards; cells are medians. Ratios: rt/haproxy and
# rt/direct (issue 2), trace/rt (issue 4: >= 0.90), guard/trace (issue 5: within noise), with
# geometric means, and haproxy2/haproxy, the A/A control.
# usage: BUILD=build bench/proxy_overhead.sh
# env: TESTS ("oltp_point_select oltp_read_write") THREADS ("1 8 32") PS_MODES ("disable auto")
#      DURATION (5 s) REPEATS (3) TABLES (4) TABLE_SIZE (50000)
#      WARMUP (10 s of oltp_read_write, 8 threads, direct, after the tables are loaded, then 1 s
#      through each target; 0: none). Without it the first configuration measured ran while
#      MariaDB was still flushing and purging after the load, whichever target ran first in a pair.
#      TARGETS (auto: direct haproxy haproxy2 + rt rt_trace rt_guard when the binary supports them)
#      haproxy2 is the A/A control: a second haproxy, identical to the first. Its ratio to haproxy
#      and its verdicts show what this machine's noise alone does, against which rt/haproxy's are read.
#      MYSQL_PORT (3307) HAPROXY_PORT (3308) RT_PORT (3309; variants use 3309..3311)
#      HAPROXY2_PORT (3312)
#      ROUTETRACE (binary, default $BUILD/routetrace) ROUTETRACE_ARGS (extra flags, every rt target)
#      TRACE_ARGS (extra flags for rt_trace and rt_guard only, e.g. to turn literal redaction off)
#      RAW (raw per-run TSV path, default in the work dir, printed at the end)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
TESTS=${TESTS:-oltp_point_select oltp_read_write}; THREADS=${THREADS:-1 8 32}
PS_MODES=${PS_MODES:-disable auto}; DURATION=${DURATION:-5}; REPEATS=${REPEATS:-3}; WARMUP=${WARMUP:-10}
TABLES=${TABLES:-4}; TABLE_SIZE=${TABLE_SIZE:-50000}
MYSQL_PORT=${MYSQL_PORT:-3307}; HAPROXY_PORT=${HAPROXY_PORT:-3308}; RT_PORT=${RT_PORT:-3309}
HAPROXY2_PORT=${HAPROXY2_PORT:-3312}

bench_init overhead
bench_need sysbench haproxy mariadb-client >/dev/null
RAW=${RAW:-$BENCH_WORK/overhead.tsv}
bench_db "$MYSQL_PORT"

# --- targets --------------------------------------------------------------------------------
declare -A PORT=() TRACE=() PID=()
want() { [ -z "${TARGETS:-}" ] || [[ " $TARGETS " == *" $1 "* ]]; }
want direct && PORT[direct]=$MYSQL_PORT
if want haproxy; then bench_haproxy "$HAPROXY_PORT" "$MYSQL_PORT" 4096 && PORT[haproxy]=$HAPROXY_PORT PID[haproxy]=$BG_PID; fi
if want haproxy2; then bench_haproxy "$HAPROXY2_PORT" "$MYSQL_PORT" 4096 && PORT[haproxy2]=$HAPROXY2_PORT PID[haproxy2]=$BG_PID; fi
if want rt || want rt_trace || want rt_guard; then
  if ! bench_rt_proxy_ok; then
    echo "  routetrace proxy: not available ($RT missing, or its 'proxy --help' lacks --listen/--upstream)"
  else
    RULES=()
    if bench_rt_has --rules; then
      bench_vschema "$BENCH_WORK/vschema.json" "$TABLES"; RULES=(--rules "file:$BENCH_WORK/vschema.json")
    fi
    if want rt && bench_rt_start rt "$RT_PORT" "$MYSQL_PORT" "${RULES[@]}"; then
      PORT[rt]=$RT_PORT PID[rt]=$BG_PID
    fi
    if ! bench_rt_has --trace; then echo "  rt_trace: skipped (no --trace in 'routetrace proxy --help')"
    elif want rt_trace; then
      TRACE[rt_trace]=$BENCH_WORK/rt_trace.jsonl
      # shellcheck disable=SC2086
      bench_rt_start rt_trace $((RT_PORT + 1)) "$MYSQL_PORT" "${RULES[@]}" --trace "${TRACE[rt_trace]}" ${TRACE_ARGS:-} &&
        PORT[rt_trace]=$((RT_PORT + 1)) PID[rt_trace]=$BG_PID
    fi
    if ! bench_rt_has --guard || ! bench_rt_has --trace; then echo "  rt_guard: skipped (no --guard in 'routetrace proxy --help')"
    elif want rt_guard; then
      TRACE[rt_guard]=$BENCH_WORK/rt_guard.jsonl
      # shellcheck disable=SC2086
      bench_rt_start rt_guard $((RT_PORT + 2)) "$MYSQL_PORT" "${RULES[@]}" --trace "${TRACE[rt_guard]}" ${TRACE_ARGS:-} --guard block &&
        PORT[rt_guard]=$((RT_PORT + 2)) PID[rt_guard]=$BG_PID
    fi
  fi
fi
ORDER=()
# haproxy2 beside haproxy on one side and rt on the other: the control's pairs are as close in
# time as rt's
for t in direct haproxy2 haproxy rt rt_trace rt_guard; do [ -n "${PORT[$t]:-}" ] && ORDER+=("$t"); done
[ ${#ORDER[@]} -gt 0 ] || { echo "no target to measure" >&2; exit 1; }
echo "  targets: ${ORDER[*]}"

bench_sb_prepare
if [ "$WARMUP" -gt 0 ]; then
  echo "  warming up: ${WARMUP}s direct, then 1s through each target ..."
  sysbench oltp_read_write "${SB[@]}" --mysql-port="$MYSQL_PORT" --threads=8 --time="$WARMUP" run >/dev/null
  for t in "${ORDER[@]}"; do
    sysbench oltp_read_write "${SB[@]}" --mysql-port="${PORT[$t]}" --threads=8 --time=1 run >/dev/null ||
      echo "  warm-up through $t failed" >&2
  done
  sleep 0.2; for t in "${!TRACE[@]}"; do : >"${TRACE[$t]}"; done  # the first run counts its own records
fi

# run_one TEST PS THREADS TARGET REP: one sysbench run, one TSV row in $RAW.
# proc_cpu PID: user + system CPU ticks the process has used so far (every thread).
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo NA; }
run_one() {
  local test=$1 ps=$2 th=$3 t=$4 rep=$5 out qps=NA p95=NA err=NA total=NA lines=NA cpu=NA c0=NA c1
  [ -z "${PID[$t]:-}" ] || c0=$(proc_cpu "${PID[$t]}")
  if [ -n "${PID[$t]:-}" ] && ! kill -0 "${PID[$t]}" 2>/dev/null; then
    local log=$BENCH_WORK/$t.log; [ -f "$log" ] || log=$BENCH_WORK/haproxy-${PORT[$t]}.log
    echo "  $t died; its log:" >&2; tail -5 "$log" 2>/dev/null | sed 's/^/    /' >&2
    unset "PORT[$t]"; return 0
  fi
  if out=$(sysbench "$test" "${SB[@]}" --mysql-port="${PORT[$t]}" --threads="$th" --time="$DURATION" \
             --db-ps-mode="$ps" --percentile=95 run 2>&1); then
    qps=$(awk '/queries:/ {gsub(/\(/, "", $3); print $3}' <<<"$out")
    total=$(awk '/queries:/ {print $2}' <<<"$out")
    p95=$(awk '/95th percentile:/ {print $3}' <<<"$out")
    err=$(awk '/ignored errors:/ {print $3}' <<<"$out")
    # the proxy's CPU per statement: the cost of its relaying, far steadier than its QPS
    if [ "$c0" != NA ] && c1=$(proc_cpu "${PID[$t]}") && [ "$c1" != NA ] && [ "${total:-0}" -gt 0 ]; then
      cpu=$(awk -v a="$c0" -v b="$c1" -v q="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) * 1e6 / hz / q}')
    fi
  else
    echo "  sysbench failed on $t: $(grep -m1 -i -E 'fatal|error' <<<"$out")" >&2
  fi
  if [ -n "${TRACE[$t]:-}" ]; then  # records written during this run, then start afresh
    sleep 0.2; lines=$(tr -cd '\n' <"${TRACE[$t]}" 2>/dev/null | wc -c); : >"${TRACE[$t]}" 2>/dev/null || true
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$test" "$ps" "$th" "$t" "$rep" "$qps" "$p95" "$err" "$total" "$lines" "$cpu" >>"$RAW"
  printf '  %-18s %-7s %3s %-9s rep %s: %9s qps  p95 %7s ms  errors %s%s%s\n' "$test" "$ps" "$th" "$t" "$rep" "$qps" "$p95" "$err" \
    "$([ "$cpu" = NA ] || echo "  proxy cpu $cpu us/q")" \
    "$([ "$lines" = NA ] || echo "  trace records $lines/$total")"
}

printf 'test\tps\tthreads\ttarget\trep\tqps\tp95_ms\terrors\tqueries\ttrace_lines\tproxy_cpu_us_per_q\n' >"$RAW"
nconf=$(( $(wc -w <<<"$TESTS") * $(wc -w <<<"$PS_MODES") * $(wc -w <<<"$THREADS") ))
echo "  $nconf configurations x $REPEATS repeats x ${#ORDER[@]} targets x ${DURATION}s" \
     "(~$(( nconf * REPEATS * ${#ORDER[@]} * (DURATION + 1) / 60 + 1 )) min)"
for test in $TESTS; do for ps in $PS_MODES; do for th in $THREADS; do
  for rep in $(seq "$REPEATS"); do
    n=${#ORDER[@]}
    # repeats go in twos, the second the first run backwards (ABBA): within each two, every pair
    # of targets takes both orders, so a drift over a repeat favours neither (a rotation alone ran
    # rt right after haproxy in all repeats but one). Each two starts one place further on.
    for i in $(seq 0 $((n - 1))); do
      t=${ORDER[$(( ((rep % 2 ? i : n - 1 - i) + (rep - 1) / 2) % n ))]}
      if [ -n "${PORT[$t]:-}" ]; then run_one "$test" "$ps" "$th" "$t" "$rep"; fi
    done
  done
done; done; done

echo
awk -v targets="${ORDER[*]}" -v repeats="$REPEATS" -v duration="$DURATION" -f "$BENCH_DIR/overhead_report.awk" "$RAW"
case $RAW in "$BENCH_WORK"/*) ;; *) echo "raw per-run rows: $RAW" ;; esac
