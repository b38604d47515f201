"""In-process peers, each run in its own child process so its load time, bytes and peak RSS are its own.

Usage: peers.py duckdb-parquet|duckdb-native|chdb WORK_DIR SPEC_JSON
SPEC_JSON: {"rendered": {key: [sql…] | null}, "warmup": n, "cold": bool}. Prints one JSON object:
{"load_s", "bytes", "rss_kb", "results"}. The data is Timberline's own Parquet files
(WORK_DIR/tl/segments), so every system holds exactly the rows Timberline accepted.
"""
import json
import os
import resource
import sys
import time

from workload import run_all

COLUMNS = "ts, service, host, level, msg, trace_id, attrs"


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def duckdb_peer(work, native):
    import duckdb
    parquet = f"{work}/tl/segments/**/*.parquet"
    t0 = time.perf_counter()
    if native:
        db = f"{work}/duck.db"
        con = duckdb.connect(db)
        con.execute(f"CREATE TABLE logs AS SELECT {COLUMNS} FROM read_parquet('{parquet}') ORDER BY ts")
        con.execute("CHECKPOINT")
        size = os.path.getsize(db)
    else:
        con = duckdb.connect()
        con.execute(f"CREATE VIEW logs AS SELECT {COLUMNS} FROM read_parquet('{parquet}')")
        size = dir_bytes(f"{work}/tl/segments")
    load = time.perf_counter() - t0
    return load, size, lambda sql: con.execute(sql).fetchall()


def chdb_peer(work):
    from chdb import session
    path = f"{work}/chdb"
    s = session.Session(path)

    def execute(sql):
        r = s.query(sql, "JSONCompact")
        if r.has_error():
            raise RuntimeError(r.error_message())
        return json.loads(r.bytes() or b'{"data": []}')["data"]

    t0 = time.perf_counter()
    execute("""CREATE TABLE logs (
        ts DateTime64(6, 'UTC'), service LowCardinality(String), host LowCardinality(String),
        level LowCardinality(String), msg String, trace_id String, attrs String,
        INDEX msg_tokens msg TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1,
        INDEX trace trace_id TYPE bloom_filter(0.01) GRANULARITY 1
    ) ENGINE = MergeTree ORDER BY ts""")
    execute(f"""INSERT INTO logs SELECT ts, service, host, level, msg, ifNull(trace_id, ''), attrs
                FROM file('{work}/tl/segments/**/*.parquet', Parquet)""")
    execute("OPTIMIZE TABLE logs FINAL")
    load = time.perf_counter() - t0
    return load, dir_bytes(path), execute


def main():
    kind, work, spec_path = sys.argv[1:4]
    with open(spec_path) as f:
        spec = json.load(f)
    if kind == "chdb":
        load, size, execute = chdb_peer(work)
    else:
        load, size, execute = duckdb_peer(work, native=kind == "duckdb-native")
    results = run_all(execute, spec["rendered"], spec["warmup"], spec["cold"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    json.dump({"load_s": load, "bytes": size, "rss_kb": rss, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
