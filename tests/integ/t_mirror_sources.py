"""tests/integ/t_mirror_sources.py: the three rules sources for real, through the proxy:
a file (rewritten in place, corrupted, removed), a local HTTP server serving vtgate's
/debug/vschema JSON (then hanging, then serving garbage), and a command printing SrvVSchema
JSON (then failing, then hanging).  While a source fails, traffic flows, statements are
still resolved with the last good snapshot, and /health and the trace say the mirror is
stale; when it recovers, the new rules are used."""
import http.server
import json
import os
import shutil
import threading
import time
import urllib.request

import pymysql

import rtlib
from rtlib import check

FX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "movetables")
TMP = rtlib.TEST_TMP
S, T = "sourcekeyspace", "targetkeyspace"
POLL = 100
TIMEOUT = 400


def fixture(state, kind="srvvschema"):
    with open(os.path.join(FX, "%s.%s.json" % (state, kind)), "rb") as f:
        return f.read()


def setup_backend():
    c = pymysql.connect(unix_socket=os.environ["MYSQL_SOCK"], user="root", autocommit=True)
    with c.cursor() as cur:
        for db in (S, T):
            cur.execute("CREATE DATABASE IF NOT EXISTS `%s`" % db)
            cur.execute("CREATE TABLE IF NOT EXISTS `%s`.t1 (id INT PRIMARY KEY)" % db)
    c.close()


class Harness:
    def __init__(self, name, spec):
        self.trace = os.path.join(TMP, name + ".trace.jsonl")
        self.admin = rtlib.free_port()
        self.proxy = rtlib.Proxy(args=["--rules", spec, "--trace", self.trace, "--admin",
                                       "127.0.0.1:%d" % self.admin, "--set", "rules_poll_ms=%d" % POLL,
                                       "--set", "rules_timeout_ms=%d" % TIMEOUT])
        self.conn = None
        self.n = 0

    def health(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.admin, timeout=5) as r:
            return json.loads(r.read())

    def wait_health(self, status, timeout=5.0):
        t0 = time.time()
        while time.time() - t0 < timeout:
            h = self.health()
            if h["status"] == status:
                return h
            time.sleep(0.05)
        return self.health()

    def records(self):
        with open(self.trace) as f:
            return [json.loads(l) for l in f if l.strip()]

    def query(self):
        """One traced statement; returns (latency, its trace record)."""
        if self.conn is None:
            self.conn = pymysql.connect(host="127.0.0.1", port=self.proxy.port, user=rtlib.USER,
                                        password=rtlib.PW, autocommit=True)
        self.n += 1
        tag = "probe%d" % self.n
        t0 = time.time()
        with self.conn.cursor() as cur:
            cur.execute("SELECT /* %s */ * FROM %s.t1" % (tag, T))
            cur.fetchall()
        took = time.time() - t0
        for _ in range(100):
            r = [x for x in self.records() if tag in (x.get("sql") or "")]
            if r:
                return took, r[0]
            time.sleep(0.02)
        return took, None

    def events(self, name, wait=2.0):
        """Records of an event; waits up to `wait` s for at least one (the trace writer
        flushes every 20 ms, on its own thread)."""
        t0 = time.time()
        while True:
            ev = [r for r in self.records() if r.get("event") == name]
            if ev or time.time() - t0 >= wait:
                return ev
            time.sleep(0.02)

    def stop(self):
        if self.conn:
            self.conn.close()
        self.proxy.stop()


def reached(rec):
    return rec["tables"][0]["reached"] if rec and rec["tables"] else None


def failing_phase(h, label, gen_before):
    """The source is failing: stale, traffic fine, last good rules used."""
    hl = h.wait_health("stale")
    check("%s: /health says stale, since when" % label, hl["status"] == "stale"
          and hl["mirror"]["stale_since"] is not None, json.dumps(hl))
    took, rec = h.query()
    check("%s: traffic flows" % label, rec is not None and took < 1.0, "took %.2f s" % took)
    check("%s: last good snapshot in force" % label,
          rec is not None and rec["rules_generation"] == gen_before and reached(rec) == S + ".t1",
          json.dumps(rec))
    check("%s: trace says the mirror is stale" % label, len(h.events("mirror_stale")) >= 1)


def file_source():
    path = os.path.join(TMP, "rules.json")
    with open(path, "wb") as f:
        f.write(fixture("01-created"))
    h = Harness("file", "file:" + path)
    hl = h.wait_health("ok")
    check("file: loaded", hl["status"] == "ok", json.dumps(hl))
    _, rec = h.query()
    gen = rec["rules_generation"] if rec else -1
    check("file: created -> target name reaches the source", reached(rec) == S + ".t1", json.dumps(rec))
    # half-written / corrupt, written in place
    with open(path, "wb") as f:
        f.write(fixture("02-rdonly-switched")[:100])
    failing_phase(h, "file corrupt", gen)
    os.unlink(path)
    failing_phase(h, "file missing", gen)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(fixture("04-switched"))
    os.rename(tmp, path)
    hl = h.wait_health("ok")
    check("file: recovered", hl["status"] == "ok" and len(h.events("mirror_recovered")) >= 1, json.dumps(hl))
    _, rec = h.query()
    check("file: new rules in force after recovery", reached(rec) == T + ".t1" and rec["rules_generation"] > gen,
          json.dumps(rec))
    h.stop()


class VtgateStub(http.server.BaseHTTPRequestHandler):
    mode = "ok"
    body = b""

    def do_GET(self):
        if VtgateStub.mode == "hang":
            time.sleep(3)
        if self.path != "/debug/vschema":
            self.send_error(404)
            return
        data = VtgateStub.body if VtgateStub.mode != "garbage" else b"<html>oops</html>"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def http_source():
    port = rtlib.free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), VtgateStub)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    VtgateStub.body = fixture("01-created", "debug-vschema")
    h = Harness("http", "http://127.0.0.1:%d/debug/vschema" % port)
    check("http: loaded /debug/vschema", h.wait_health("ok")["status"] == "ok")
    _, rec = h.query()
    gen = rec["rules_generation"] if rec else -1
    check("http: resolution from the debug form", reached(rec) == S + ".t1", json.dumps(rec))
    VtgateStub.mode = "hang"
    failing_phase(h, "http hanging", gen)
    VtgateStub.mode = "ok"
    check("http: recovered after the hang", h.wait_health("ok")["status"] == "ok")
    VtgateStub.mode = "garbage"
    failing_phase(h, "http garbage", gen)
    VtgateStub.mode = "ok"
    VtgateStub.body = fixture("04-switched", "debug-vschema")
    check("http: recovered", h.wait_health("ok")["status"] == "ok")
    _, rec = h.query()
    check("http: new rules in force", reached(rec) == T + ".t1", json.dumps(rec))
    h.stop()
    srv.shutdown()


def exec_source():
    src = os.path.join(TMP, "srvvschema.json")
    flag = os.path.join(TMP, "hang")
    with open(src, "wb") as f:
        f.write(fixture("01-created"))
    cmd = "exec:if [ -e %s ]; then sleep 30; fi; cat %s" % (flag, src)
    h = Harness("exec", cmd)
    check("exec: loaded", h.wait_health("ok")["status"] == "ok")
    _, rec = h.query()
    gen = rec["rules_generation"] if rec else -1
    with open(src, "wb") as f:
        f.write(b"not json at all")
    failing_phase(h, "exec garbage", gen)
    with open(src, "wb") as f:
        f.write(fixture("01-created"))
    check("exec: recovered after garbage", h.wait_health("ok")["status"] == "ok")
    os.unlink(src)
    failing_phase(h, "exec failing (cat: no such file)", gen)
    with open(src, "wb") as f:
        f.write(fixture("01-created"))
    check("exec: recovered after failing", h.wait_health("ok")["status"] == "ok")
    with open(src, "wb") as f:
        f.write(fixture("04-switched"))
    open(flag, "w").close()
    failing_phase(h, "exec hanging (killed at the timeout)", gen)
    os.unlink(flag)
    check("exec: recovered", h.wait_health("ok")["status"] == "ok")
    _, rec = h.query()
    check("exec: new rules in force", reached(rec) == T + ".t1", json.dumps(rec))
    h.stop()


def main():
    setup_backend()
    file_source()
    http_source()
    exec_source()
    rtlib.summary()


if __name__ == "__main__":
    main()
