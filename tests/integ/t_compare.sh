#!/usr/bin/env bash
# Byte-for-byte: the same Connector/C sessions run directly against MariaDB and through
# routetrace must dump identical result metadata, rows, OK and ERR fields.
. "$(dirname "$0")/lib.sh"
rt_init
rt_start_proxy || { rt_fail "proxy start"; rt_summary; exit 1; }
C=$RT_TOOLS/rt_client

# A 64 MiB LOAD DATA LOCAL file (CSV lines of varying length).
"$PYTHON" - "$TEST_TMP/load.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    i = 0; size = 0
    while size < 64 << 20:
        line = "%d,%s,%d\n" % (i, "v" * (i % 200), i * 3)
        f.write(line); size += len(line); i += 1
PY

# One script per database so direct and proxied runs do not see each other's tables.
make_script() { # $1 = database
	cat <<SQL
Q CREATE DATABASE IF NOT EXISTS $1
Q USE $1
Q SELECT 1, 'a', NULL, 1.5, -0.0, X'00ff', CAST('2024-01-02' AS DATE)
Q SELECT DATABASE(), @@autocommit, @@session.sql_mode
Q CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(100), d DECIMAL(10,3), b BLOB, dt DATETIME(3), j JSON)
Q INSERT INTO t VALUES (1,'one',1.125,X'000102','1999-12-31 23:59:59.999','{"a":1}'),(2,NULL,NULL,NULL,NULL,NULL),(3,'th''ree',-9.5,REPEAT(X'ee',1000),'2020-02-02 02:02:02.123','[1,2]')
Q SELECT * FROM t ORDER BY id
Q SELECT id, s FROM t WHERE id > 100
Q UPDATE t SET s = CONCAT(s, '!') WHERE id <> 2
Q SELECT 1; SELECT 2, 'two'; UPDATE t SET d = d + 1 WHERE id = 1; SELECT * FROM t WHERE id = 1
Q SELECT * FROM no_such_table
Q SELECT 1; SELECT * FROM no_such_table; SELECT 3
Q CREATE PROCEDURE p2(IN x INT) BEGIN SELECT x AS first; SELECT x * 2 AS second, 'b'; UPDATE t SET id = id WHERE id = x; END
Q CALL p2(21)
Q BEGIN
Q INSERT INTO t (id, s) VALUES (10, 'in trx')
Q SELECT @@in_transaction
Q ROLLBACK
Q SELECT COUNT(*) FROM t
Q SET @v = 'session var'
Q SELECT @v
P SELECT id, s, d, b, dt FROM t ORDER BY id
P SELECT COUNT(*), SUM(d), GROUP_CONCAT(s ORDER BY id) FROM t
Q SELECT * FROM information_schema.nonexistent
Q SHOW WARNINGS
Q SELECT CAST('x' AS INT)
Q SHOW WARNINGS
Q CREATE TABLE ld (a INT, b VARCHAR(200), c BIGINT)
Q LOAD DATA LOCAL INFILE '$TEST_TMP/load.csv' INTO TABLE ld FIELDS TERMINATED BY ','
Q SELECT COUNT(*), SUM(a), SUM(LENGTH(b)), SUM(c) FROM ld
Q LOAD DATA LOCAL INFILE '$TEST_TMP/does-not-exist.csv' INTO TABLE ld
Q SELECT COUNT(*) FROM ld
S ps_types
S big_rows
S reset_connection
Q SELECT @v, DATABASE()
Q USE $1
S change_user $RT_ED_USER $RT_ED_PW
Q SELECT CURRENT_USER(), DATABASE()
S change_user $RT_NATIVE_USER wrong-password
S change_user $RT_NATIVE_USER $RT_NATIVE_PW
Q SELECT CURRENT_USER()
Q DROP DATABASE $1
SQL
}
make_script cmp_direct | sed 's/cmp_direct/cmp_db/g' >"$TEST_TMP/direct.sql"
make_script cmp_proxy | sed 's/cmp_proxy/cmp_db/g' >"$TEST_TMP/proxy.sql"
# The two runs use the same database name one after the other (names appear in metadata).
"$C" script 127.0.0.1 "$MYSQL_PORT" "$RT_NATIVE_USER" "$RT_NATIVE_PW" "" "$TEST_TMP/direct.sql" >"$TEST_TMP/direct.out" 2>&1
rd=$?
"$C" script 127.0.0.1 "$RT_PROXY_PORT" "$RT_NATIVE_USER" "$RT_NATIVE_PW" "" "$TEST_TMP/proxy.sql" >"$TEST_TMP/proxy.out" 2>&1
rp=$?
rt_eq "direct run completed" 0 "$rd"
rt_eq "proxied run completed" 0 "$rp"
if diff -u "$TEST_TMP/direct.out" "$TEST_TMP/proxy.out" >"$TEST_TMP/diff.out"; then
	rt_pass "Connector/C dump identical direct vs proxy ($(wc -l <"$TEST_TMP/direct.out") lines)"
else
	rt_fail "Connector/C dump identical direct vs proxy" "see diff"; head -40 "$TEST_TMP/diff.out"
fi
# Check the dump holds what the scenarios are about (so identical != both empty).
out=$(cat "$TEST_TMP/direct.out")
rt_match "multi-statement gave several results" 'result fields=2 rows=1' "$out"
rt_match "stored procedure results" 'field first\|' "$out"
rt_match "LOAD DATA loaded rows" 'OK affected=[1-9][0-9]{5,}' "$out"
rt_match "missing LOCAL INFILE file reported" 'ERR [0-9]+ ' "$out"
rt_match "20 MiB row read back" '\[20971520:' "$out"
rt_match "21 MiB long-data row read back" '\[22020096:' "$out"
rt_match "prepared insert ok" 'stmt OK affected=1' "$out"
rt_match "change user to ed25519 account" "$(printf '%s' "$RT_ED_USER" | xxd -p)" "$out"
rt_match "wrong password on change user" 'ERR 1045 28000' "$out"
rt_match "reset connection" 'reset ok' "$out"
rt_log_wait "session close logged with byte counts" 'session close id=[0-9]+ client=127\.0\.0\.1:[0-9]+ user=rt_native .*c2s_bytes=[0-9]{8,} s2c_bytes=[0-9]{8,}'
rt_stop_proxy; rt_eq "proxy exits 0 on SIGTERM" 0 $?
rt_summary
