"""The shipped dashboard's panels, timed: each panel's query (Grafana's macros expanded as
Grafana expands them) over the last 24 hours and the last 7 days of the data, on Timberline with
the rollup rewrite on and off, and the same panels on chDB reading its materialized views
(AggregatingMergeTree states: chDB has no rewrite, so its panels name the views).

Usage: panels.py --tl-port P --work DIR --end ISO --reps N --out FILE
(DIR/tl holds Timberline's segments, which chDB loads.)
"""
import argparse
import datetime as dt
import json
import statistics
import time

import psycopg2

PANELS_CH = {
    "Volume by level": "SELECT intDiv(toUnixTimestamp(t), {iv}) * {iv} AS time, level, countMerge(n) AS lines "
                       "FROM volume_mv WHERE t BETWEEN {lo} AND {hi} GROUP BY 1, 2 ORDER BY 1",
    "Errors per service": "SELECT intDiv(toUnixTimestamp(t), {iv}) * {iv} AS time, service, countMerge(n) AS errors "
                          "FROM volume_mv WHERE t BETWEEN {lo} AND {hi} AND level = 'ERROR' GROUP BY 1, 2 ORDER BY 1",
    "p99 latency per service": "SELECT intDiv(toUnixTimestamp(t), {iv}) * {iv} AS time, service, "
                               "quantileTDigestMerge(0.99)(p99) AS p99 FROM latency_mv "
                               "WHERE t BETWEEN {lo} AND {hi} GROUP BY 1, 2 ORDER BY 1",
    "Top error messages": "SELECT msg, count() AS n FROM logs WHERE ts BETWEEN {lo} AND {hi} AND level = 'ERROR' "
                          "GROUP BY msg ORDER BY n DESC LIMIT 10",
    "Lines nearest the end of the range": "SELECT * FROM (SELECT ts, service, level, msg FROM logs WHERE ts <= {hi} "
                                          "ORDER BY ts DESC LIMIT 50 UNION ALL SELECT ts, service, level, msg FROM logs "
                                          "WHERE ts > {hi} ORDER BY ts LIMIT 50) ORDER BY abs(toUnixTimestamp64Micro(ts) "
                                          "- toUnixTimestamp64Micro({hi})) LIMIT 50",
}


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(sql, lo, hi, iv):
    return (sql.replace("$__timeGroupAlias(ts, $__interval)", f"floor(extract(epoch from ts)/{iv})*{iv} AS \"time\"")
            .replace("$__timeFilter(ts)", f"ts BETWEEN '{iso(lo)}' AND '{iso(hi)}'")
            .replace("$__timeTo()", f"'{iso(hi)}'"))


def timed(run, reps):
    run()  # warm: footers, sidecars and partials read once
    lat = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        lat.append((time.perf_counter() - t0) * 1000)
    return statistics.median(lat)


def chdb_setup(work):
    from chdb import session
    s = session.Session(f"{work}/chdb")

    def q(sql):
        r = s.query(sql, "JSONCompact")
        if r.has_error():
            raise RuntimeError(r.error_message())
        return r

    t0 = time.perf_counter()
    q("""CREATE TABLE logs (ts DateTime64(6, 'UTC'), service LowCardinality(String), host LowCardinality(String),
         level LowCardinality(String), msg String, trace_id String, attrs String) ENGINE = MergeTree ORDER BY ts""")
    q("""CREATE MATERIALIZED VIEW volume_mv ENGINE = AggregatingMergeTree ORDER BY (t, service, level) AS
         SELECT toStartOfMinute(ts) AS t, service, level, countState() AS n FROM logs GROUP BY t, service, level""")
    q("""CREATE MATERIALIZED VIEW latency_mv ENGINE = AggregatingMergeTree ORDER BY (t, service) AS
         SELECT toStartOfMinute(ts) AS t, service,
                quantileTDigestState(0.99)(toFloat64(JSONExtractInt(attrs, 'duration_ms'))) AS p99
         FROM logs GROUP BY t, service""")
    q(f"""INSERT INTO logs SELECT ts, service, host, level, msg, ifNull(trace_id, ''), attrs
          FROM file('{work}/tl/segments/**/*.parquet', Parquet)""")
    for t in ["logs", "volume_mv", "latency_mv"]:
        q(f"OPTIMIZE TABLE {t} FINAL")
    load = time.perf_counter() - t0
    sizes = json.loads(q("SELECT table, sum(bytes_on_disk) FROM system.parts WHERE active "
                         "GROUP BY table").bytes())["data"]
    return q, load, {t: int(b) for t, b in sizes}


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--tl-port", type=int, required=True)
    a.add_argument("--work", required=True)
    a.add_argument("--end", required=True)
    a.add_argument("--reps", type=int, default=20)
    a.add_argument("--out", required=True)
    a.add_argument("--dashboard", default="docker/grafana/dashboards/timberline.json")
    args = a.parse_args()
    end = dt.datetime.fromisoformat(args.end.replace("Z", "+00:00"))
    ranges = {"24h": (end - dt.timedelta(hours=24), end, 60), "7d": (end - dt.timedelta(days=7), end, 600)}
    panels = json.load(open(args.dashboard))["panels"]
    conn = psycopg2.connect(host="127.0.0.1", port=args.tl_port, user="timberline",
                            password="timberline", dbname="timberline")
    conn.autocommit = True
    cur = conn.cursor()
    out = {"timberline": {}, "chdb": {}}
    for name, (lo, hi, iv) in ranges.items():
        for p in panels:
            title = p["title"]
            sql = expand(p["targets"][0]["rawSql"], lo, hi, iv)
            row = {}
            for mode in ["on", "off"]:
                cur.execute(f"SET timberline.rollups = {mode}")

                def run():
                    cur.execute(sql)
                    cur.fetchall()
                row[mode] = timed(run, args.reps)
            cur.execute("SET timberline.rollups = on")
            cur.execute("EXPLAIN ANALYZE " + sql)
            row["from_view"] = any("rollup=" in r[1] for r in cur.fetchall())
            out["timberline"].setdefault(title, {})[name] = row
    cur.execute("SELECT name, bytes FROM rollups")
    out["view_bytes"] = dict(cur.fetchall())
    cur.execute("SELECT sum(bytes), sum(rows) FROM segments")
    seg_bytes, rows = cur.fetchone()
    out["segment_bytes"], out["rows"] = int(seg_bytes), int(rows)
    conn.close()

    q, load, sizes = chdb_setup(args.work)
    out["chdb_load_s"], out["chdb_bytes"] = load, sizes
    for name, (lo, hi, iv) in ranges.items():
        for title, sql in PANELS_CH.items():
            lit = lambda t: f"toDateTime64('{t.strftime('%Y-%m-%d %H:%M:%S')}', 6, 'UTC')"
            text = sql.format(iv=iv, lo=lit(lo), hi=lit(hi))
            out["chdb"].setdefault(title, {})[name] = timed(lambda: q(text), args.reps)
    json.dump(out, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
