"""A well-behaved tenant's ingest and query latency alone, then next to a tenant sending ten
times its ingest quota (benches/quotas.sh runs it; figures in benches/RESULTS.md).

Usage: isolation.py HTTP_HOSTPORT PG_PORT GOOD_KEY NOISY_KEY GOOD_USER SECONDS NOISY_QUOTA
"""
import http.client
import json
import sys
import threading
import time

import psycopg

host, pg_port, good_key, noisy_key, good_user, seconds, quota = sys.argv[1:8]
seconds, quota = float(seconds), int(quota)


def body(n, level):
    logs = [{"service": "bench", "level": level, "msg": f"event {i} " + "x" * 180} for i in range(n)]
    return json.dumps({"logs": logs}).encode()


GOOD = body(200, "INFO")
NOISY = body(1000, "DEBUG")


def post(conn, key, payload):
    conn.request("POST", "/v1/ingest", payload, {"content-type": "application/json", "authorization": f"Bearer {key}"})
    r = conn.getresponse()
    return r.status, r.read()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def good_ingest(stop, out):
    conn = http.client.HTTPConnection(host)
    while not stop.is_set():
        t = time.perf_counter()
        status, _ = post(conn, good_key, GOOD)
        out.append((time.perf_counter() - t) * 1000)
        assert status == 202, status
        time.sleep(0.05)


def good_queries(stop, out):
    with psycopg.connect(f"host=127.0.0.1 port={pg_port} user={good_user} password=pw", autocommit=True) as c:
        while not stop.is_set():
            t = time.perf_counter()
            c.execute("SELECT level, count(*) FROM logs WHERE ts > now() - interval '5 minutes' GROUP BY 1").fetchall()
            out.append((time.perf_counter() - t) * 1000)
            time.sleep(0.1)


def noisy(stop, tally, per_sec):
    conn = http.client.HTTPConnection(host)
    interval = 1.0 / per_sec
    nxt = time.perf_counter()
    while not stop.is_set():
        status, text = post(conn, noisy_key, NOISY)
        tally["requests"] += 1
        if status == 202:
            answer = json.loads(text)
            tally["accepted"] += answer["accepted"]
            tally["shed"] += answer["shed"]
        else:
            tally[str(status)] = tally.get(str(status), 0) + 1
        nxt += interval
        time.sleep(max(0.0, nxt - time.perf_counter()))


def phase(with_noisy):
    stop = threading.Event()
    ingest, queries = [], []
    tally = {"requests": 0, "accepted": 0, "shed": 0}
    threads = [threading.Thread(target=good_ingest, args=(stop, ingest)),
               threading.Thread(target=good_queries, args=(stop, queries))]
    if with_noisy:
        # Ten times the quota: 1,000-event batches from 4 senders.
        per_sender = quota * 10 / 1000 / 4
        threads += [threading.Thread(target=noisy, args=(stop, tally, per_sender)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return ingest, queries, tally


alone = phase(False)
crowded = phase(True)
for name, (ingest, queries, tally) in (("alone", alone), ("next to a tenant at 10x its quota", crowded)):
    print(f"- good tenant {name}: ingest of 200 events p50 {pct(ingest, 50):.1f} ms, p95 {pct(ingest, 95):.1f} ms "
          f"({len(ingest)} requests); query p50 {pct(queries, 50):.1f} ms, p95 {pct(queries, 95):.1f} ms ({len(queries)} queries)")
tally = crowded[2]
sent = tally["requests"] * 1000
print(f"- the noisy tenant (quota {quota} events/s) sent {sent} events in {seconds:.0f} s ({sent / seconds:.0f}/s): "
      f"{tally['accepted']} accepted ({tally['accepted'] / seconds:.0f}/s), {tally['shed']} shed, "
      f"{tally.get('429', 0)} requests refused with 429")
print(f"- ratios (crowded / alone): ingest p95 {pct(crowded[0], 95) / pct(alone[0], 95):.2f}, "
      f"query p95 {pct(crowded[1], 95) / pct(alone[1], 95):.2f}")
