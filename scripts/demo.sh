#!/usr/bin/env bash
# scripts/demo.sh (make demo): a throwaway MariaDB on loopback stands in for vtgate,
# routetrace proxy runs in front of it, real clients talk through the proxy, and the
# demo prints what the proxy saw.  Everything it starts is stopped at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RT=$PWD/$BUILD/routetrace
CLIENT=$PWD/$BUILD/tests/integ/rt_client
export PYTHON=/usr/bin/python3
[ -x "$RT" ] || { echo "demo: $RT missing: run make first"; exit 1; }
. tests/integ/lib.sh

TMP=$(mktemp -d /tmp/rt-demo.XXXXXX)
chmod 755 "$TMP"
PROXY_PID=
cleanup() {
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
	rt_db_stop "$TMP/db"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting a throwaway MariaDB (stands in for vtgate) in $TMP"
rt_db_start "$TMP/db" || { echo "MariaDB did not start"; tail "$TMP/db/error.log"; exit 1; }
echo "MariaDB on 127.0.0.1:$RT_DB_PORT"
rt_db_root -e "CREATE USER demo@'%' IDENTIFIED BY 'demo'; GRANT ALL ON *.* TO demo@'%'; CREATE DATABASE shop;"

PORT=$(rt_free_port)
step "starting: routetrace proxy --listen 127.0.0.1:$PORT --upstream 127.0.0.1:$RT_DB_PORT"
"$RT" proxy --listen "127.0.0.1:$PORT" --upstream "127.0.0.1:$RT_DB_PORT" --log-level debug \
	2>"$TMP/proxy.log" &
PROXY_PID=$!
for i in $(seq 1 50); do
	mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$PORT" -udemo -pdemo -e 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.1
done
SQL=(mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$PORT" -udemo -pdemo --table)

step "mariadb CLI through the proxy: a table, inserts, selects, USE, a multi-statement"
"${SQL[@]}" -v <<'Q'
USE shop;
CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(40), total DECIMAL(10,2));
INSERT INTO orders VALUES (1, 'ada', 12.50), (2, 'grace', 99.90), (3, 'linus', 5.00);
SELECT customer, total FROM orders WHERE total > 10 ORDER BY id;
SELECT COUNT(*) AS n FROM orders; SELECT SUM(total) AS revenue FROM orders;
Q

step "a prepared statement (Connector/C, binary protocol) through the proxy"
printf 'P SELECT id, customer, total FROM orders ORDER BY total DESC\n' >"$TMP/ps.script"
"$CLIENT" script 127.0.0.1 "$PORT" demo demo shop "$TMP/ps.script" | sed -n 's/^\(prepared\|stmt result\).*/&/p'

step "a wrong password: the server's ERR reaches the client through the proxy"
mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$PORT" -udemo -pwrong -e 'SELECT 1' 2>&1 | head -1

step "an unreachable upstream: a real MySQL ERR instead of a hang"
DEAD=$(rt_free_port); P2=$(rt_free_port)
"$RT" proxy --listen "127.0.0.1:$P2" --upstream "127.0.0.1:$DEAD" 2>/dev/null &
P2PID=$!
sleep 0.3
mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$P2" -udemo -pdemo -e 'SELECT 1' 2>&1 | head -1
kill "$P2PID"; wait "$P2PID" 2>/dev/null

step "what the proxy saw (its log: one open/close line per session, logins, target changes)"
sleep 0.2
sed -e 's/^[^ ]* //' "$TMP/proxy.log"

step "stopping the proxy (SIGTERM: drain, exit 0) and MariaDB"
kill -TERM "$PROXY_PID"; wait "$PROXY_PID"; echo "proxy exit status: $?"
PROXY_PID=
echo "demo done."
