"""tests/integ/t_guard.py: the DDL guard through the real proxy against the real MariaDB,
in every MoveTables state.  Each dangerous form is refused with ERR 1105 and the table it
would have hit still exists with all its rows (checked over a direct connection); safe
DDL passes; the session keeps working after a block, in and out of a transaction; warn
mode forwards and traces would_block."""
import json
import os
import shutil
import socket
import struct
import time

import pymysql

import rtlib
from rtlib import check, fail, ok

FX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "movetables")
TMP = rtlib.TEST_TMP
S, T = "sourcekeyspace", "targetkeyspace"

# Statements that must be blocked whenever rules name t1 (states 01..05), each with the
# session database it runs under (None: none).  Covers the bypass forms of issue 5.
DANGEROUS = [
    ("plain", None, "DROP TABLE %s.t1" % T),
    ("source-qualified", None, "DROP TABLE %s.t1" % S),
    ("letter case", None, "dRoP tAbLe %s.T1" % T.upper()),  # case: vtgate keys are case-sensitive
    ("comments", None, "DROP/* a */TABLE -- x\n /*b*/ %s.t1" % T),
    ("hash comment", None, "DROP TABLE # x\n %s.t1" % T),
    ("executable comment", None, "/*!50000 DROP TABLE %s.t1 */" % T),
    ("backticks", None, "DROP TABLE `%s`.`t1`" % T),
    ("odd whitespace", None, "DROP\tTABLE\n\x0b%s.t1" % T),
    ("if exists", None, "DROP TABLE IF EXISTS %s.t1" % T),
    ("mixed list", None, "DROP TABLE %s.scratch_never, %s.t1" % (S, T)),
    ("truncate", None, "TRUNCATE %s.t1" % T),
    ("truncate table", None, "TRUNCATE TABLE %s.t1" % S),
    ("rename", None, "RENAME TABLE %s.t1 TO %s.t1_old" % (T, T)),
    ("alter rename", None, "ALTER TABLE %s.t1 RENAME TO %s.t1_old" % (S, S)),
    ("alter drop column", None, "ALTER TABLE %s.t1 DROP COLUMN c" % T),
    ("drop index", None, "DROP INDEX i ON %s.t1" % T),
    ("drop database", None, "DROP DATABASE %s" % S),
    ("vexplain queries", None, "VEXPLAIN QUERIES DROP TABLE %s.t1" % T),
    ("vexplain all", None, "VEXPLAIN ALL DROP TABLE %s.t1" % T),
    ("prepare from string", None, "PREPARE s FROM 'DROP TABLE %s.t1'" % T),
    ("prepare from var", None, "PREPARE s FROM @q"),
    ("unqualified under USE target", T, "DROP TABLE t1"),
    ("unqualified under USE source", S, "DROP TABLE t1"),
]
RULED_STATES = ["01-created", "02-rdonly-switched", "03-replica-switched", "04-switched", "05-reversed"]


def root():
    return pymysql.connect(unix_socket=os.environ["MYSQL_SOCK"], user="root", autocommit=True)


def setup_backend():
    c = root()
    with c.cursor() as cur:
        for db in (S, T):
            cur.execute("DROP DATABASE IF EXISTS `%s`" % db)
            cur.execute("CREATE DATABASE `%s`" % db)
            for t in ("t1", "t2", "t3"):
                cur.execute("CREATE TABLE `%s`.%s (id INT PRIMARY KEY, c VARCHAR(20), KEY i (c))" % (db, t))
                cur.execute("INSERT INTO `%s`.%s VALUES (1, 'a'), (2, 'b'), (3, 'c')" % (db, t))
    c.close()


def tables_intact():
    """Every t1/t2 in both keyspaces exists with its 3 rows and its column c."""
    c = root()
    bad = []
    with c.cursor() as cur:
        for db in (S, T):
            for t in ("t1", "t2"):
                try:
                    cur.execute("SELECT COUNT(*), MAX(c) FROM `%s`.%s" % (db, t))
                    n, m = cur.fetchone()
                    if n != 3 or m != "c":
                        bad.append("%s.%s has %s rows" % (db, t, n))
                except pymysql.MySQLError as e:
                    bad.append("%s.%s: %s" % (db, t, e))
    c.close()
    return bad


def install_rules(path, state):
    tmp = path + ".tmp"
    shutil.copyfile(os.path.join(FX, state + ".srvvschema.json"), tmp)
    os.rename(tmp, path)


def wait_generation(trace, n):
    for _ in range(200):
        with open(trace) as f:
            if sum(1 for l in f if '"event":"rules_changed"' in l) >= n:
                return True
        time.sleep(0.02)
    return False


def connect(port, db=None):
    return pymysql.connect(host="127.0.0.1", port=port, user=rtlib.USER, password=rtlib.PW,
                           database=db, autocommit=True, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)


def expect_block(port, state, name, db, sql):
    conn = connect(port, db)  # db in the handshake: the session target
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(sql)
                fail("%s: %s blocked" % (state, name), "statement was forwarded")
            except pymysql.MySQLError as e:
                code = e.args[0]
                msg = e.args[1] if len(e.args) > 1 else ""
                check("%s: %s blocked with ERR 1105" % (state, name),
                      code == 1105 and msg.startswith("routetrace: blocked"), "%s %s" % (code, msg))
            # the session keeps working, with correct sequence ids
            cur.execute("SELECT 40 + 2")
            if cur.fetchone()[0] != 42:
                fail("%s: %s session usable after the block" % (state, name))
    finally:
        conn.close()


def com_stmt_prepare(port, sql):
    """COM_STMT_PREPARE of a DDL over the raw protocol: refused before vtgate sees it."""
    cl = rtlib.RawClient(port)
    cl.send(rtlib.packet(0, b"\x16" + sql.encode()))
    p = rtlib.read_packet(cl.sock)[1]
    cl.close()
    return p


def read_response(sock):
    """One text-protocol response (no CLIENT_DEPRECATE_EOF): ("rows", [first column of
    each row]), ("ok",) or ("err", code, message)."""
    _, p = rtlib.read_packet(sock)
    if p[:1] == b"\0":
        return ("ok",)
    if p[:1] == b"\xff":
        return ("err", struct.unpack("<H", p[1:3])[0], p[9:].decode(errors="replace"))
    while rtlib.read_packet(sock)[1][:1] != b"\xfe":  # column definitions, then EOF
        pass
    rows = []
    while True:
        p = rtlib.read_packet(sock)[1]
        if p[:1] == b"\xfe" and len(p) < 9:
            return ("rows", rows)
        rows.append(p[1:1 + p[0]].decode())


def pipelined_block(port, state, rounds=30):
    """Commands sent back to back in one write, a blocked one among them: the server's
    answers to the others and the proxy's ERR reach the client in the order sent, every
    round (the server's answers often arrive together, so the ERR goes between them)."""
    cl = rtlib.RawClient(port, timeout=5)
    want = [("rows", ["1"]), "blocked", ("rows", ["2"]), ("rows", ["3"])]
    r = 0
    try:
        for r in range(rounds):
            cl.send(b"".join(rtlib.packet(0, b"\x03" + q.encode()) for q in (
                "SELECT 1", "DROP TABLE %s.t1" % T, "SELECT 2", "SELECT 3")))
            got = [read_response(cl.sock) for _ in want]
            got = ["blocked" if g[0] == "err" and g[1] == 1105 and g[2].startswith("routetrace: blocked")
                   else g for g in got]
            if got != want:
                fail("%s: pipelined commands around a blocked one answered in order" % state,
                     "round %d: %r" % (r, got))
                return
        ok("%s: pipelined commands around a blocked one answered in order (%d rounds)" % (state, rounds))
    except (OSError, EOFError) as e:  # a timeout: an answer stayed in the proxy
        fail("%s: pipelined commands around a blocked one answered in order" % state,
             "round %d: %s" % (r, e or type(e).__name__))
    finally:
        cl.close()


def split_writes(port, state):
    """Commands cut across writes, several in one write, and packets bigger than one read
    of the proxy (16 KiB): answered in order, the blocked one refused, whatever the cut."""
    cl = rtlib.RawClient(port, timeout=5)
    cl.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    q = lambda sql: rtlib.packet(0, b"\x03" + sql.encode())  # noqa: E731
    drop = q("DROP TABLE %s.t1 /* %s */" % (T, "d" * 5000))  # over 2 KiB: read in place
    cases = [
        ("one query in three writes", [q("SELECT 11")[:1], q("SELECT 11")[1:5], q("SELECT 11")[5:]],
         [("rows", ["11"])]),
        ("a query and the head of a DROP, then the rest", [q("SELECT 12") + q("DROP TABLE %s.t1" % T)[:6],
                                                          q("DROP TABLE %s.t1" % T)[6:] + q("SELECT 13")],
         [("rows", ["12"]), "blocked", ("rows", ["13"])]),
        ("a 5 KiB DROP cut mid-packet, then small queries", [q("SELECT 14") + drop[:3000], drop[3000:],
                                                             q("SELECT 15")],
         [("rows", ["14"]), "blocked", ("rows", ["15"])]),
        ("a 40 KiB query, then a small one", [q("SELECT LENGTH('%s')" % ("x" * 40000)) + q("SELECT 16")],
         [("rows", ["40000"]), ("rows", ["16"])]),
    ]
    try:
        for name, writes, want in cases:
            for i, w in enumerate(writes):
                if i:
                    time.sleep(0.05)
                cl.send(w)
            got = [read_response(cl.sock) for _ in want]
            got = ["blocked" if g[0] == "err" and g[1] == 1105 and g[2].startswith("routetrace: blocked")
                   else g for g in got]
            check("%s: %s" % (state, name), got == want, repr(got))
    except (OSError, EOFError) as e:
        fail("%s: split writes answered" % state, str(e) or type(e).__name__)
    finally:
        cl.close()


def main():
    setup_backend()
    rules = os.path.join(TMP, "rules.json")
    trace = os.path.join(TMP, "trace.jsonl")
    install_rules(rules, "00-before")
    proxy = rtlib.Proxy(args=["--rules", "file:" + rules, "--trace", trace, "--guard", "block",
                              "--set", "rules_poll_ms=100"])
    check("rules loaded", wait_generation(trace, 1))
    gen = 1
    for state in RULED_STATES:
        install_rules(rules, state)
        gen += 1
        if not wait_generation(trace, gen):
            fail("%s loaded" % state)
            continue
        for name, db, sql in DANGEROUS:
            expect_block(proxy.port, state, name, db, sql)
        pipelined_block(proxy.port, state)
        split_writes(proxy.port, state)
        # multi-statement: nothing of the packet runs, not even the harmless first part
        conn = connect(proxy.port)
        with conn.cursor() as cur:
            try:
                cur.execute("INSERT INTO %s.t3 VALUES (99, 'z'); DROP TABLE %s.t1" % (S, T))
                fail("%s: multi-statement blocked" % state)
            except pymysql.MySQLError as e:
                check("%s: multi-statement blocked" % state, e.args[0] == 1105, str(e))
            # in a transaction: the block does not break it
            cur.execute("BEGIN")
            cur.execute("INSERT INTO %s.t3 VALUES (50, 'tx')" % S)
            try:
                cur.execute("TRUNCATE %s.t2" % T)
                fail("%s: block inside a transaction" % state)
            except pymysql.MySQLError as e:
                check("%s: block inside a transaction" % state, e.args[0] == 1105, str(e))
            cur.execute("ROLLBACK")
            cur.execute("SELECT COUNT(*) FROM %s.t3 WHERE id IN (50, 99)" % S)
            check("%s: nothing of a blocked packet ran" % state, cur.fetchone()[0] == 0)
        conn.close()
        # a DROP longer than max_inspect_bytes: judged on its first MiB, the rest of the
        # packet is dropped (never half-forwarded), the session stays in sync
        expect_block(proxy.port, state, "2 MiB statement", None,
                     "DROP TABLE %s.t1 /* %s */" % (T, "x" * (2 << 20)))
        p = com_stmt_prepare(proxy.port, "DROP TABLE %s.t1" % T)
        check("%s: COM_STMT_PREPARE of a DROP refused" % state, p[:1] == b"\xff" and struct.unpack("<H", p[1:3])[0] == 1105, repr(p[:60]))
        # COM_INIT_DB then an unqualified name
        conn = connect(proxy.port)
        conn.select_db(T)
        with conn.cursor() as cur:
            try:
                cur.execute("DROP TABLE t2")
                fail("%s: unqualified DROP after COM_INIT_DB blocked" % state)
            except pymysql.MySQLError as e:
                check("%s: unqualified DROP after COM_INIT_DB blocked" % state, e.args[0] == 1105, str(e))
        conn.close()
        bad = tables_intact()
        check("%s: every moved table still there with all rows" % state, not bad, "; ".join(bad))
        # safe DDL on a table no rule touches passes
        conn = connect(proxy.port)
        with conn.cursor() as cur:
            try:
                cur.execute("CREATE TABLE %s.scratch (id INT)" % S)
                cur.execute("DROP TABLE %s.scratch" % S)
                ok("%s: safe DDL passes" % state)
            except pymysql.MySQLError as e:
                fail("%s: safe DDL passes" % state, str(e))
        conn.close()
    # the trace says blocked, with the reason (stopping the proxy flushes its trace)
    proxy.stop()
    recs = [json.loads(l) for l in open(trace) if '"verdict"' in l]
    blocked = [r for r in recs if r["verdict"] == "blocked"]
    check("blocked statements traced", len(blocked) >= len(DANGEROUS) * len(RULED_STATES), str(len(blocked)))
    check("blocked records carry the reason", all(r["result"].get("error") == 1105 for r in blocked))

    # warn mode: forwarded, traced would_block
    install_rules(rules, "01-created")
    trace2 = os.path.join(TMP, "trace-warn.jsonl")
    warn = rtlib.Proxy(args=["--rules", "file:" + rules, "--trace", trace2, "--guard", "warn"])
    check("warn: rules loaded", wait_generation(trace2, 1))
    conn = connect(warn.port)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE %s.t9 (id INT)" % T)
        try:
            cur.execute("ALTER TABLE %s.t1 DROP COLUMN c" % T)
            ok("warn: statement forwarded")
        except pymysql.MySQLError as e:
            fail("warn: statement forwarded", str(e))
    conn.close()
    time.sleep(0.3)
    recs = [json.loads(l) for l in open(trace2) if "DROP COLUMN" in l]
    check("warn: traced would_block", len(recs) == 1 and recs[0]["verdict"] == "would_block", str(recs))
    warn.stop()
    rtlib.summary()


if __name__ == "__main__":
    main()
