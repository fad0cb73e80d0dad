#!/usr/bin/env python3
"""bench/trace_count.py: count what a routetrace trace (JSON lines) holds, for the benchmark.

usage: trace_count.py TRACE.jsonl
prints key=value lines: lines, not_json, events (records with an "event" key, e.g. rules_changed),
prepares (COM_STMT_PREPARE records), statements (all other records), kw.WORD (statements by the first SQL keyword of their "sql" field,
the same rule capture_corpus.sh applies to the general log), class.X and source.X counts.
"""
import collections
import json
import re
import sys

KW = re.compile(r"[A-Za-z_]+")


def keyword(sql):
    if not isinstance(sql, str):
        return "?"
    m = KW.match(sql.lstrip(" \t\r\n("))
    return m.group(0).upper() if m else "?"


def main():
    counts = collections.Counter()
    with open(sys.argv[1], "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            counts["lines"] += 1
            try:
                rec = json.loads(raw)
            except ValueError:
                counts["not_json"] += 1
                continue
            if not isinstance(rec, dict):
                counts["not_json"] += 1
            elif "event" in rec:
                counts["events"] += 1
            elif rec.get("command") == "prepare":
                # COM_STMT_PREPARE is traced (the guard judges it) but the ground truth
                # counts statements run: COM_QUERY and COM_STMT_EXECUTE
                counts["prepares"] += 1
            else:
                counts["statements"] += 1
                counts["kw." + keyword(rec.get("sql"))] += 1
                counts["class." + str(rec.get("class"))] += 1
                counts["source." + str(rec.get("source"))] += 1
    for key in ("lines", "not_json", "events", "prepares", "statements"):
        print("%s=%d" % (key, counts.pop(key, 0)))
    for key in sorted(counts):
        print("%s=%d" % (key, counts[key]))


if __name__ == "__main__":
    main()
