"""Runs the workload (workload.py) on every system the driver started and writes one JSON result.

Usage: main.py --work DIR --systems timberline,postgres,duckdb-parquet,duckdb-native,chdb,ripgrep
               --tl-port P [--pg-port P] [--reps N] [--warmup N] [--meta META_JSON] --out RESULT_JSON
Timberline and PostgreSQL are timed over pgwire from this process (psycopg2, simple protocol);
DuckDB and chDB run in child processes (peers.py); ripgrep is a child per run.
"""
import argparse
import json
import os
import subprocess
import sys

from workload import NEEDLE, PHRASE, TOKEN, iso, queries, render_all, run_all

HERE = os.path.dirname(os.path.abspath(__file__))


def pg_executor(port, user, dbname):
    import psycopg2
    conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname=dbname)
    conn.autocommit = True
    cur = conn.cursor()

    def execute(sql):
        cur.execute(sql)
        return cur.fetchall()
    return execute


def peak_rss_kb(names):
    """The largest VmHWM among live processes with one of these names."""
    best = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if fields.get("Name", "").strip() in names and "VmHWM" in fields:
            best = max(best, int(fields["VmHWM"].split()[0]))
    return best


def dir_bytes(path, suffix=""):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs if f.endswith(suffix))


def ripgrep(raw):
    """Q1, Q2, Q7 and Q8 as `rg` over the raw NDJSON file; the others are n/a."""
    def execute(job):
        mode, args = job
        out = subprocess.run(["rg", *args, raw], capture_output=True, text=True).stdout.splitlines()
        if mode == "count":
            return [[int(out[0]) if out else 0]]
        return [[line] for line in (out[-100:] if mode == "last100" else out)]
    return execute


def rg_jobs(trace_id, n):
    jobs = {
        "Q1": ("lines", ["-F", NEEDLE]),
        "Q2": ("lines", ["-F", trace_id]),
        "Q7": ("last100", ["-F", PHRASE]),
        "Q8": ("count", ["-c", "-i", "-F", TOKEN]),
    }
    return {key: ([jobs[key]] * n if key in jobs else None) for key, _, _ in queries({"min_us": 0, "max_us": 0}, "")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--systems", required=True)
    ap.add_argument("--tl-port", type=int, required=True)
    ap.add_argument("--pg-port", type=int)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--cold", action="store_true", help="also time one run after emptying the page cache")
    ap.add_argument("--meta", default="{}")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    systems = a.systems.split(",")

    tl = pg_executor(a.tl_port, "timberline", "timberline")
    lo, hi, rows = tl("SELECT arrow_cast(min(ts), 'Int64'), arrow_cast(max(ts), 'Int64'), count(*) FROM logs")[0]
    bounds = {"min_us": lo, "max_us": hi}
    mid = (lo + hi) // 2
    trace = tl(f"SELECT trace_id FROM logs WHERE nearest(ts, '{iso(mid)}') AND trace_id IS NOT NULL")
    trace_id = trace[0][0] if trace else "none"
    result = {
        "meta": {**json.loads(a.meta), "rows": rows, "min_us": lo, "max_us": hi, "trace_id": trace_id,
                 "reps": a.reps, "warmup": a.warmup},
        "queries": [[k, title] for k, title, _ in queries(bounds, trace_id)],
        "systems": {},
    }
    n = a.reps + a.warmup + 1
    for system in systems:
        print(f"bench: {system}…", file=sys.stderr, flush=True)
        if system == "timberline":
            res = run_all(tl, render_all(bounds, trace_id, "timberline", a.reps, a.warmup), a.warmup, a.cold)
            entry = {"results": res, "bytes": dir_bytes(f"{a.work}/tl"),
                     "parquet_bytes": dir_bytes(f"{a.work}/tl/segments", ".parquet"),
                     "index_bytes": dir_bytes(f"{a.work}/tl/segments", ".idx")
                     + dir_bytes(f"{a.work}/tl/segments", ".bloom"),
                     "bloom_bytes": dir_bytes(f"{a.work}/tl/segments", ".bloom"),
                     "rss_kb": peak_rss_kb({"timberline"})}
        elif system == "postgres":
            pg = pg_executor(a.pg_port, "postgres", "postgres")
            res = run_all(pg, render_all(bounds, trace_id, "postgres", a.reps, a.warmup), a.warmup, a.cold)
            size = pg("SELECT pg_total_relation_size('logs')")[0][0]
            entry = {"results": res, "bytes": size, "rss_kb": peak_rss_kb({"postgres"})}
        elif system == "ripgrep":
            raw = f"{a.work}/logs.ndjson"
            res = run_all(ripgrep(raw), rg_jobs(trace_id, n), a.warmup, a.cold)
            entry = {"results": res, "bytes": os.path.getsize(raw), "rss_kb": None}
        else:
            dialect = "clickhouse" if system == "chdb" else "duckdb"
            spec = f"{a.work}/spec-{system}.json"
            with open(spec, "w") as f:
                json.dump({"rendered": render_all(bounds, trace_id, dialect, a.reps, a.warmup),
                           "warmup": a.warmup, "cold": a.cold}, f)
            child = subprocess.run([sys.executable, f"{HERE}/peers.py", system, a.work, spec],
                                   capture_output=True, text=True)
            if child.returncode != 0:
                entry = {"error": child.stderr.strip().splitlines()[-1][:300] if child.stderr.strip() else "failed"}
            else:
                entry = json.loads(child.stdout)
        result["systems"][system] = entry
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
