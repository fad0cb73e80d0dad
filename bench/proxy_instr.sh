#!/usr/bin/env bash
# Proxy instructions per statement: user-space instructions each proxy executes per sysbench
# statement, counted by valgrind's callgrind, for haproxy (TCP mode, the L4 floor) and routetrace
# (plain, and with a trace file).  Unlike QPS this does not depend on what else the machine runs:
# the same build gives the same count to within a fraction of a percent, so a change to the
# proxy's own work shows up exactly.  The kernel's share (the system calls) is not counted; see
# the overhead section's CPU-per-statement column for the whole cost.
# Each proxy runs under callgrind twice, for EVENTS and 3 x EVENTS sysbench events at INSTR_THREADS
# client threads; the difference of the totals over the difference of statements removes start-up
# and login.  At 32 threads many sessions share one proxy thread, so costs per wakeup amortise
# (haproxy's do; routetrace's per-event costs show up there).
# usage: BUILD=build bench/proxy_instr.sh
# env: TESTS ("oltp_point_select oltp_read_write") PS_MODES ("disable auto") EVENTS (2000; a tenth
#      for oltp_read_write) INSTR_THREADS (1) TABLES (4) TABLE_SIZE (10000) MYSQL_PORT (3307)
#      PROXY_PORT (3312) INSTR_TARGETS ("haproxy rt rt_trace") KEEP (a directory: keep each target's
#      longer callgrind profile there, for callgrind_annotate)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
TESTS=${TESTS:-oltp_point_select oltp_read_write}; PS_MODES=${PS_MODES:-disable auto}
EVENTS=${EVENTS:-2000}; TABLES=${TABLES:-4}; TABLE_SIZE=${TABLE_SIZE:-10000}
INSTR_THREADS=${INSTR_THREADS:-1}; INSTR_TARGETS=${INSTR_TARGETS:-haproxy rt rt_trace}
MYSQL_PORT=${MYSQL_PORT:-3307}; PROXY_PORT=${PROXY_PORT:-3312}

bench_init instr
bench_need sysbench haproxy mariadb-client valgrind >/dev/null
bench_db "$MYSQL_PORT"
[ -x "$RT" ] || { echo "routetrace not built: $RT" >&2; exit 1; }
bench_vschema "$BENCH_WORK/vschema.json" "$TABLES"
bench_sb_prepare
cat >"$BENCH_WORK/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen mysql
  bind 127.0.0.1:$PROXY_PORT
  server db 127.0.0.1:$MYSQL_PORT
EOF

# proxy_cmd TARGET: the proxy's command line (one thread each, so the counts compare).
proxy_cmd() {
  case $1 in
    haproxy) echo "haproxy -db -f $BENCH_WORK/haproxy.cfg" ;;
    rt) echo "$RT proxy --listen 127.0.0.1:$PROXY_PORT --upstream 127.0.0.1:$MYSQL_PORT --rules file:$BENCH_WORK/vschema.json --set workers=1" ;;
    rt_trace) echo "$(proxy_cmd rt) --trace $BENCH_WORK/trace.jsonl" ;;
  esac
}

# counted TARGET TEST PS EVENTS: "instructions statements" of one run under callgrind.
counted() {
  local out=$BENCH_WORK/callgrind.out pid q ir
  rm -f "$out"
  bench_port_free "$PROXY_PORT" || return 1
  # shellcheck disable=SC2046
  bench_bg "$BENCH_WORK/$1.log" valgrind --tool=callgrind --callgrind-out-file="$out" $(proxy_cmd "$1")
  pid=$BG_PID
  bench_wait_mysql "$PROXY_PORT" 150 "$pid" || { echo "  $1 did not answer under valgrind" >&2; bench_kill "$pid"; return 1; }
  q=$(sysbench "$2" "${SB[@]}" --mysql-port="$PROXY_PORT" --threads="$INSTR_THREADS" --events="$4" --time=0 \
        --db-ps-mode="$3" run | awk '/queries:/ {print $2}')
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
  echo "$ir $q"
}

printf '  %-18s %-7s %-9s %12s %10s\n' test ps target instr/stmt "x haproxy"
for test in $TESTS; do for ps in $PS_MODES; do
  ev=$EVENTS; [ "$test" = oltp_read_write ] && ev=$(( EVENTS / 10 ))
  base=
  for t in $INSTR_TARGETS; do
    read -r i1 q1 < <(counted "$t" "$test" "$ps" "$ev") || continue
    read -r i2 q2 < <(counted "$t" "$test" "$ps" $(( 3 * ev ))) || continue
    [ -z "${KEEP:-}" ] || { mkdir -p "$KEEP"; cp "$BENCH_WORK/callgrind.out" "$KEEP/$t-$test-$ps-$INSTR_THREADS.out"; }
    per=$(( (i2 - i1) / (q2 - q1) )); [ -n "$base" ] || base=$per
    printf '  %-18s %-7s %-9s %12d %10.2f\n' "$test" "$ps" "$t" "$per" "$(awk -v a="$per" -v b="$base" 'BEGIN {print a / b}')"
  done
done; done
echo "  (user-space instructions per statement at $INSTR_THREADS client thread(s), one proxy thread; first target = 1.00)"
