#!/usr/bin/env bash
# Idle sessions memory (issue 2: 10,000 idle client sessions through the proxy with its RSS under
# 64 MiB; report the per-session cost). For haproxy (TCP mode, for comparison) and routetrace in
# turn: start the proxy, read its RSS (/proc/PID/status VmRSS, VmHWM) after one login, open N
# sessions through it with bench/idle_conns (handshake + login on each, then idle), read the RSS
# again while they are held, then check every session still answers a ping.
# MariaDB runs with pool-of-threads and max_connections N+1000 to stay light with N sessions.
# usage: BUILD=build bench/idle.sh
# env: IDLE_CONNS (10000) IDLE_TARGETS ("haproxy rt"; "direct" checks the tool without a proxy)
#      IDLE_WINDOW (64 logins in flight) IDLE_SETTLE (2 s before reading RSS)
#      IDLE_MYSQL_PORT (3327) IDLE_HAPROXY_PORT (3328) IDLE_RT_PORT (3329)
#      ROUTETRACE (binary) ROUTETRACE_ARGS / IDLE_RT_ARGS (extra proxy flags)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
WANT=${IDLE_CONNS:-10000}; TARGETS=${IDLE_TARGETS:-haproxy rt}
WINDOW=${IDLE_WINDOW:-64}; SETTLE=${IDLE_SETTLE:-2}
DB_PORT=${IDLE_MYSQL_PORT:-3327}; HA_PORT=${IDLE_HAPROXY_PORT:-3328}; RT_PORT=${IDLE_RT_PORT:-3329}
TOOL=$BUILD/bench/idle_conns
TARGET_MIB=64

bench_init idle
[ -x "$TOOL" ] || { echo "  ${TOOL#"$ROOT"/} not built (make BUILD=${BUILD#"$ROOT"/} ${TOOL#"$ROOT"/})"; exit 1; }
bench_need haproxy mariadb-client >/dev/null

# A proxy holds two sockets per session (client side + upstream): cap N to the fd hard limit.
HARD=$(ulimit -Hn)
N=$WANT
if [ "$HARD" != unlimited ] && [ $((2 * WANT + 64)) -gt "$HARD" ]; then
  N=$(( (HARD - 64) / 2 ))
  echo "  NOTE: open-file hard limit is $HARD and cannot be raised here; a proxy needs 2 sockets per"
  echo "        session, so this run opens $N sessions instead of $WANT (RSS at $WANT is extrapolated)"
fi
MYSQL_MAX_CONN=$((N + 1000)) MYSQL_THREAD_HANDLING=pool-of-threads bench_db "$DB_PORT"
eval "$(MYSQL_PORT=$DB_PORT "$BENCH_DIR/mariadb.sh" env)"
server_sessions() {
  mariadb --no-defaults -uroot -S "$MYSQL_SOCK" -N -e "SHOW GLOBAL STATUS LIKE 'Threads_connected'" | awk '{print $2}'
}
rss() { awk '/^VmRSS:/ {r = $2} /^VmHWM:/ {h = $2} END {print r + 0, h + 0}' "/proc/$1/status"; }

# hold TARGET PORT PROXY_PID: one measurement; appends a result row to $ROWS.
hold() {
  local t=$1 port=$2 pid=$3 fifo=$BENCH_WORK/$1.in out=$BENCH_WORK/$1.out err=$BENCH_WORK/$1.err
  local before=(0 0) held=(0 0) tool i ready srv alive rate
  [ "$pid" = - ] || read -r -a before <<<"$(rss "$pid")"
  mkfifo "$fifo"
  ( exec "$TOOL" -P "$port" -u "$BENCH_USER" -p "$BENCH_PASS" -D "$BENCH_DB" -n "$N" -w "$WINDOW" -H 900 ) \
    <"$fifo" >"$out" 2>"$err" &
  tool=$!; BENCH_PIDS+=("$tool")
  exec 7>"$fifo"
  for i in $(seq 3000); do  # up to 5 minutes for N logins
    grep -q '^ready' "$out" && break
    kill -0 "$tool" 2>/dev/null || break
    sleep 0.1
  done
  ready=$(grep '^ready' "$out" || echo "ready connected=0 failed=$N seconds=0 rate=0/s")
  sleep "$SETTLE"
  [ "$pid" = - ] || read -r -a held <<<"$(rss "$pid")"
  srv=$(server_sessions)
  exec 7>&-                                   # EOF: the tool pings every session, then closes
  wait "$tool" 2>/dev/null || true
  bench_kill "$tool"
  alive=$(sed -n 's/^alive=\([0-9]*\).*/\1/p' "$out"); alive=${alive:-0}
  rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$ready")
  echo "  $t: $ready; server sessions while held: $srv; alive after hold: $alive"
  sed 's/^/    /' "$err" | head -5
  ROWS+=("$t ${before[0]} ${held[0]} ${held[1]} $(sed -n 's/.*connected=\([0-9]*\).*/\1/p' <<<"$ready") $alive $srv ${rate:-0}")
  for _ in $(seq 600); do  # let the server drop them before the next target connects
    [ "$(server_sessions)" -lt 50 ] && break; sleep 0.1
  done
}

ROWS=()
for t in $TARGETS; do
  case $t in
  direct) hold direct "$DB_PORT" - ;;
  haproxy)
    # haproxy wants 2 x maxconn + ~20 descriptors and refuses to start beyond the hard limit
    ha_max=$((N + 100)); [ "$HARD" = unlimited ] || [ $((2 * ha_max + 40)) -le "$HARD" ] || ha_max=$(( (HARD - 40) / 2 ))
    bench_haproxy "$HA_PORT" "$DB_PORT" "$ha_max" || continue
    hold haproxy "$HA_PORT" "$BG_PID"; bench_kill "$BG_PID" ;;
  rt)
    if ! bench_rt_proxy_ok; then echo "  rt: routetrace proxy not available ($RT)"; continue; fi
    extra=()  # its session cap must not be what stops the run
    if bench_rt_help | grep -q max_client_connections; then extra=(--set "max_client_connections=$((N + 100))"); fi
    # shellcheck disable=SC2086
    bench_rt_start rt "$RT_PORT" "$DB_PORT" "${extra[@]}" ${IDLE_RT_ARGS:-} || continue
    hold rt "$RT_PORT" "$BG_PID"; bench_kill "$BG_PID" ;;
  *) echo "  unknown idle target $t" >&2 ;;
  esac
done

echo
echo "Idle sessions: $N requested through each proxy (MariaDB pool-of-threads; RSS from /proc/PID/status)"
printf '%-8s %9s %7s %9s | %10s %10s %10s | %12s %14s\n' target connected alive server \
  "RSS before" "RSS held" "HWM" "per session" "RSS at $WANT"
for r in "${ROWS[@]}"; do
  read -r t b h hwm conn alive srv rate <<<"$r"
  awk -v t="$t" -v b="$b" -v h="$h" -v hwm="$hwm" -v c="$conn" -v a="$alive" -v s="$srv" -v want="$WANT" -v lim="$TARGET_MIB" 'BEGIN {
    mib = 1024
    if (t == "direct") { printf "%-8s %9d %7d %9d | %10s %10s %10s | %12s %14s\n", t, c, a, s, "-", "-", "-", "-", "-"; exit }
    per = c > 0 ? (h - b) * 1024 / c : 0; est = (b * 1024 + per * want) / 1048576
    printf "%-8s %9d %7d %9d | %7.1f MiB %6.1f MiB %6.1f MiB | %10.0f B %10.1f MiB%s\n", t, c, a, s, b / mib, h / mib, hwm / mib, per, est,
      (t == "rt" ? (est < lim && c > 0 ? "  (target < " lim " MiB: met)" : "  (target < " lim " MiB: NOT met)") : "") }'
done
echo "(per session = (RSS held - RSS before) / sessions connected; 'RSS at $WANT' = before + $WANT x per session;"
echo " alive = sessions that answered a ping after the hold; server = MariaDB Threads_connected while held)"
