"""The benchmark workload: Q1-Q8 written once per SQL dialect, and how one query is timed.

Every system answers the same question over the same rows. Where a dialect has its own natural form
(ClickHouse's hasToken, toStartOfMinute; PostgreSQL's two-probe nearest) that form is used, and the
answers are compared across systems in the report. A query a system cannot run is None: reported
as "n/a", never skipped silently.
"""
import datetime
import os
import time

GOLDEN = 0.618033988749895
NEEDLE = "quarantined"  # 1 in 10^6 rows (src/generate: NEEDLE_TOKEN)
PHRASE = "Connection reset by peer"
TOKEN = "exception"
SERVICE = "payments"
NEAREST_SERVICE = "checkout"


def iso(us):
    return datetime.datetime.fromtimestamp(us / 1e6, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ts_lit(dialect, us):
    """A timestamp literal comparable with `ts` in this dialect."""
    if dialect == "clickhouse":
        return f"toDateTime64('{iso(us)[:-1].replace('T', ' ')}', 6, 'UTC')"
    if dialect == "postgres":
        return f"'{iso(us)}'::timestamptz"
    if dialect == "duckdb":
        return f"'{iso(us)}'::TIMESTAMPTZ"
    return f"'{iso(us)}'"


def nearest_target(bounds, i):
    lo, hi = bounds["min_us"], bounds["max_us"]
    return lo + int((hi - lo) * ((i * GOLDEN) % 1.0))


def two_probe(dialect, t, extra):
    """Nearest row to t by two ordered probes (what a btree or a sorted table does best)."""
    lit = ts_lit(dialect, t)
    dist = {
        "postgres": f"abs(extract(epoch FROM ts - {lit}))",
        "duckdb": f"abs(epoch_us(ts) - epoch_us({lit}))",
        "clickhouse": f"abs(dateDiff('microsecond', ts, {lit}))",
    }[dialect]
    return (f"SELECT * FROM ((SELECT * FROM logs WHERE ts >= {lit} {extra} ORDER BY ts LIMIT 1) UNION ALL "
            f"(SELECT * FROM logs WHERE ts < {lit} {extra} ORDER BY ts DESC LIMIT 1)) c ORDER BY {dist} LIMIT 1")


def queries(bounds, trace_id):
    """[(key, title, render(dialect, i) -> sql | None)]; i is the repetition (targets vary with it)."""
    end = bounds["max_us"] + 1
    hour, day = end - 3_600_000_000, end - 86_400_000_000

    def q1(d, i):
        # Each system's own token search: ClickHouse's hasToken (token bloom), Timberline's
        # match() (inverted index); the others scan or use trigrams with LIKE.
        cond = {"clickhouse": f"hasToken(msg, '{NEEDLE}')", "timberline": f"match(msg, '{NEEDLE}')"}.get(
            d, f"msg LIKE '%{NEEDLE}%'")
        return f"SELECT ts, service, host, msg FROM logs WHERE {cond} ORDER BY ts"

    def q2(d, i):
        return f"SELECT ts, service, host, level, msg FROM logs WHERE trace_id = '{trace_id}' ORDER BY ts"

    def q3(d, i):
        return (f"SELECT ts, host, msg FROM logs WHERE service = '{SERVICE}' AND level = 'ERROR' "
                f"AND ts >= {ts_lit(d, hour)} ORDER BY ts DESC LIMIT 100")

    def q4(d, i):
        bucket = "toUnixTimestamp(toStartOfMinute(ts))" if d == "clickhouse" else "floor(extract(epoch FROM ts) / 60) * 60"
        return (f"SELECT {bucket} AS time, level, count(*) AS n FROM logs "
                f"WHERE ts >= {ts_lit(d, day)} AND ts < {ts_lit(d, end)} GROUP BY 1, 2 ORDER BY 1, 2")

    def q5(extra):
        def render(d, i):
            t = nearest_target(bounds, i)
            if d == "timberline":
                return f"SELECT * FROM logs WHERE nearest(ts, '{iso(t)}') {extra}"
            return two_probe(d, t, extra)
        return render

    def q6(d, i):
        return (f"SELECT service, count(*) AS errors FROM logs WHERE level = 'ERROR' "
                f"AND ts >= {ts_lit(d, day)} AND ts < {ts_lit(d, end)} GROUP BY service ORDER BY errors DESC, service LIMIT 10")

    def q7(d, i):
        return f"SELECT ts, service, msg FROM logs WHERE msg LIKE '%{PHRASE}%' ORDER BY ts DESC LIMIT 100"

    def q8(d, i):
        return f"SELECT count(*) FROM logs WHERE msg ILIKE '%{TOKEN}%'"

    return [
        ("Q1", f"needle token `{NEEDLE}` (1 in 10^6 rows)", q1),
        ("Q2", "trace_id = (one trace)", q2),
        ("Q3", f"service = '{SERVICE}' AND level = 'ERROR', last hour, newest 100", q3),
        ("Q4", "Grafana: count by level per minute, 24 h", q4),
        ("Q5a", "nearest(ts, random T)", q5("")),
        ("Q5b", f"nearest(ts, random T) AND service = '{NEAREST_SERVICE}'", q5(f"AND service = '{NEAREST_SERVICE}'")),
        ("Q6", "top 10 services by errors, 24 h", q6),
        ("Q7", f"phrase \"{PHRASE}\", newest 100", q7),
        ("Q8", f"count(*) WHERE msg ILIKE '%{TOKEN}%'", q8),
    ]


def render_all(bounds, trace_id, dialect, reps, warmup):
    """{key: [sql for warm-up and repetitions]}, or None where the dialect has no form."""
    out = {}
    for key, _, render in queries(bounds, trace_id):
        sqls = [render(dialect, i) for i in range(reps + warmup + 1)]
        out[key] = None if sqls[0] is None else sqls
    return out


def drop_caches():
    """Empties the OS page cache (root only); False where that is not allowed."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def fingerprint(rows):
    """What the report compares across systems: the count of a 1×1 numeric answer, else the rows."""
    # (ClickHouse's JSON quotes 64-bit integers.)
    value = rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return f"{int(value)}"
    return f"{len(rows)} row" + ("" if len(rows) == 1 else "s")


def measure(execute, sqls, warmup, cold):
    """Times `execute(sql) -> rows` over the rendered SQL: one cold run (after emptying the page
    cache, if `cold`), `warmup` unmeasured runs, then the repetitions. Latencies in ms."""
    result = {}
    if cold and drop_caches():
        t0 = time.perf_counter()
        execute(sqls[-1])
        result["cold_ms"] = (time.perf_counter() - t0) * 1e3
    for sql in sqls[1:warmup + 1]:
        execute(sql)
    lat, answer = [], None
    for n, sql in enumerate([sqls[0]] + sqls[warmup + 1:-1]):
        t0 = time.perf_counter()
        rows = execute(sql)
        lat.append((time.perf_counter() - t0) * 1e3)
        if n == 0:
            answer = fingerprint(rows)
    result.update(lat_ms=lat, answer=answer)
    return result


def run_all(execute, rendered, warmup, cold):
    """{key: measure(...) | {"error": text} | None}."""
    out = {}
    for key, sqls in rendered.items():
        if sqls is None:
            out[key] = None
            continue
        try:
            out[key] = measure(execute, sqls, warmup, cold)
        except Exception as e:  # a failing query is reported, the run goes on
            out[key] = {"error": str(e).strip().splitlines()[0][:200]}
    return out
