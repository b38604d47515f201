"""Ten Grafana users refreshing one dashboard at once vs one user: the shipped dashboard's
aggregate panels (no rollup view defined, so the result cache is what answers them again), each
panel on its own connection as Grafana sends them, over the last 24 hours and 7 days of the data,
each refresh moving the window on by 10 s as a live dashboard does.

Usage: refresh.py --port P --end ISO --label L [--rounds N] [--json FILE]
Prints one JSON object: per range, the wall time of one refresh and of ten at once (ms; the
first round is cold, the median of the rest warm).
"""
import argparse
import datetime as dt
import json
import statistics
import threading
import time

import psycopg2

DASHBOARD = "docker/grafana/dashboards/timberline.json"


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(sql, lo, hi, iv):
    return (sql.replace("$__timeGroupAlias(ts, $__interval)", f"floor(extract(epoch from ts)/{iv})*{iv} AS \"time\"")
            .replace("$__timeFilter(ts)", f"ts BETWEEN '{iso(lo)}' AND '{iso(hi)}'")
            .replace("$__timeTo()", f"'{iso(hi)}'"))


def panels():
    out = []
    for p in json.load(open(DASHBOARD))["panels"]:
        sql = p["targets"][0]["rawSql"]
        # The aggregate panels a cache can hold (the table of messages and the nearest lines
        # are not aggregates over labels).
        if "GROUP BY" in sql and "msg" not in sql.split("FROM")[0]:
            out.append((p["title"], sql))
    return out


def refresh(conns, sqls):
    """One dashboard refresh: every panel at once, each on its connection; wall ms."""
    errors = []

    def run(conn, sql):
        try:
            cur = conn.cursor()
            cur.execute(sql)
            cur.fetchall()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(c, s)) for c, s in zip(conns, sqls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"a panel failed: {errors[0]}")
    return (time.perf_counter() - t0) * 1000


def users_at_once(users, conns, sqls):
    """`users` dashboards refreshed at the same moment; wall ms until the last is done."""
    t0 = time.perf_counter()
    threads = [threading.Thread(target=refresh, args=(conns[u], sqls)) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - t0) * 1000


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--end", required=True)
    a.add_argument("--users", type=int, default=1)
    a.add_argument("--rounds", type=int, default=5)
    a.add_argument("--shift", type=int, default=0, help="seconds the window moved before the first round")
    args = a.parse_args()
    end = dt.datetime.fromisoformat(args.end.replace("Z", "+00:00"))
    ps = panels()
    conns = [[psycopg2.connect(host="127.0.0.1", port=args.port, user="timberline", password="timberline",
                               dbname="timberline") for _ in ps] for _ in range(args.users)]
    for user in conns:
        for c in user:
            c.autocommit = True
    out = {"panels": [t for t, _ in ps]}
    for name, hours, iv in [("24h", 24, 60), ("7d", 168, 600)]:
        times = []
        for r in range(args.rounds):
            hi = end + dt.timedelta(seconds=args.shift + 10 * r)
            lo = hi - dt.timedelta(hours=hours)
            sqls = [expand(s, lo, hi, iv) for _, s in ps]
            times.append(users_at_once(args.users, conns, sqls))
        out[name] = {"cold": times[0], "warm": statistics.median(times[1:]) if len(times) > 1 else None}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
