"""Small interactive queries' latency while something big runs: `nearest()` lookups at random
instants of the data (the driver's Q5a) on one connection, for a fixed time, while the caller's
background load (a 30-day scan, full-speed ingest, or nothing) runs.

Usage: small.py --port P --start ISO --end ISO --seconds S
Prints {"n", "p50_ms", "p99_ms"}.
"""
import argparse
import datetime as dt
import json
import random
import time

import psycopg2


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--start", required=True)
    a.add_argument("--end", required=True)
    a.add_argument("--seconds", type=float, default=20)
    args = a.parse_args()
    lo = dt.datetime.fromisoformat(args.start.replace("Z", "+00:00")).timestamp()
    hi = dt.datetime.fromisoformat(args.end.replace("Z", "+00:00")).timestamp()
    conn = psycopg2.connect(host="127.0.0.1", port=args.port, user="timberline", password="timberline",
                            dbname="timberline")
    conn.autocommit = True
    cur = conn.cursor()
    rng = random.Random(7)
    lat = []
    stop = time.perf_counter() + args.seconds
    while time.perf_counter() < stop:
        t = dt.datetime.fromtimestamp(rng.uniform(lo, hi), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        t0 = time.perf_counter()
        cur.execute(f"SELECT ts, service, level, msg FROM logs WHERE nearest(ts, '{t}', 10)")
        cur.fetchall()
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    pick = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(json.dumps({"n": len(lat), "p50_ms": pick(0.5), "p99_ms": pick(0.99)}))


if __name__ == "__main__":
    main()
