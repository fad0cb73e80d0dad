# tests/integ/capture_lib.sh: what the capture tests share (sourced after lib.sh).
#   cap_setup NAME: sets tool, RULES, tmp ($TEST_TMP/NAME), a trap that stops tcpdump and
#   what rt_init started, checks the binary has `capture`, creates the keyspace tables.

cap_cleanup() {
	[ -z "${TCPDUMP_PID:-}" ] || kill -INT "$TCPDUMP_PID" 2>/dev/null
	rt_cleanup
}

cap_setup() {
	tool="$PYTHON $here/capture_tool.py"
	RULES=file:$here/../fixtures/movetables/01-created.srvvschema.json
	tmp=$TEST_TMP/$1
	mkdir -p "$tmp"
	TCPDUMP_PID=
	trap cap_cleanup EXIT
	if ! "$RT_BIN" capture --help >/dev/null 2>&1; then
		rt_fail setup "$RT_BIN has no capture subcommand"; rt_summary; exit 1
	fi
	rt_db_root <<'SQL'
CREATE DATABASE IF NOT EXISTS sourcekeyspace; CREATE DATABASE IF NOT EXISTS targetkeyspace;
CREATE TABLE IF NOT EXISTS sourcekeyspace.t1 (id INT PRIMARY KEY, v VARCHAR(64));
CREATE TABLE IF NOT EXISTS sourcekeyspace.t2 (id INT PRIMARY KEY, v VARCHAR(64));
CREATE TABLE IF NOT EXISTS targetkeyspace.t1 (id INT PRIMARY KEY, v VARCHAR(64));
CREATE TABLE IF NOT EXISTS targetkeyspace.t2 (id INT PRIMARY KEY, v VARCHAR(64));
REPLACE INTO sourcekeyspace.t1 VALUES (1, 'one'), (2, 'two');
REPLACE INTO sourcekeyspace.t2 VALUES (1, 'one');
SQL
}
