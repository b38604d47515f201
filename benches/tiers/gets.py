"""Object-store GETs (and cache hits) each workload query makes: EXPLAIN ANALYZE of each, summing
the scan's store_gets / store_cache_hits / store_get_bytes metrics.

Usage: gets.py --tl-port P --result RESULT_JSON  (the driver's result, for bounds and trace id)
Prints one JSON object: {query: {"gets": n, "hits": n, "get_bytes": n}}.
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "driver"))
from workload import queries  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tl-port", type=int, required=True)
    ap.add_argument("--result", required=True)
    a = ap.parse_args()
    import psycopg2
    meta = json.load(open(a.result))["meta"]
    conn = psycopg2.connect(host="127.0.0.1", port=a.tl_port, user="timberline", dbname="timberline")
    conn.autocommit = True
    cur = conn.cursor()
    out = {}
    for key, _, render in queries({"min_us": meta["min_us"], "max_us": meta["max_us"]}, meta["trace_id"]):
        sql = render("timberline", 0)
        if sql is None:
            continue
        cur.execute("EXPLAIN ANALYZE " + sql)
        plan = "\n".join(str(r[-1]) for r in cur.fetchall())
        total = {}
        for name, field in (("gets", "store_gets"), ("hits", "store_cache_hits"), ("get_bytes", "store_get_bytes")):
            total[name] = sum(int(m) for m in re.findall(rf"{field}=(\d+)", plan))
        out[key] = total
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
