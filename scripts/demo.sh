#!/usr/bin/env bash
# scripts/demo.sh (make demo): a throwaway MariaDB on loopback stands in for vtgate,
# routetrace proxy runs in front of it with a rules file, and real client traffic flows
# while the rules step through a MoveTables cutover (create, switch rdonly, replica,
# writes, complete).  Per step the demo prints where t1's reads and writes landed (from
# the trace), shows the DDL guard refusing the classic accident, and ends with
# `routetrace report`.  Everything it starts is stopped at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RT=$PWD/$BUILD/routetrace
FX=$PWD/tests/fixtures/movetables
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

step "a throwaway MariaDB stands in for vtgate ($TMP)"
rt_db_start "$TMP/db" || { echo "MariaDB did not start"; tail "$TMP/db/error.log"; exit 1; }
echo "MariaDB on 127.0.0.1:$RT_DB_PORT"
# Databases named like the keyspaces and the Vitess targets the clients use, so that
# MariaDB accepts `USE @rdonly` as vtgate would; the proxy's answer never depends on it.
{
	echo "CREATE USER demo@'%' IDENTIFIED BY 'demo'; GRANT ALL ON *.* TO demo@'%';"
	for db in sourcekeyspace targetkeyspace @primary @replica @rdonly; do
		echo "CREATE DATABASE \`$db\`;"
		for t in t1 t2 t3; do
			echo "CREATE TABLE \`$db\`.$t (id INT PRIMARY KEY, c VARCHAR(20));"
			echo "INSERT INTO \`$db\`.$t VALUES (1,'a'),(2,'b'),(3,'c');"
		done
	done
} | rt_db_root

cp "$FX/00-before.srvvschema.json" "$TMP/rules.json"
PORT=$(rt_free_port)
ADMIN=$(rt_free_port)
step "routetrace proxy in front of it, mirroring the rules file, tracing every statement"
echo "$RT proxy --listen 127.0.0.1:$PORT --upstream 127.0.0.1:$RT_DB_PORT \\"
echo "    --rules file:$TMP/rules.json --trace $TMP/trace.jsonl --admin 127.0.0.1:$ADMIN"
"$RT" proxy --listen "127.0.0.1:$PORT" --upstream "127.0.0.1:$RT_DB_PORT" \
	--rules "file:$TMP/rules.json" --trace "$TMP/trace.jsonl" --admin "127.0.0.1:$ADMIN" \
	--set rules_poll_ms=200 2>"$TMP/proxy.log" &
PROXY_PID=$!
for i in $(seq 1 50); do
	mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$PORT" -udemo -pdemo -e 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.1
done

sql() { # sql TARGET STATEMENT: the mariadb CLI through the proxy, TARGET as the database
	mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$PORT" -udemo -pdemo -D "$1" \
		--batch --skip-column-names --comments -e "$2"
}
rules_events() { grep -c '"event":"rules_changed"' "$TMP/trace.jsonl" 2>/dev/null || echo 0; }

# Where t1's statements of one demo step landed, read back from the trace.
landed() {
	"$PYTHON" - "$TMP/trace.jsonl" "$1" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if sys.argv[2] in l]
rules = [json.loads(l) for l in open(sys.argv[1]) if '"rules_changed"' in l][-1]
for s in rules.get("summary", []):
    print("   rules: " + s)
def where(pred):
    out = sorted({(r["tablet_type"], t["reached"]) for r in recs if pred(r) for t in r["tables"]})
    return ", ".join("%s -> %s" % (tt, ks) for tt, ks in out) or "-"
print("   t1 reads : " + where(lambda r: r["class"] == "select"))
print("   t1 writes: " + where(lambda r: r["class"] == "update"))
for r in recs:
    if r["verdict"] != "forwarded":
        print("   guard    : %s %s" % (r["verdict"], r["sql"]))
PY
}

n=$(rules_events)
for state in 01-created 02-rdonly-switched 03-replica-switched 04-switched 06-completed; do
	step "rules now: $state"
	cp "$FX/$state.srvvschema.json" "$TMP/rules.json.tmp" && mv "$TMP/rules.json.tmp" "$TMP/rules.json"
	for i in $(seq 1 50); do [ "$(rules_events)" -gt "$n" ] && break; sleep 0.1; done
	n=$(rules_events)
	for tgt in @primary @replica @rdonly; do
		sql "$tgt" "SELECT /* demo $state */ COUNT(*) FROM t1" >/dev/null
	done
	sql @primary "UPDATE /* demo $state */ t1 SET c = 'x' WHERE id = 2"
	case $state in
	01-created)
		echo "   the classic accident: DROP TABLE targetkeyspace.t1 (the copy, you think)"
		sql "" "DROP TABLE /* demo $state */ targetkeyspace.t1" 2>&1 | grep ERROR | sed 's/^/   client got: /' ;;
	04-switched)
		echo "   and its mirror image after the switch: DROP TABLE sourcekeyspace.t1"
		sql "" "DROP TABLE /* demo $state */ sourcekeyspace.t1" 2>&1 | grep ERROR | sed 's/^/   client got: /' ;;
	esac
	sleep 0.3
	landed "demo $state"
done

step "the tables the guard protected are all still there (direct to MariaDB)"
rt_db_root --batch -e "SELECT table_schema, table_name, table_rows FROM information_schema.tables
	WHERE table_schema IN ('sourcekeyspace','targetkeyspace') AND table_name = 't1'"

step "routetrace report $TMP/trace.jsonl"
"$RT" report "$TMP/trace.jsonl"

step "admin: curl http://127.0.0.1:$ADMIN/metrics (excerpt)"
curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -E '^routetrace_(statements_total\{table="t1"|guard|rules_generation|sessions_total)' | head -12

step "stopping the proxy (SIGTERM: drain, exit 0) and MariaDB"
kill -TERM "$PROXY_PID"; wait "$PROXY_PID"; echo "proxy exit status: $?"
PROXY_PID=
echo "demo done. The trace schema and every option are in README.md."
