#!/usr/bin/python3
"""PyMySQL (an independent protocol implementation): the same statements directly and
through the proxy give identical descriptions, rows, affected counts and errors."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pymysql  # noqa: E402
from pymysql.constants import CLIENT  # noqa: E402
import rtlib  # noqa: E402

LOAD = os.path.join(rtlib.TEST_TMP, "py_load.tsv")
with open(LOAD, "w") as f:
    for i in range(200000):
        f.write("%d\t%s\n" % (i, "x" * (i % 37)))

BIG = bytes(range(256)) * (17 * 4096 + 3)  # ~17 MiB of every byte value


def session(port, db):
    c = pymysql.connect(host="127.0.0.1", port=port, user=rtlib.USER, password=rtlib.PW,
                        client_flag=CLIENT.MULTI_STATEMENTS, local_infile=True,
                        max_allowed_packet=64 << 20, read_timeout=60, binary_prefix=True)
    out = []

    def run(sql, args=None):
        try:
            with c.cursor() as cur:
                cur.execute(sql, args)
                while True:
                    desc = [tuple(d) for d in cur.description] if cur.description else None
                    rows = cur.fetchall()
                    out.append(("res", desc, [tuple(r) for r in rows], cur.rowcount))
                    if not cur.nextset():
                        break
        except pymysql.MySQLError as e:
            out.append(("err", e.args))

    run("CREATE DATABASE IF NOT EXISTS %s" % db)
    c.select_db(db)  # COM_INIT_DB
    run("SELECT DATABASE()")
    run("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(50), b LONGBLOB, f DOUBLE, d DATE)")
    run("INSERT INTO t VALUES (%s, %s, %s, %s, %s)", (1, "caf\u00e9", b"\x00\xff\x01", 2.5, "2020-01-01"))
    with c.cursor() as cur:
        cur.executemany("INSERT INTO t (id, v) VALUES (%s, %s)", [(i, "row%d" % i) for i in range(2, 400)])
        out.append(("many", cur.rowcount))
    run("SELECT * FROM t ORDER BY id")
    run("SELECT 1; SELECT 'a', 'b'; SELECT COUNT(*) FROM t")
    run("CREATE PROCEDURE pp() BEGIN SELECT 1 AS x; SELECT 2 AS y, 3 AS z; END")
    run("CALL pp()")
    run("SELECT * FROM missing_table")
    run("INSERT INTO t (id, b) VALUES (1000, %s)", (BIG,))
    run("SELECT LENGTH(b), MD5(b) FROM t WHERE id = 1000")
    with c.cursor() as cur:
        cur.execute("SELECT b FROM t WHERE id = 1000")
        out.append(("big", cur.fetchone()[0] == BIG))
    run("CREATE TABLE ld (a INT, s VARCHAR(64))")
    run("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld" % LOAD)
    run("SELECT COUNT(*), SUM(a), SUM(LENGTH(s)) FROM ld")
    c.ping()
    out.append(("ping", True))
    run("DROP DATABASE %s" % db)
    c.close()
    return out


proxy = rtlib.Proxy()
direct = session(rtlib.MYSQL_PORT, "py_db")
via = session(proxy.port, "py_db")
rtlib.check("pymysql: %d steps, identical direct vs proxy" % len(direct), direct == via,
            "first difference: %r" % next(((a, b) for a, b in zip(direct, via) if a != b), None))
rtlib.check("pymysql: 17 MiB blob round trip", ("big", True) in via)
rtlib.check("pymysql: LOAD DATA LOCAL loaded 200000 rows",
            any(x[0] == "res" and x[3] == 200000 for x in via), repr(via[-4:]))
rtlib.check("pymysql: multi-statement gave 3 result sets",
            sum(1 for x in via if x[0] == "res" and x[1] and x[1][0][0] in ("1", "a", "COUNT(*)")) >= 3)
rtlib.check("pymysql: error for a missing table", any(x[0] == "err" and x[1][0] == 1146 for x in via))
rtlib.check("pymysql: COM_INIT_DB followed by the proxy", proxy.wait_log("target '' -> 'py_db'"))
rtlib.check("proxy exits 0", proxy.stop() == 0)
rtlib.summary()
