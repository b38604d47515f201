"""DuckDB side of benches/nearest.sh: the two-probe nearest query over Timberline's Parquet files.

Usage: nearest_duckdb.py SEGMENTS_DIR FROM_US TO_US SAMPLES SERVICE
Prints two lines like `timberline bench sql`: unfiltered, then with the service filter.
Targets repeat `timberline bench sql`'s sequence: from + (to - from) * frac(i * 0.618…).
"""
import datetime
import sys
import time

import duckdb

segments, lo, hi, samples, service = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
con = duckdb.connect()
con.execute(f"CREATE VIEW logs AS SELECT * FROM read_parquet('{segments}/**/*.parquet')")


def target(i):
    frac = (i * 0.618033988749895) % 1.0
    us = lo + int((hi - lo) * frac)
    return datetime.datetime.fromtimestamp(us / 1e6, datetime.timezone.utc).isoformat()


def probe(extra, t):
    return (f"SELECT * FROM ((SELECT * FROM logs WHERE ts >= '{t}' {extra} ORDER BY ts LIMIT 1) UNION ALL "
            f"(SELECT * FROM logs WHERE ts < '{t}' {extra} ORDER BY ts DESC LIMIT 1)) c "
            f"ORDER BY abs(epoch_us(ts) - epoch_us('{t}'::TIMESTAMPTZ)) LIMIT 1")


for extra in ["", f"AND service = '{service}'"]:
    for i in range(min(20, samples // 4)):
        con.execute(probe(extra, target(samples + i))).fetchall()
    lat, rows = [], 0
    for i in range(samples):
        t0 = time.perf_counter()
        rows += len(con.execute(probe(extra, target(i))).fetchall())
        lat.append(time.perf_counter() - t0)
    lat.sort()
    pick = lambda p: lat[round((len(lat) - 1) * p)] * 1e6
    print(f"n={samples} rows={rows} p50_us={pick(0.5):.0f} p95_us={pick(0.95):.0f} p99_us={pick(0.99):.0f}")
