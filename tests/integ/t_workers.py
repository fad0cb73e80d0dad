"""tests/integ/t_workers.py: sessions spread over several loop lanes (`workers`), each lane
a thread with its own tracer.  Eight real clients (pymysql) run at once through a proxy
with workers=4 while the rules change, the guard policy is reloaded and the proxy drains:
every lane must follow the rules and the guard in force, the trace must hold every
statement once in whole lines, the counters must add up over the lanes, and the
connection limit must hold for the proxy as a whole.

MariaDB stands in for vtgate, with databases named like the keyspaces (as in
t_trace_cutover.py)."""
import json
import os
import re
import shutil
import signal
import threading
import time
import urllib.request

import pymysql

import rtlib
from rtlib import check, fail, ok

FX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "movetables")
TMP = rtlib.TEST_TMP
S, T = "sourcekeyspace", "targetkeyspace"
CLIENTS = 8
WORKERS = 4


def setup_backend():
    stmts = []
    for db in (S, T):
        stmts += ["DROP DATABASE IF EXISTS `%s`" % db, "CREATE DATABASE `%s`" % db,
                  "CREATE TABLE `%s`.t1 (id INT PRIMARY KEY, c VARCHAR(20))" % db,
                  "INSERT INTO `%s`.t1 VALUES (1, 'a'), (2, 'b')" % db]
    rtlib.root_sql(stmts)


def install_rules(path, state):
    tmp = path + ".tmp"
    shutil.copyfile(os.path.join(FX, state + ".srvvschema.json"), tmp)
    os.rename(tmp, path)


def write_config(path, guard):
    with open(path + ".tmp", "w") as f:
        json.dump({"guard": guard, "drain_timeout_s": 1}, f)
    os.rename(path + ".tmp", path)


def trace_lines(path):
    """Every line must be one whole JSON object: lanes write concurrently."""
    recs, torn = [], 0
    with open(path) as f:
        for line in f:
            try:
                recs.append(json.loads(line))
            except ValueError:
                torn += 1
    return recs, torn


def wait_rules_events(trace, n, timeout=10):
    t0 = time.time()
    while time.time() - t0 < timeout:
        ev = [r for r in trace_lines(trace)[0] if r.get("event") == "rules_changed"]
        if len(ev) >= n:
            return True
        time.sleep(0.02)
    return False


def on_all(conns, fn):
    """Runs fn(i, conn) on every client at once, one thread each; returns the results."""
    out = [None] * len(conns)

    def run(i):
        try:
            out[i] = fn(i, conns[i])
        except Exception as e:  # noqa: BLE001 - the result is checked by the caller
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(conns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def select_burst(tag, n):
    def fn(i, conn):
        with conn.cursor() as cur:
            for k in range(n):
                cur.execute("SELECT /* %s c%d q%d */ c FROM t1 WHERE id = 1" % (tag, i, k))
                cur.fetchall()
        return True
    return fn


def truncate(i, conn):
    with conn.cursor() as cur:
        try:
            cur.execute("TRUNCATE TABLE /* trunc c%d */ %s.t1" % (i, S))
            return "ok"
        except pymysql.err.MySQLError as e:
            return e.args[0]


def reached_for(recs, tag):
    """{client: set of keyspaces reached by t1} over the records whose SQL has tag."""
    out = {}
    for r in recs:
        m = re.search(r"/\* %s c(\d+) " % tag, r.get("sql") or "")
        if m:
            for t in r.get("tables", []):
                out.setdefault(int(m.group(1)), set()).add((t.get("reached") or "").split(".")[0])
    return out


def metrics(port):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    vals = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
    return vals


def lanes_test():
    rules = os.path.join(TMP, "w_rules.json")
    trace = os.path.join(TMP, "w_trace.jsonl")
    conf = os.path.join(TMP, "w_conf.json")
    admin = rtlib.free_port()
    install_rules(rules, "01-created")
    write_config(conf, "block")
    proxy = rtlib.Proxy(args=["-c", conf, "--rules", "file:" + rules, "--trace", trace,
                              "--admin", "127.0.0.1:%d" % admin, "--set", "rules_poll_ms=100",
                              "--set", "workers=%d" % WORKERS])
    check("first snapshot loaded", wait_rules_events(trace, 1))
    conns = [pymysql.connect(host="127.0.0.1", port=proxy.port, user=rtlib.USER,
                             password=rtlib.PW, database=S, autocommit=True)
             for _ in range(CLIENTS)]
    lanes = [int(x) for x in re.findall(r"session open id=\d+ .* lane=(\d+)", proxy.text())]
    check("sessions spread over all %d lanes" % WORKERS, sorted(set(lanes)) == list(range(WORKERS)),
          str(lanes))
    check("log says how many worker loops", "%d worker loop(s)" % WORKERS in proxy.text())

    res = on_all(conns, select_burst("before", 50))
    check("8 clients x 50 queries at once", all(r is True for r in res), str(res))
    install_rules(rules, "04-switched")
    check("rules change traced", wait_rules_events(trace, 2))
    time.sleep(0.3)  # the other lanes take the snapshot by a job: microseconds, not more
    res = on_all(conns, select_burst("after", 5))
    check("queries after the change", all(r is True for r in res), str(res))
    time.sleep(0.5)  # the trace writer runs on its own thread
    recs, torn = trace_lines(trace)
    check("every trace line is whole JSON", torn == 0, "%d torn" % torn)
    before, after = reached_for(recs, "before"), reached_for(recs, "after")
    check("before: every client's t1 reached %s" % S,
          len(before) == CLIENTS and all(v == {S} for v in before.values()), str(before))
    check("after: every client's t1 reached %s, whatever its lane" % T,
          len(after) == CLIENTS and all(v == {T} for v in after.values()), str(after))
    stmt_recs = [r for r in recs if "sql" in r]
    tagged = [r for r in stmt_recs if re.search(r"/\* (before|after) c\d+ q\d+ \*/", r["sql"])]
    check("each query traced once", len(tagged) == CLIENTS * 55 and
          len({r["sql"] for r in tagged}) == CLIENTS * 55, "%d records" % len(tagged))
    check("session ids unique over the lanes",
          len({r["session"] for r in tagged}) == CLIENTS, str({r["session"] for r in tagged}))
    m = metrics(admin)
    check("/metrics statements = trace statement records (summed over lanes)",
          m.get('routetrace_statements_by_outcome_total{kind="statements"}') == len(stmt_recs),
          "%s vs %d" % (m.get('routetrace_statements_by_outcome_total{kind="statements"}'),
                        len(stmt_recs)))
    hits = m.get('routetrace_analysis_cache_total{result="hit"}') or 0
    check("/metrics analysis cache: the one shape of the bursts lexed at most once per lane",
          hits >= CLIENTS * 55 - WORKERS,
          "%s hits, %s misses" % (hits, m.get('routetrace_analysis_cache_total{result="miss"}')))
    check("/metrics sessions_active counts every lane's sessions",
          m.get("routetrace_sessions_active") == CLIENTS, str(m.get("routetrace_sessions_active")))

    # The guard: blocked on every lane, then (after SIGHUP to warn) forwarded on every lane.
    res = on_all(conns, truncate)
    check("guard=block: TRUNCATE %s.t1 blocked on every lane" % S,
          all(isinstance(r, int) for r in res), str(res))
    write_config(conf, "warn")
    os.kill(proxy.proc.pid, signal.SIGHUP)
    proxy.wait_log("config reloaded")
    time.sleep(0.3)
    res = on_all(conns, truncate)
    check("guard=warn after SIGHUP: forwarded on every lane", res == ["ok"] * CLIENTS, str(res))
    time.sleep(0.5)
    recs, _ = trace_lines(trace)
    tr = [r for r in recs if "trunc c" in (r.get("sql") or "")]
    verdicts = sorted(r.get("verdict") for r in tr)
    check("trace: %d blocked, then %d would_block (forwarded)" % (CLIENTS, CLIENTS),
          verdicts == ["blocked"] * CLIENTS + ["would_block"] * CLIENTS, str(verdicts))

    # Drain: idle sessions on every lane; drain_timeout_s=1 ends them all, exit 0.
    t0 = time.time()
    os.kill(proxy.proc.pid, signal.SIGTERM)
    try:
        rc = proxy.proc.wait(timeout=15)
    except Exception:  # noqa: BLE001
        rc = None
    check("SIGTERM with sessions on every lane: exit 0 after the drain timeout",
          rc == 0 and time.time() - t0 < 10, "rc %r after %.1f s" % (rc, time.time() - t0))
    check("drain timeout ended the %d sessions" % CLIENTS,
          "drain timeout: ending %d session(s)" % CLIENTS in proxy.text(), proxy.text()[-2000:])
    res = on_all(conns, select_burst("dead", 1))
    check("clients see their connections closed", all(isinstance(r, Exception) for r in res),
          str(res))
    for c in conns:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass


def limit_test():
    proxy = rtlib.Proxy(args=["--set", "workers=2", "--set", "max_client_connections=3"])
    proxy.wait_log("session close id=1 ")  # the start-up probe
    conns = [pymysql.connect(host="127.0.0.1", port=proxy.port, user=rtlib.USER,
                             password=rtlib.PW) for _ in range(3)]
    try:
        pymysql.connect(host="127.0.0.1", port=proxy.port, user=rtlib.USER, password=rtlib.PW)
        fail("4th client over max_client_connections=3 (2 lanes) refused")
    except pymysql.err.OperationalError as e:
        check("4th client over max_client_connections=3 (2 lanes) refused with 1040",
              e.args[0] == 1040, str(e))
    conns.pop().close()
    proxy.wait_log("reason=\"client quit\"")
    deadline, c = time.time() + 5, None
    while c is None and time.time() < deadline:
        try:
            c = pymysql.connect(host="127.0.0.1", port=proxy.port, user=rtlib.USER,
                                password=rtlib.PW)
        except pymysql.err.OperationalError:
            time.sleep(0.05)
    check("a slot freed on one lane serves a client on another", c is not None)
    for x in conns + ([c] if c else []):
        x.close()
    proxy.stop()


def main():
    setup_backend()
    lanes_test()
    limit_test()
    rtlib.summary()


if __name__ == "__main__":
    main()
