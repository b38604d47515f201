"""`timberline ingest --follow` latency: appends one uniquely tagged line to a followed file,
then polls over pgwire until the row is queryable; prints percentiles of N samples.

    python3 follow_latency.py FILE PG_PORT SAMPLES
"""
import random
import string
import sys
import time

import psycopg


def main():
    path, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conn = psycopg.connect(f"host=127.0.0.1 port={port} user=timberline password=timberline", autocommit=True)
    lat = []
    for i in range(n):
        # Letters only: a long run of digits can pass for a card number and be redacted.
        token = f"follow-probe-{i}-" + "".join(random.choice(string.ascii_lowercase) for _ in range(16))
        started = time.perf_counter()
        with open(path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} INFO {token}\n")
        while True:
            (c,) = conn.execute("SELECT count(*) FROM logs WHERE msg = %s", (token,)).fetchone()
            if c:
                break
            if time.perf_counter() - started > 30:
                sys.exit(f"{token} not visible after 30 s")
        lat.append(time.perf_counter() - started)
    lat.sort()
    ms = lambda q: f"{lat[min(len(lat) - 1, int(q * (len(lat) - 1)))] * 1000:.0f} ms"
    print(f"--follow write -> queryable: n={n} p50 {ms(0.5)} p95 {ms(0.95)} max {ms(1.0)}")


if __name__ == "__main__":
    main()
