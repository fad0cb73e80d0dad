# bench/lib.sh: helpers shared by the bench section scripts (sourced, never run).
# Every process a section starts is recorded by pid and killed by bench_cleanup (EXIT trap),
# including the throwaway MariaDB, whether the section ends normally, fails or gets Ctrl-C.
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
RT=${ROUTETRACE:-$BUILD/routetrace}
BENCH_USER=${BENCH_USER:-bench}; BENCH_PASS=${BENCH_PASS:-benchpass}; BENCH_DB=${BENCH_DB:-sbtest}
export BENCH_USER BENCH_PASS BENCH_DB
BENCH_PIDS=(); BENCH_DBS=(); BENCH_WORK=

# bench_need PKG...: install missing Debian packages (no-op when all are there).
bench_need() { "$ROOT/scripts/apt-need" "$@"; }

bench_cleanup() {
  local pid port i
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  for port in "${BENCH_DBS[@]}"; do MYSQL_PORT=$port "$BENCH_DIR/mariadb.sh" stop >/dev/null || true; done
  BENCH_DBS=()
  [ -n "$BENCH_WORK" ] && rm -rf "$BENCH_WORK"
  return 0
}

# bench_init NAME: EXIT/INT/TERM traps and a work directory in $BENCH_WORK.
bench_init() {
  BENCH_WORK=$(mktemp -d "/tmp/routetrace-bench-$1.XXXXXX")
  trap bench_cleanup EXIT
  # Ctrl-C also kills the tee of run.sh: ignore SIGPIPE from then on so the cleanup runs whole
  trap 'trap "" PIPE; echo "interrupted" >&2; exit 130' INT TERM
}

# bench_kill PID: kill one process we started and drop it from the cleanup list.
bench_kill() {
  local pid=$1 i keep=()
  kill "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  for i in "${BENCH_PIDS[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
  BENCH_PIDS=("${keep[@]}")
}

# bench_db PORT: make sure a throwaway MariaDB answers on PORT (started here => stopped at exit).
# env MYSQL_MAX_CONN / MYSQL_THREAD_HANDLING pass through to mariadb.sh.
bench_db() {
  MYSQL_PORT=$1 "$BENCH_DIR/mariadb.sh" status >/dev/null 2>&1 && return 0
  BENCH_DBS+=("$1")
  MYSQL_PORT=$1 "$BENCH_DIR/mariadb.sh" start
}

bench_db_pid() { MYSQL_PORT=$1 "$BENCH_DIR/mariadb.sh" pid; }

# bench_port_free PORT: true when nothing listens on PORT. A proxy started on a taken port fails
# to bind while whatever holds the port answers in its place: the bench would measure a stranger.
bench_port_free() {
  local who
  who=$(ss -tlnpH "sport = :$1" 2>/dev/null) || return 0
  [ -z "$who" ] && return 0
  echo "port $1 is already in use ($(grep -o 'users:.*' <<<"$who" | head -1)); stop that first" >&2
  return 1
}

# bench_wait_mysql PORT [TRIES] [PID]: until a full MySQL handshake + login + ping works through
# PORT; with PID, fails as soon as that process (the one meant to answer) is gone.
bench_wait_mysql() {
  local i
  for i in $(seq "${2:-100}"); do
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then return 1; fi
    mariadb-admin --no-defaults -h127.0.0.1 -P"$1" -u"$BENCH_USER" -p"$BENCH_PASS" \
      --connect-timeout=2 ping >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# bench_bg LOG CMD...: start CMD in the background with the open-file limit raised to the hard
# limit; its pid (the exec'd command itself) is put in $BG_PID and recorded for cleanup.
bench_bg() {
  local log=$1; shift
  ( ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@" ) </dev/null >"$log" 2>&1 &
  BG_PID=$!
  BENCH_PIDS+=("$BG_PID")
}

# bench_haproxy LISTEN_PORT UPSTREAM_PORT MAXCONN: haproxy in TCP mode (the L4 floor), pid in $BG_PID.
bench_haproxy() {
  local cfg=$BENCH_WORK/haproxy-$1.cfg
  cat >"$cfg" <<EOF
global
  maxconn $3
defaults
  mode tcp
  maxconn $3
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen mysql
  bind 127.0.0.1:$1
  server db 127.0.0.1:$2 maxconn $3
EOF
  bench_port_free "$1" || return 1
  bench_bg "$BENCH_WORK/haproxy-$1.log" haproxy -db -f "$cfg"
  bench_wait_mysql "$1" 100 "$BG_PID" || { echo "haproxy did not answer on $1:" >&2; tail -5 "$BENCH_WORK/haproxy-$1.log" >&2; return 1; }
}

# bench_rt_help: routetrace's `proxy --help` text (empty when the binary or subcommand is missing).
bench_rt_help() {
  [ -x "$RT" ] || return 0
  timeout 5 "$RT" proxy --help 2>&1 || true
}

# bench_rt_proxy_ok: the binary exists and its proxy subcommand takes --listen and --upstream.
bench_rt_proxy_ok() {
  local h; h=$(bench_rt_help)
  grep -q -- '--listen' <<<"$h" && grep -q -- '--upstream' <<<"$h"
}

# bench_rt_has FLAG: `routetrace proxy --help` mentions FLAG (e.g. --trace, --guard, --rules).
bench_rt_has() { bench_rt_help | grep -q -- "$1"; }

# bench_rt_start NAME LISTEN UPSTREAM ARGS...: routetrace proxy in the background, pid in $BG_PID.
# Returns 1 (with its log tail on stderr) if it does not answer MySQL within 20 s.
bench_rt_start() {
  local name=$1 listen=$2 upstream=$3; shift 3
  bench_port_free "$listen" || return 1
  # shellcheck disable=SC2086
  bench_bg "$BENCH_WORK/$name.log" "$RT" proxy --listen "127.0.0.1:$listen" \
    --upstream "127.0.0.1:$upstream" "$@" ${ROUTETRACE_ARGS:-}
  echo "  $name: $RT proxy --listen 127.0.0.1:$listen --upstream 127.0.0.1:$upstream $* ${ROUTETRACE_ARGS:-}"
  if ! bench_wait_mysql "$listen" 100 "$BG_PID"; then
    echo "  $name did not answer MySQL on port $listen; its log:" >&2
    tail -5 "$BENCH_WORK/$name.log" | sed 's/^/    /' >&2
    bench_kill "$BG_PID"
    return 1
  fi
}

# bench_sb_prepare: SB, sysbench's connection and table options (BENCH_USER/PASS/DB, TABLES,
# TABLE_SIZE), and its tables loaded afresh directly into the MariaDB on MYSQL_PORT.
bench_sb_prepare() {
  SB=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user="$BENCH_USER" --mysql-password="$BENCH_PASS"
      --mysql-db="$BENCH_DB" --tables="$TABLES" --table-size="$TABLE_SIZE")
  echo "  preparing $TABLES x $TABLE_SIZE rows (direct) ..."
  sysbench oltp_read_write "${SB[@]}" --mysql-port="$MYSQL_PORT" cleanup >/dev/null
  sysbench oltp_read_write "${SB[@]}" --mysql-port="$MYSQL_PORT" prepare >/dev/null
}

# bench_vschema FILE TABLES: a SrvVSchema JSON for the sysbench tables, mid-cutover: keyspace
# sbtest (the session's database) and sbtarget both hold sbtest1..N, and routing rules send every
# form (unqualified, sbtest., sbtarget.; primary, @replica, @rdonly) to sbtarget, so every table
# reference takes the rule path and comes out redirected, as during a MoveTables SwitchTraffic.
bench_vschema() {
  local f=$1 n=$2
  awk -v n="$n" 'BEGIN {
    printf "{\n  \"keyspaces\": {\n"
    split("sbtest sbtarget", ks, " ")
    for (k = 1; k <= 2; k++) {
      printf "    \"%s\": {\"sharded\": false, \"tables\": {", ks[k]
      for (i = 1; i <= n; i++) printf "%s\"sbtest%d\": {}", (i > 1 ? ", " : ""), i
      printf "}}%s\n", (k < 2 ? "," : "")
    }
    printf "  },\n  \"routing_rules\": {\n    \"rules\": [\n"
    split(" @replica @rdonly", tt, " "); tt[0] = ""; sep = ""
    for (i = 1; i <= n; i++) for (t = 0; t <= 2; t++) {
      split(" sbtest. sbtarget.", pre, " "); pre[0] = ""
      for (p = 0; p <= 2; p++) {
        printf "%s      {\"from_table\": \"%ssbtest%d%s\", \"to_tables\": [\"sbtarget.sbtest%d\"]}", sep, pre[p], i, tt[t], i
        sep = ",\n"
      }
    }
    printf "\n    ]\n  }\n}\n" }' >"$f"
}

# bench_median: median of the numbers on stdin (one per line; "NA" lines ignored).
bench_median() {
  grep -v '^NA$' | sort -g | awk '{a[NR] = $1} END {
    if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

bench_hr() { printf '%*s\n' "${1:-100}" '' | tr ' ' '-'; }
