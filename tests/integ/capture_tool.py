#!/usr/bin/env python3
"""Helpers for t_capture_reasm.sh: a loopback echo exchange with known bytes, and pcap
doctoring (reorder / duplicate / drop / cut the start) on classic pcap files.

  capture_tool.py free-port
  capture_tool.py echo HOST PORT OUTPREFIX KIND   -> OUTPREFIX.c2s / OUTPREFIX.s2c expected
  capture_tool.py doctor IN OUT MODE PORT          -> prints facts about what it did
  capture_tool.py workload HOST PORT EXPECT.json   -> runs the mariadb CLI, rt_client
                                                     (prepared statements) and pymysql
                                                     against HOST:PORT; writes what each
                                                     statement must look like in a trace
  capture_tool.py check-trace TRACE EXPECT.json [--ignore-target] [--allow-missing=N]
                                                  -> every expected statement found once,
                                                     right class/target/tables/result;
                                                     nothing else invented
  capture_tool.py compare PROXY_TRACE CAPTURE_TRACE -> field-for-field equality of the
                                                     statement records, paired by client
                                                     address and order (timing, source,
                                                     session id excepted)
  capture_tool.py sslrequest HOST PORT             -> a client that asks for TLS
  capture_tool.py notmysql PORT SECONDS / notmysql-client PORT
                                                  -> another protocol on a MySQL port
  capture_tool.py fuzzseed PCAP OUTDIR PORT        -> seeds for tests/fuzz/fuzz_capture.c
  capture_tool.py badpcap KIND OUT PORT            -> hostile/broken capture files
                                                     (garbage_link, hostile_tcp,
                                                     notmysql_bytes)
"""
import json
import os
import subprocess
import random
import socket
import struct
import sys
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def echo(host, port, prefix, kind):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    got_s2c = bytearray()

    def serve():
        c, _ = srv.accept()
        c.sendall(b"HELLO from server\n")
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
        c.close()

    t = threading.Thread(target=serve)
    t.start()
    rnd = random.Random(42)
    if kind == "small":
        msgs = [b"select 1;\n", b"x" * 100, b"hello world\n", bytes(range(256))]
    else:  # big: many segments in both directions
        msgs = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in (70000, 150000, 33333)]
    cl = socket.socket(fam, socket.SOCK_STREAM)
    cl.connect((host, port))
    sent = bytearray()
    for m in msgs:
        cl.sendall(m)
        sent += m
        time.sleep(0.05)
    cl.shutdown(socket.SHUT_WR)
    while True:
        b = cl.recv(65536)
        if not b:
            break
        got_s2c += b
    cl.close()
    t.join()
    srv.close()
    want_s2c = b"HELLO from server\n" + bytes(sent)
    if bytes(got_s2c) != want_s2c:
        sys.exit("echo exchange itself went wrong")
    open(prefix + ".c2s", "wb").write(bytes(sent))
    open(prefix + ".s2c", "wb").write(want_s2c)


def read_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit("not a classic pcap")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    pkts, off = [], 24
    while off + 16 <= len(data):
        ts1, ts2, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        pkts.append([ts1, ts2, orig, data[off + 16:off + 16 + incl]])
        off += 16 + incl
    return e, data[:24], linktype, pkts


def write_pcap(path, e, hdr, pkts):
    with open(path, "wb") as f:
        f.write(hdr)
        for ts1, ts2, orig, b in pkts:
            f.write(struct.pack(e + "IIII", ts1, ts2, len(b), orig) + b)


def tcp_info(linktype, b):
    """(sport, dport, seq, flags, payload_len) for Ethernet/IPv4|IPv6 TCP, else None."""
    if linktype != 1 or len(b) < 14:
        return None
    et, off = struct.unpack(">H", b[12:14])[0], 14
    if et == 0x0800:
        ihl = (b[off] & 15) * 4
        tot = struct.unpack(">H", b[off + 2:off + 4])[0]
        t, end = off + ihl, off + tot
    elif et == 0x86DD:
        plen = struct.unpack(">H", b[off + 4:off + 6])[0]
        t, end = off + 40, off + 40 + plen
    else:
        return None
    sp, dp, seq = struct.unpack(">HHI", b[t:t + 8])
    doff = (b[t + 12] >> 4) * 4
    return sp, dp, seq, b[t + 13], end - (t + doff)


def doctor(inp, out, mode, port):
    e, hdr, lt, pkts = read_pcap(inp)
    port = int(port)
    info = [tcp_info(lt, p[3]) for p in pkts]
    data_idx = [i for i, x in enumerate(info) if x and x[4] > 0]
    rnd = random.Random(7)
    if mode == "shuffle":  # swap neighbours, duplicate every third data packet
        order = list(range(len(pkts)))
        for k in range(0, len(data_idx) - 1, 2):
            a, b = data_idx[k], data_idx[k + 1]
            order[a], order[b] = order[b], order[a]
        res = []
        for n, i in enumerate(order):
            res.append(pkts[i])
            if i in data_idx and n % 3 == 0:
                res.append(pkts[i])
        write_pcap(out, e, hdr, res)
        print("packets", len(res))
    elif mode == "shuffle-dir":
        # realistic reordering: swap neighbouring data segments of the same flow and
        # direction (a peer never sends before it received what it answers, so order
        # across directions and around the SYN stays causal), duplicate every third
        order = list(range(len(pkts)))
        last = {}
        for i, x in enumerate(info):
            if not x:
                continue
            last.pop((x[1], x[0]), None)  # the peer spoke: no swap across it
            if x[4] == 0:
                continue
            if x[:2] in last:
                j = last.pop(x[:2])
                order[i], order[j] = order[j], order[i]
            else:
                last[x[:2]] = i
        res = []
        for n, i in enumerate(order):
            res.append(pkts[i])
            if i in data_idx and n % 3 == 0:
                res.append(pkts[i])
        write_pcap(out, e, hdr, res)
        print("packets", len(res))
    elif mode.startswith("drop-text:"):  # drop the client segment holding this text
        text = mode.split(":", 1)[1].encode()
        victims = [i for i in data_idx if info[i][1] == port and text in pkts[i][3]]
        if len(victims) != 1:
            sys.exit("drop-text: %d segments hold %r" % (len(victims), text))
        write_pcap(out, e, hdr, [p for i, p in enumerate(pkts) if i != victims[0]])
        print("dropped_len", info[victims[0]][4])
    elif mode == "drop":  # drop one client data packet that is not the last one
        c2s = [i for i in data_idx if info[i][1] == port]
        victim = c2s[len(c2s) // 2] if len(c2s) > 2 else c2s[0]
        sp, dp, seq, fl, plen = info[victim]
        isn = next(x[2] for x in info if x and x[1] == port and x[3] & 2)
        write_pcap(out, e, hdr, [p for i, p in enumerate(pkts) if i != victim])
        # stream offset of the dropped bytes (SYN takes one sequence number)
        print("dropped_off", (seq - isn - 1) % (1 << 32), "dropped_len", plen)
    elif mode == "midstream":  # cut everything before the 2nd client data packet
        c2s = [i for i in data_idx if info[i][1] == port]
        cut = c2s[1]
        isn = next(x[2] for x in info if x and x[1] == port and x[3] & 2)
        s2c_cut = [x for x in info[cut:] if x and x[0] == port and x[4] > 0]
        sisn = next(x[2] for x in info if x and x[0] == port and x[3] & 2)
        write_pcap(out, e, hdr, pkts[cut:])
        print("c2s_from", (info[cut][2] - isn - 1) % (1 << 32),
              "s2c_from", (s2c_cut[0][2] - sisn - 1) % (1 << 32))
    elif mode == "pcapng":  # same packets, pcapng container
        write_pcapng(out, lt, pkts)
        print("packets", len(pkts))
    else:
        sys.exit("unknown mode")


def write_pcapng(path, linktype, pkts):
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    with open(path, "wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(1, struct.pack("<HHI", linktype, 0, 262144)))
        for ts1, ts2, orig, b in pkts:
            t = ts1 * 1000000 + ts2
            f.write(block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(b), orig) + b))


# ---- MySQL workload with known statements --------------------------------------------

def E(sql, cls, target, result, command="query", tables=None, verdict=None):
    """One statement a trace must hold exactly once."""
    d = {"sql": sql, "class": cls, "target": target, "result": result, "command": command}
    if tables is not None:
        d["tables"] = tables
    if verdict is not None:
        d["verdict"] = verdict
    return d


def T(named, reached):
    return {"named": named, "reached": reached}


SK, TK = "sourcekeyspace", "targetkeyspace"
BIG_ROWS = 30000


def cli_workload(host, port, user, pw, tag):
    """The mariadb CLI: text queries, a multi-statement packet, USE (COM_INIT_DB), an
    error, a large result.  Returns the expected records."""
    multi = "SELECT 11 AS a_%s; SELECT 22 AS b; SELECT COUNT(*) FROM t2" % tag
    script = "\n".join([
        "SELECT id, v FROM t1 WHERE id = 1 /* %s */;" % tag,
        "INSERT INTO t1 (id, v) VALUES (100, 'cap_%s');" % tag,
        "UPDATE targetkeyspace.t1 SET v = 'x' WHERE id = 100;",
        "DELIMITER //",
        multi + "//",
        "DELIMITER ;",
        "USE targetkeyspace",
        "SELECT COUNT(*) FROM t2 /* %s */;" % tag,
        "SELECT * FROM no_such_table_%s;" % tag,
        "SELECT seq, REPEAT('x', 200) AS pad FROM seq_1_to_%d;" % BIG_ROWS,
        "DELETE FROM sourcekeyspace.t1 WHERE id = 100;",
        "DROP TABLE IF EXISTS t1;",
        "CREATE TABLE IF NOT EXISTS t1 (id INT PRIMARY KEY, v VARCHAR(64));",
    ]) + "\n"
    subprocess.run(["mariadb", "--no-defaults", "--protocol=tcp", "-h", host, "-P", str(port),
                    "-u", user, "-p" + pw, "--batch", "--force", "--comments", SK],
                   input=script.encode(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return [
        E("SELECT id, v FROM t1 WHERE id = 1 /* %s */" % tag, "select", SK, {"ok": True, "rows": 1},
          tables=[T(SK + ".t1", SK + ".t1")]),
        E("INSERT INTO t1 (id, v) VALUES (100, 'cap_%s')" % tag, "insert", SK,
          {"ok": True, "affected": 1}, tables=[T(SK + ".t1", SK + ".t1")]),
        E("UPDATE targetkeyspace.t1 SET v = 'x' WHERE id = 100", "update", SK,
          {"ok": True, "affected": 0}, tables=[T(TK + ".t1", SK + ".t1")]),
        E("SELECT 11 AS a_%s" % tag, "select", SK, {"ok": True, "rows": 1}),
        E("SELECT 22 AS b", "select", SK, {"ok": True, "rows": 1}),
        E("SELECT COUNT(*) FROM t2", "select", SK, {"ok": True, "rows": 1},
          tables=[T(SK + ".t2", SK + ".t2")]),
        E("use `targetkeyspace`", "use", SK, {"ok": True, "affected": 0}, command="init_db"),
        E("SELECT COUNT(*) FROM t2 /* %s */" % tag, "select", TK, {"ok": True, "rows": 1},
          tables=[T(TK + ".t2", SK + ".t2")]),
        E("SELECT * FROM no_such_table_%s" % tag, "select", TK, {"error": 1146}),
        E("SELECT seq, REPEAT('x', 200) AS pad FROM seq_1_to_%d" % BIG_ROWS, "select", TK,
          {"ok": True, "rows": BIG_ROWS}),
        E("DELETE FROM sourcekeyspace.t1 WHERE id = 100", "delete", TK, {"ok": True, "affected": 1},
          tables=[T(SK + ".t1", SK + ".t1")]),
        # the guard's case: t1 under targetkeyspace still routes to sourcekeyspace.t1
        E("DROP TABLE IF EXISTS t1", "drop", TK, {"ok": True, "affected": 0},
          tables=[T(TK + ".t1", SK + ".t1")], verdict="would_block"),
        E("CREATE TABLE IF NOT EXISTS t1 (id INT PRIMARY KEY, v VARCHAR(64))", "create", TK,
          {"ok": True, "affected": 0}),
    ], ["SELECT DATABASE()"]


def rtclient_workload(host, port, user, pw, tag, tmpdir):
    """Connector/C: server-side prepared statements (COM_STMT_PREPARE + EXECUTE)."""
    tool = os.path.join(os.environ.get("RT_TOOLS", "build/tests/integ"), "rt_client")
    q1 = "SELECT id, v FROM t1 WHERE id = 1 /* ps %s */" % tag
    q2 = "SELECT COUNT(*) FROM targetkeyspace.t2 /* ps %s */" % tag
    q3 = "INSERT INTO t2 (id, v) VALUES (200, 'ps_%s')" % tag
    path = os.path.join(tmpdir, "rt_client.script")
    with open(path, "w") as f:
        f.write("P %s\nP %s\nP %s\nQ DELETE FROM t2 WHERE id = 200\n" % (q1, q2, q3))
    subprocess.run([tool, "script", host, str(port), user, pw, SK, path],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    out = []
    for q, res, tabs, cls in ((q1, {"ok": True, "rows": 1}, [T(SK + ".t1", SK + ".t1")], "select"),
                              (q2, {"ok": True, "rows": 1}, [T(TK + ".t2", SK + ".t2")], "select"),
                              (q3, {"ok": True, "affected": 1}, [T(SK + ".t2", SK + ".t2")],
                               "insert")):
        out.append(E(q, cls, SK, None, command="prepare", tables=tabs))
        out.append(E(q, cls, SK, res, command="execute", tables=tabs))
    out.append(E("DELETE FROM t2 WHERE id = 200", "delete", SK, {"ok": True, "affected": 1},
                 tables=[T(SK + ".t2", SK + ".t2")]))
    return out, []


def pymysql_workload(host, port, user, pw, tag):
    """pymysql (its own protocol code): text queries, select_db, a transaction."""
    code = r"""
import sys, pymysql
c = pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3],
                    password=sys.argv[4], database="sourcekeyspace", autocommit=True)
cur = c.cursor()
cur.execute("SELECT v FROM t1 WHERE id = 2 /* py %s */" % sys.argv[5])
cur.fetchall()
c.select_db("targetkeyspace")
cur.execute("SELECT COUNT(*) FROM t1 /* py %s */" % sys.argv[5])
cur.fetchall()
c.close()
"""
    subprocess.run(["/usr/bin/python3", "-c", code, host, str(port), user, pw, tag],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return [
        E("SELECT v FROM t1 WHERE id = 2 /* py %s */" % tag, "select", SK, {"ok": True, "rows": 1},
          tables=[T(SK + ".t1", SK + ".t1")]),
        E("use `targetkeyspace`", "use", SK, {"ok": True, "affected": 0}, command="init_db"),
        E("SELECT COUNT(*) FROM t1 /* py %s */" % tag, "select", TK, {"ok": True, "rows": 1},
          tables=[T(TK + ".t1", SK + ".t1")]),
    ], ["SET AUTOCOMMIT = 1", "SET AUTOCOMMIT = 0"]


def workload(host, port, out):
    user, pw = os.environ["RT_NATIVE_USER"], os.environ["RT_NATIVE_PW"]
    tag = "w%d" % (int(port) % 100000)
    tmpdir = os.path.dirname(os.path.abspath(out))
    exp, extras = [], []
    for fn in (lambda: cli_workload(host, port, user, pw, tag),
               lambda: rtclient_workload(host, port, user, pw, tag, tmpdir),
               lambda: pymysql_workload(host, port, user, pw, tag)):
        e, x = fn()
        exp += e
        extras += x
    json.dump({"expect": exp, "extras": extras}, open(out, "w"), indent=1)


def load_trace(path):
    recs = []
    for line in open(path, "rb"):
        if line.strip():
            r = json.loads(line)
            if "event" not in r:
                recs.append(r)
    return recs


def check_trace(trace, expect, ignore_target=False, allow_missing=0):
    """Each expected statement exactly once with the expected fields; every other record
    is one of the clients' own housekeeping statements."""
    spec = json.load(open(expect))
    recs = load_trace(trace)
    errors = []
    used = set()
    for e in spec["expect"]:
        hits = [i for i, r in enumerate(recs)
                if r.get("sql") == e["sql"] and r.get("command") == e["command"] and i not in used
                and (r.get("command") != "init_db" or r.get("target") == e["target"])]
        if not hits:
            errors.append("missing: %s %s" % (e["command"], e["sql"]))
            continue
        if e["command"] not in ("init_db",) and len(hits) > 1:
            errors.append("found %d times: %s" % (len(hits), e["sql"]))
        i = hits[0]
        used.add(i)
        r = recs[i]
        if r.get("class") != e["class"]:
            errors.append("%s: class %s, want %s" % (e["sql"], r.get("class"), e["class"]))
        if not ignore_target and r.get("target") != e["target"]:
            errors.append("%s: target %s, want %s" % (e["sql"], r.get("target"), e["target"]))
        if e.get("result") is not None:
            got = r.get("result") or {}
            for k, v in e["result"].items():
                if got.get(k) != v:
                    errors.append("%s: result %s, want %s" % (e["sql"], got, e["result"]))
                    break
        if "tables" in e and not (ignore_target and r.get("target") == "unknown"):
            got = [{"named": t.get("named"), "reached": t.get("reached")}
                   for t in r.get("tables", [])]
            if got != e["tables"]:
                errors.append("%s: tables %s, want %s" % (e["sql"], got, e["tables"]))
        if "verdict" in e and r.get("verdict") != e["verdict"] and not (
                ignore_target and r.get("target") == "unknown"):
            errors.append("%s: verdict %s, want %s" % (e["sql"], r.get("verdict"), e["verdict"]))
    for i, r in enumerate(recs):
        if i not in used and r.get("sql") not in spec["extras"]:
            errors.append("invented/unexpected: %s %s" % (r.get("command"), r.get("sql")))
    missing = [x for x in errors if x.startswith("missing:")]
    for x in errors:
        print(x)
    print("statements %d expected, %d records, %d errors" % (len(spec["expect"]), len(recs),
                                                           len(errors)))
    if allow_missing and len(errors) == len(missing) and len(missing) <= allow_missing:
        return True
    return not errors


IGNORED = ("ts", "latency_us", "source", "session")


def compare(a_path, b_path):
    """Pairs records by client address, then by order within the client; every field but
    timing, source and the session id must be equal."""
    def by_client(path):
        d = {}
        for r in load_trace(path):
            d.setdefault(r.get("client"), []).append(r)
        return d
    a, b = by_client(a_path), by_client(b_path)
    errors, n = [], 0
    if sorted(a) != sorted(b):
        errors.append("clients differ: %s vs %s" % (sorted(a), sorted(b)))
    for client in sorted(set(a) & set(b)):
        ra, rb = a[client], b[client]
        if len(ra) != len(rb):
            errors.append("%s: %d vs %d records" % (client, len(ra), len(rb)))
        for x, y in zip(ra, rb):
            n += 1
            kx = {k: v for k, v in x.items() if k not in IGNORED}
            ky = {k: v for k, v in y.items() if k not in IGNORED}
            if kx != ky:
                diff = sorted(k for k in set(kx) | set(ky) if kx.get(k) != ky.get(k))
                errors.append("%s: %s differs in %s: %s vs %s" % (
                    client, x.get("sql"), diff, [kx.get(k) for k in diff], [ky.get(k) for k in diff]))
    for x in errors[:20]:
        print(x)
    print("compared %d record pairs over %d clients, %d differences" % (n, len(a), len(errors)))
    return not errors and n > 0


def sslrequest(host, port):
    """Reads the greeting, asks for TLS (SSLRequest: caps with CLIENT_SSL), then sends
    bytes shaped like a TLS ClientHello and closes: the capture must call it opaque."""
    c = socket.create_connection((host, int(port)), 5)
    c.recv(65536)
    caps = 0x0200 | 0x0800 | 0x8000 | 0x80000 | 0x1  # PROTOCOL_41 SSL SECURE_CONN PLUGIN_AUTH
    body = struct.pack("<IIB23x", caps, 1 << 24, 45)
    c.sendall(struct.pack("<I", len(body))[:3] + b"\x01" + body)
    c.sendall(b"\x16\x03\x01\x00\x40" + bytes(range(64)))
    time.sleep(0.2)
    c.close()


def notmysql(port, seconds):
    """A server on PORT that talks something else (an HTTP-ish banner and echo)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(port)))
    srv.listen(4)
    srv.settimeout(float(seconds))
    try:
        while True:
            c, _ = srv.accept()
            c.sendall(b"HTTP/1.0 200 OK\r\nServer: not-mysql\r\n\r\n" + bytes(range(256)) * 4)
            c.settimeout(1)
            try:
                b = c.recv(65536)
                c.sendall(b[::-1])
            except OSError:
                pass
            c.close()
    except socket.timeout:
        pass


def notmysql_client(port):
    c = socket.create_connection(("127.0.0.1", int(port)), 5)
    c.recv(65536)
    c.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"\x03SELECT 1" * 50)
    time.sleep(0.1)
    c.close()


def tcp_frame(src, dst, sport, dport, seq, ack, flags, payload, window=65535):
    """An Ethernet/IPv4/TCP frame (checksums left zero: the capture does not check them)."""
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                      flags, window, 0, 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return b"\0" * 12 + b"\x08\x00" + ip + tcp


def badpcap(kind, out, port):
    """Hostile or broken capture files (classic pcap, Ethernet)."""
    port = int(port)
    rnd = random.Random(11)
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    pkts = []
    t = [1700000000, 0]

    def add(b, orig=None):
        t[1] += 1000
        pkts.append([t[0], t[1], orig if orig is not None else len(b), b])

    cli, srv = "10.0.0.1", "10.0.0.2"
    if kind == "garbage_link":  # random frames, random lengths, some claiming more than captured
        for _ in range(3000):
            add(bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 200))))
        pkts.append([t[0], 5, 1 << 20, b"\x08\x00"])
    elif kind == "hostile_tcp":
        # a handshake, then: overlapping segments with different bytes, a huge window of
        # endless out-of-order segments, sequence numbers near wraparound, stray RST/FIN
        isn_c, isn_s = 0xFFFFFF00, 0x7FFFFFF0
        add(tcp_frame(cli, srv, 40000, port, isn_c, 0, 0x02, b""))
        add(tcp_frame(srv, cli, port, 40000, isn_s, isn_c + 1, 0x12, b""))
        for i in range(2000):
            off = rnd.randrange(0, 1 << 20)
            data = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 1400)))
            add(tcp_frame(cli, srv, 40000, port, isn_c + 1 + off, isn_s + 1, 0x18, data))
            add(tcp_frame(cli, srv, 40000, port, isn_c + 1 + off + 3, isn_s + 1, 0x18,
                          data[::-1]))
        for i in range(3000):  # many flows, never closed
            sp = 1024 + i
            add(tcp_frame(cli, srv, sp, port, i * 7919, 0, 0x18, b"\x05\x00\x00\x00\x03SELE"))
        add(tcp_frame(srv, cli, port, 40000, isn_s + 1, isn_c + 1, 0x04, b""))
    elif kind == "notmysql_bytes":  # a clean handshake, then bytes that are not MySQL
        add(tcp_frame(cli, srv, 40001, port, 1000, 0, 0x02, b""))
        add(tcp_frame(srv, cli, port, 40001, 5000, 1001, 0x12, b""))
        add(tcp_frame(srv, cli, port, 40001, 5001, 1001, 0x18, b"\xff" * 300))
        add(tcp_frame(cli, srv, 40001, port, 1001, 5301, 0x18, bytes(range(256)) * 8))
    else:
        sys.exit("unknown badpcap kind")
    write_pcap(out, "<", hdr, pkts)
    print("packets", len(pkts))


def check_unknown_until_use(trace, session, after):
    """Session SESSION's records: user and target "unknown" (never guessed) up to its
    first COM_INIT_DB/USE; target AFTER from that statement's successor on."""
    recs = [r for r in load_trace(trace) if r.get("session") == int(session)]
    use = next((i for i, r in enumerate(recs) if r.get("class") == "use"), None)
    errors = []
    if use is None or use == 0 or use == len(recs) - 1:
        errors.append("need records before and after a USE, got %d (use at %s)" % (len(recs), use))
    else:
        for r in recs[:use + 1]:
            if r.get("target") != "unknown" or r.get("user") != "unknown":
                errors.append("before USE: %s user=%s target=%s" % (r.get("sql"), r.get("user"),
                                                                   r.get("target")))
        for r in recs[use + 1:]:
            if r.get("target") != after:
                errors.append("after USE: %s target=%s" % (r.get("sql"), r.get("target")))
    for x in errors:
        print(x)
    print("session %s: %d records, USE at %s, %d errors" % (session, len(recs), use, len(errors)))
    return not errors


def fuzzseed(pcap, outdir, port, limit=60000):
    """Turns each connection of a pcap into a seed for tests/fuzz/fuzz_capture.c
    (records [ctl][len][dt] + payload, in order; payloads cut into 255-byte pieces)."""
    e, hdr, lt, pkts = read_pcap(pcap)
    port = int(port)
    flows = {}
    for ts1, ts2, orig, b in pkts:
        x = tcp_info(lt, b)
        if not x or port not in (x[0], x[1]):
            continue
        cport, d = (x[0], 0) if x[1] == port else (x[1], 1)
        flows.setdefault(cport, []).append((d, x, b))
    os.makedirs(outdir, exist_ok=True)
    for k, (cport, items) in enumerate(sorted(flows.items())):
        out = bytearray()
        for d, (sp, dp, seq, fl, plen), b in items:
            sel = 1 if fl & 2 and not fl & 16 else 2 if fl & 2 else 3 if fl & 1 else \
                4 if fl & 4 else 5 if plen else 0
            payload = b[len(b) - plen:] if plen else b""
            pieces = [payload[i:i + 255] for i in range(0, len(payload), 255)] or [b""]
            for p in pieces:
                out += bytes([(k & 3) | d << 2 | sel << 3, len(p), 0]) + p
                sel = 5 if sel in (1, 2) else sel
            if len(out) > limit:
                break
        open(os.path.join(outdir, "seed-%s-%d" % (os.path.basename(pcap), k)), "wb").write(out)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "free-port":
        free_port()
    elif cmd == "echo":
        echo(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "doctor":
        doctor(*sys.argv[2:6])
    elif cmd == "workload":
        workload(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "check-trace":
        am = [int(a.split("=")[1]) for a in sys.argv if a.startswith("--allow-missing=")]
        sys.exit(0 if check_trace(sys.argv[2], sys.argv[3], "--ignore-target" in sys.argv,
                                  am[0] if am else 0) else 1)
    elif cmd == "compare":
        sys.exit(0 if compare(sys.argv[2], sys.argv[3]) else 1)
    elif cmd == "unknown-until-use":
        sys.exit(0 if check_unknown_until_use(sys.argv[2], sys.argv[3], sys.argv[4]) else 1)
    elif cmd == "sslrequest":
        sslrequest(sys.argv[2], sys.argv[3])
    elif cmd == "notmysql":
        notmysql(sys.argv[2], sys.argv[3])
    elif cmd == "notmysql-client":
        notmysql_client(sys.argv[2])
    elif cmd == "fuzzseed":
        fuzzseed(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "badpcap":
        badpcap(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown command " + cmd)
