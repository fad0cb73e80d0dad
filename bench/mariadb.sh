#!/usr/bin/env bash
# Throwaway MariaDB on 127.0.0.1 for routetrace's benchmark (no systemd, temp datadir under /tmp).
# usage: MYSQL_PORT=3307 bench/mariadb.sh start|stop|status|env
#   start  install packages if missing, init a fresh datadir, launch mariadbd, wait until ready,
#          create user $BENCH_USER/$BENCH_PASS (all grants) and database $BENCH_DB. Idempotent.
#   stop   kill exactly the pid recorded at start, wait for it to exit, remove the datadir. Idempotent.
#   env    print shell exports for clients (eval "$(bench/mariadb.sh env)").
# env: MYSQL_PORT (3307) BENCH_USER (bench) BENCH_PASS (benchpass) BENCH_DB (sbtest)
#      MYSQL_DIR (/tmp/routetrace-bench-mariadb-$MYSQL_PORT)
#      MYSQL_MAX_CONN (1000)  MYSQL_THREAD_HANDLING (one-thread-per-connection; the idle-sessions
#      section uses pool-of-threads with 11000 connections to keep the server light)
# Callers that start it must stop it in an EXIT trap (bench/lib.sh does).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=${MYSQL_PORT:-3307}
USER_=${BENCH_USER:-bench}; PASS=${BENCH_PASS:-benchpass}; DB=${BENCH_DB:-sbtest}
DIR=${MYSQL_DIR:-/tmp/routetrace-bench-mariadb-$PORT}
MAX_CONN=${MYSQL_MAX_CONN:-1000}; THREADS=${MYSQL_THREAD_HANDLING:-one-thread-per-connection}
PIDF=$DIR/started.pid SOCK=$DIR/mysql.sock LOG=$DIR/mariadbd.log

running() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }

stop() {
  if running; then
    local pid; pid=$(cat "$PIDF"); kill "$pid" 2>/dev/null || true
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { kill -9 "$pid" 2>/dev/null || true; sleep 0.5; }
    echo "mariadb pid $pid stopped"
  fi
  rm -rf "$DIR"
}

start() {
  if running; then echo "mariadb already running on 127.0.0.1:$PORT pid $(cat "$PIDF")"; return 0; fi
  command -v mariadbd >/dev/null && command -v mariadb-admin >/dev/null ||
    "$HERE/../scripts/apt-need" mariadb-server mariadb-client
  rm -rf "$DIR"; mkdir -p "$DIR/data"; chown -R mysql:mysql "$DIR"
  mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/data" --skip-test-db \
    --auth-root-authentication-method=socket >"$DIR/install.log" 2>&1 ||
    { tail -20 "$DIR/install.log" >&2; exit 1; }
  # Many sessions need many descriptors: take the hard limit (mariadbd asks for what it needs).
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  mariadbd --no-defaults --user=mysql --datadir="$DIR/data" --socket="$SOCK" \
    --pid-file="$DIR/mariadbd.pid" --bind-address=127.0.0.1 --port="$PORT" \
    --skip-name-resolve --max-connections="$MAX_CONN" --thread-handling="$THREADS" \
    --open-files-limit="$(ulimit -n)" --table-open-cache=400 --back-log=2048 \
    --max-prepared-stmt-count=1000000 --innodb-buffer-pool-size=512M --innodb-log-file-size=256M \
    --innodb-flush-log-at-trx-commit=2 --performance-schema=OFF --log-error="$LOG" \
    </dev/null >>"$DIR/stdout.log" 2>&1 &
  echo $! >"$PIDF"
  for _ in $(seq 120); do
    mariadb-admin --no-defaults -uroot -S "$SOCK" ping >/dev/null 2>&1 && break
    running || { echo "mariadbd died; see $LOG" >&2; tail -20 "$LOG" >&2; stop >/dev/null; exit 1; }
    sleep 0.5
  done
  mariadb-admin --no-defaults -uroot -S "$SOCK" ping >/dev/null 2>&1 ||
    { echo "mariadbd not answering after 60 s; see $LOG" >&2; stop >/dev/null; exit 1; }
  mariadb --no-defaults -uroot -S "$SOCK" -e "
    CREATE USER IF NOT EXISTS '$USER_'@'%' IDENTIFIED BY '$PASS';
    GRANT ALL PRIVILEGES ON *.* TO '$USER_'@'%';
    CREATE DATABASE IF NOT EXISTS \`$DB\`;" || { stop >/dev/null; exit 1; }
  echo "mariadb ready on 127.0.0.1:$PORT pid $(cat "$PIDF") (user $USER_/$PASS, db $DB," \
       "max_connections $MAX_CONN, $THREADS)"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) running && echo "running pid $(cat "$PIDF") port $PORT" || { echo "not running"; exit 1; } ;;
pid) running && cat "$PIDF" ;;
env) echo "export MYSQL_PORT=$PORT MYSQL_SOCK=$SOCK BENCH_USER=$USER_ BENCH_PASS=$PASS BENCH_DB=$DB" ;;
*) sed -n '2,13p' "$0"; exit 2 ;;
esac
