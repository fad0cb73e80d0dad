"""tests/integ/t_trace_cutover.py: a real client keeps issuing reads (primary, @replica,
@rdonly targets), writes and DDL on unqualified, source-qualified and target-qualified
names through the proxy while the rules file steps through every MoveTables state; each
trace record's `reached` must match ROUTING_SPEC.md section d, and each change must be
in force within one poll interval.

MariaDB stands in for vtgate: it gets databases named like the Vitess targets
(`sourcekeyspace`, `@replica`, ...) so that USE / COM_INIT_DB of a target succeeds; the
proxy's answer never depends on what the backend does with the statement."""
import json
import os
import shutil
import time
import urllib.request

import pymysql

import rtlib
from rtlib import check, fail, ok

FX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "movetables")
TMP = rtlib.TEST_TMP
S, T = "sourcekeyspace", "targetkeyspace"
POLL_MS = 200

# ROUTING_SPEC d: keyspace reached by t1 / S.t1 / T.t1 per tablet type in each state.
# After Complete/Cancel (and before) qualified names go to their own keyspace and the
# unqualified name goes to the keyspace that declares it.
EXPECT = {
    "00-before":           {"t1": (S, S, S), "S.t1": (S, S, S), "T.t1": (T, T, T)},
    "01-created":          {"t1": (S, S, S), "S.t1": (S, S, S), "T.t1": (S, S, S)},
    "02-rdonly-switched":  {"t1": (S, S, T), "S.t1": (S, S, T), "T.t1": (S, S, T)},
    "03-replica-switched": {"t1": (S, T, T), "S.t1": (S, T, T), "T.t1": (S, T, T)},
    "04-switched":         {"t1": (T, T, T), "S.t1": (T, T, T), "T.t1": (T, T, T)},
    "05-reversed":         {"t1": (S, S, S), "S.t1": (S, S, S), "T.t1": (S, S, S)},
    "06-completed":        {"t1": (T, T, T), "S.t1": (S, S, S), "T.t1": (T, T, T)},
    "07-cancelled":        {"t1": (S, S, S), "S.t1": (S, S, S), "T.t1": (T, T, T)},
}
STEPS = {"01-created": "created", "02-rdonly-switched": "reads_switched",
         "03-replica-switched": "reads_switched", "04-switched": "switched",
         "05-reversed": "reversed", "06-completed": "completed", "07-cancelled": "cancelled"}
TARGETS = [("@primary", 0), ("@replica", 1), ("@rdonly", 2)]
# Forward path with a ReverseTraffic and Cancel, then a second workflow that completes.
SEQUENCE = ["00-before", "01-created", "02-rdonly-switched", "03-replica-switched",
            "04-switched", "05-reversed", "07-cancelled", "01-created", "04-switched",
            "06-completed"]
NAMES = {"t1": "t1", "S.t1": S + ".t1", "T.t1": T + ".t1"}


def setup_backend():
    dbs = [S, T, "@primary", "@replica", "@rdonly"]
    stmts = []
    for db in dbs:
        stmts.append("DROP DATABASE IF EXISTS `%s`" % db)
        stmts.append("CREATE DATABASE `%s`" % db)
        for t in ("t1", "t2", "t3"):
            stmts.append("CREATE TABLE `%s`.%s (id INT PRIMARY KEY, c VARCHAR(20))" % (db, t))
            stmts.append("INSERT INTO `%s`.%s VALUES (1, 'a'), (2, 'b')" % (db, t))
    rtlib.root_sql(stmts)


def install_rules(path, state):
    """Atomic replace (write a temp file, rename), as config management does."""
    tmp = path + ".tmp"
    shutil.copyfile(os.path.join(FX, state + ".srvvschema.json"), tmp)
    os.rename(tmp, path)


def rfc3339(ts):
    """'2026-11-25T16:53:35.920210Z' -> seconds since the epoch."""
    import calendar
    base, frac = ts.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + frac)


def trace_lines(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def wait_rules_event(trace, n_before, timeout):
    """Waits for a new rules_changed record; returns it and the time it took."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        ev = [r for r in trace_lines(trace) if r.get("event") == "rules_changed"]
        if len(ev) > n_before:
            return ev[-1], time.time() - t0
        time.sleep(0.02)
    return None, timeout


def run_state(conn, state, marker):
    """Per target: reads on the three names, a write and a DDL on primary."""
    with conn.cursor() as cur:
        for target, _ in TARGETS:
            conn.select_db(target)  # COM_INIT_DB
            for key, name in NAMES.items():
                cur.execute("SELECT /* %s %s %s */ c FROM %s WHERE id = 1" % (marker, target, key, name))
                cur.fetchall()
        conn.select_db("@primary")
        cur.execute("UPDATE /* %s w */ %s.t1 SET c = 'x' WHERE id = 2" % (marker, S))
        cur.execute("ALTER TABLE /* %s ddl */ %s.t1 COMMENT 'routetrace'" % (marker, T))
        conn.commit()


def check_state(trace, state, marker):
    recs = [r for r in trace_lines(trace) if marker in (r.get("sql") or "")]
    want = EXPECT[state]
    for target, idx in TARGETS:
        for key in NAMES:
            tag = "%s %s %s" % (marker, target, key)
            r = [x for x in recs if tag + " " in x["sql"]]
            if len(r) != 1:
                fail("%s %s %s traced once" % (state, target, key), "found %d" % len(r))
                continue
            tab = r[0]["tables"][0] if r[0]["tables"] else {}
            reached = (tab.get("reached") or "").split(".")[0]
            check("%s %s %s -> %s" % (state, target, key, want[key][idx]), reached == want[key][idx],
                  "reached %r record %s" % (tab.get("reached"), json.dumps(r[0])))
    tt = {x["target"]: x["tablet_type"] for x in recs if "sql" in x}
    check("%s tablet types follow the target" % state,
          tt.get("@replica") == "REPLICA" and tt.get("@rdonly") == "RDONLY", str(tt))
    w = [x for x in recs if "%s w " % marker in x["sql"]]
    check("%s write traced with result" % state, len(w) == 1 and w[0]["result"].get("ok") is True
          and w[0]["class"] == "update", str(w))
    d = [x for x in recs if "%s ddl " % marker in x["sql"]]
    check("%s DDL traced, forwarded" % state, len(d) == 1 and d[0]["class"] == "alter"
          and d[0]["verdict"] == "forwarded", str(d))


def main():
    setup_backend()
    rules = os.path.join(TMP, "rules.json")
    trace = os.path.join(TMP, "trace.jsonl")
    admin_port = rtlib.free_port()
    install_rules(rules, "00-before")
    proxy = rtlib.Proxy(args=["--rules", "file:" + rules, "--trace", trace,
                              "--admin", "127.0.0.1:%d" % admin_port,
                              "--set", "rules_poll_ms=%d" % POLL_MS])
    ev, _ = wait_rules_event(trace, 0, 10)
    check("first snapshot loaded", ev is not None)
    conn = pymysql.connect(host="127.0.0.1", port=proxy.port, user=rtlib.USER,
                           password=rtlib.PW, autocommit=False)
    n_events = 1
    for i, state in enumerate(SEQUENCE):
        if i > 0:
            t_install = time.time()
            install_rules(rules, state)
            ev, _ = wait_rules_event(trace, n_events, 5)
            if ev is None:
                fail("%s: rules change traced" % state, "no rules_changed record")
                continue
            n_events += 1
            # The record's own timestamp (when the proxy installed the snapshot) against
            # the moment the file was replaced: within one poll interval, plus slack for
            # a shared 2-core machine where the proxy may wait for a CPU.
            took = rfc3339(ev["ts"]) - t_install
            check("%s: change in force within one poll interval" % state, took <= POLL_MS / 1000 + 1.0,
                  "took %.3f s" % took)
            steps = {w["table"]: w["step"] for w in ev.get("workflows", [])}
            check("%s: step recognised" % state, steps.get("t1") == STEPS[state],
                  "%s %s" % (steps.get("t1"), ev.get("summary")))
        run_state(conn, state, "m%02d" % i)
        time.sleep(0.3)  # the trace writer runs on its own thread
        check_state(trace, state, "m%02d" % i)
    # the change record says what moved, per tablet type
    allev = [r for r in trace_lines(trace) if r.get("event") == "rules_changed"]
    moved = sum((r.get("moved", []) for r in allev), [])
    check("rdonly move reported", "t1@rdonly: %s \u2192 %s" % (S, T) in moved, str(moved))
    # the admin endpoints
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=5).read().decode()
    check("/metrics counts statements per reached keyspace",
          'routetrace_statements_total{table="t1",tablet_type="RDONLY",class="select",keyspace="targetkeyspace"}' in body)
    check("/metrics has the named-vs-reached family", "routetrace_named_other_keyspace_total{" in body)
    health = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/health" % admin_port, timeout=5).read())
    check("/health ok", health.get("status") == "ok", str(health))
    rules_page = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/rules" % admin_port, timeout=5).read())
    check("/rules shows the generation in force", rules_page.get("generation") == allev[-1]["generation"])
    conn.close()
    proxy.stop()
    rtlib.summary()


if __name__ == "__main__":
    main()
