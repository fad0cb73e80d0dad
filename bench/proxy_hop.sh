#!/usr/bin/env bash
# Proxy hop time: how long each proxy holds a statement on its critical path, measured from the
# kernel's syscall tracepoints (perf), for haproxy in TCP mode (the L4 floor) and routetrace.
# One sysbench client thread keeps one request in flight, so every hop is: the proxy's thread
# wakes in epoll_wait, reads, does its own work, sends. The time from that wakeup to the send is
# what the proxy itself adds to the hop (client->server: framing, the statement's analysis and the
# guard's decision; server->client: framing and accounting). The rest of a round trip (the
# kernel's loopback delivery, waking the next thread, MariaDB's work) is the same for both, and on
# a shared VM it moves QPS by far more than the proxies differ: this measures the difference
# directly. Only the epoll and send calls are recorded (a filter), so a proxy that makes other
# system calls (haproxy reads the clock twice per wakeup) is not charged for tracing them.
# Cells are medians over REPEATS traced windows of DURATION s each, the targets alternating.
# usage: BUILD=build bench/proxy_hop.sh
# env: TESTS ("oltp_point_select oltp_read_write") PS_MODES ("disable auto") DURATION (3 s traced)
#      REPEATS (3) TABLES (4) TABLE_SIZE (10000) HOP_TARGETS ("haproxy rt rt_trace")
#      MYSQL_PORT (3307) HAPROXY_PORT (3308) RT_PORT (3309; rt_trace 3310)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
TESTS=${TESTS:-oltp_point_select oltp_read_write}; PS_MODES=${PS_MODES:-disable auto}
DURATION=${DURATION:-3}; REPEATS=${REPEATS:-3}; TABLES=${TABLES:-4}; TABLE_SIZE=${TABLE_SIZE:-10000}
HOP_TARGETS=${HOP_TARGETS:-haproxy rt rt_trace}
MYSQL_PORT=${MYSQL_PORT:-3307}; HAPROXY_PORT=${HAPROXY_PORT:-3308}; RT_PORT=${RT_PORT:-3309}
# epoll_wait, epoll_pwait, epoll_pwait2; write, writev, sendto, sendmsg (x86_64 numbers)
SYSCALLS='id == 232 || id == 281 || id == 441 || id == 1 || id == 20 || id == 44 || id == 46'

bench_init hop
bench_need sysbench haproxy mariadb-client linux-perf >/dev/null
[ "$(uname -m)" = x86_64 ] || { echo "  skipped: the syscall numbers here are x86_64's, this is $(uname -m)"; exit 0; }
if ! perf record -q -o "$BENCH_WORK/probe.data" -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
  echo "  skipped: perf cannot record raw_syscalls tracepoints here (needs root or perf_event_paranoid <= -1)"
  exit 0
fi
bench_db "$MYSQL_PORT"
[ -x "$RT" ] || { echo "routetrace not built: $RT" >&2; exit 1; }
bench_vschema "$BENCH_WORK/vschema.json" "$TABLES"
bench_sb_prepare

declare -A PORT=() PID=()
for t in $HOP_TARGETS; do
  case $t in
    haproxy) bench_haproxy "$HAPROXY_PORT" "$MYSQL_PORT" 256 && PORT[$t]=$HAPROXY_PORT PID[$t]=$BG_PID ;;
    rt) bench_rt_start rt "$RT_PORT" "$MYSQL_PORT" --rules "file:$BENCH_WORK/vschema.json" &&
          PORT[$t]=$RT_PORT PID[$t]=$BG_PID ;;
    rt_trace) bench_rt_start rt_trace $((RT_PORT + 1)) "$MYSQL_PORT" --rules "file:$BENCH_WORK/vschema.json" \
                --trace "$BENCH_WORK/rt_trace.jsonl" && PORT[$t]=$((RT_PORT + 1)) PID[$t]=$BG_PID ;;
    *) echo "  unknown target $t (haproxy, rt, rt_trace)" >&2; exit 1 ;;
  esac
done

# proxy_fds PID SS-FILTER: the proxy's established sockets matching the filter, as "fd,fd".
proxy_fds() {
  ss -tnpH state established "$2" | grep -o "pid=$1,fd=[0-9]*" | sed 's/.*fd=//' | paste -sd, -
}

# trace_one TEST PS TARGET REP: a sysbench client through TARGET, DURATION s of it traced.
trace_one() {
  local test=$1 ps=$2 t=$3 rep=$4 sb cl sv data=$BENCH_WORK/hop.data
  sysbench "$test" "${SB[@]}" --mysql-port="${PORT[$t]}" --threads=1 --time=$((DURATION + 3)) \
    --db-ps-mode="$ps" run >/dev/null 2>&1 &
  sb=$!
  sleep 1.5
  cl=$(proxy_fds "${PID[$t]}" "( sport = :${PORT[$t]} )"); sv=$(proxy_fds "${PID[$t]}" "( dport = :$MYSQL_PORT )")
  perf record -q -o "$data" -p "${PID[$t]}" -e raw_syscalls:sys_enter --filter "$SYSCALLS" \
    -e raw_syscalls:sys_exit --filter "$SYSCALLS" -- sleep "$DURATION" >/dev/null 2>&1 || true
  wait "$sb" || echo "  sysbench failed through $t" >&2
  if [ -z "$cl" ] || [ -z "$sv" ]; then echo "  $t: no client/server socket seen" >&2; return 0; fi
  perf script --ns -F tid,time,event,trace -i "$data" 2>/dev/null |
    python3 "$BENCH_DIR/hop_report.py" window "$test"$'\t'"$ps"$'\t'"$t"$'\t'"$rep" "$cl" "$sv" >>"$RAW"
  rm -f "$data"
}

RAW=$BENCH_WORK/hop.tsv; : >"$RAW"
ORDER=(); for t in $HOP_TARGETS; do [ -n "${PORT[$t]:-}" ] && ORDER+=("$t"); done
echo "  targets: ${ORDER[*]}; $REPEATS x ${DURATION}s traced per target and configuration"
for test in $TESTS; do for ps in $PS_MODES; do
  for rep in $(seq "$REPEATS"); do
    n=${#ORDER[@]}
    for i in $(seq 0 $((n - 1))); do trace_one "$test" "$ps" "${ORDER[$(( (i + rep - 1) % n ))]}" "$rep"; done
  done
done; done

echo
python3 "$BENCH_DIR/hop_report.py" table "${ORDER[*]}" <"$RAW"
echo
echo "  A hop is one epoll_wait return followed by a send on the same thread; 'both' adds the two"
echo "  medians (one statement's round trip). X-haproxy is the target's figure minus haproxy's, in"
echo "  microseconds: what it adds to a statement's critical path beyond a blind relay."
