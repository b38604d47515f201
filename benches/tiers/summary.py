"""The tiers bench's table: Q1-Q8 p50 on hot, warm, cold with a warm cache and cold with an empty
cache (one run each of benches/driver/main.py), the ratio cold-warm-cache / hot, GETs per query,
and the storage figures.

Usage: summary.py WORK_DIR  (reads WORK_DIR/{hot,warm,coldwarm,coldempty}.json, gets-*.json,
facts.json) and prints Markdown.
"""
import json
import os
import statistics
import sys

w = sys.argv[1]
runs = ["hot", "warm", "coldwarm", "coldempty"]
res = {r: json.load(open(os.path.join(w, f"{r}.json"))) for r in runs if os.path.exists(os.path.join(w, f"{r}.json"))}
gets = {r: json.load(open(os.path.join(w, f"gets-{r}.json"))) for r in runs if os.path.exists(os.path.join(w, f"gets-{r}.json"))}
facts = json.load(open(os.path.join(w, "facts.json")))
hot = res["hot"]
rows = hot["meta"]["rows"]


def p50(run, q):
    r = res.get(run, {}).get("systems", {}).get("timberline", {}).get("results", {}).get(q)
    if not r or "lat_ms" not in r:
        return None
    return statistics.median(r["lat_ms"])


def fmt(v):
    return "n/a" if v is None else f"{v:.1f}"


print(f"rows {rows:,}; segments before compaction {facts['before']['segments']} "
      f"({facts['before']['bytes']:,} B Parquet), after {facts['after']['segments']} "
      f"({facts['after']['bytes']:,} B)")
print()
per_m = lambda b: b / rows * 1e6
print("| store | bytes | bytes per 1M rows |")
print("|---|---|---|")
print(f"| Timberline, flushed (Parquet + sidecars) | {facts['before']['disk']:,} | {per_m(facts['before']['disk']):,.0f} |")
print(f"| Timberline, compacted (Parquet + sidecars) | {facts['after']['disk']:,} | {per_m(facts['after']['disk']):,.0f} |")
for peer in ("chdb", "duckdb-native"):
    b = hot["systems"].get(peer, {}).get("bytes")
    if b:
        print(f"| {peer} | {b:,} | {per_m(b):,.0f} |")
print()
print("| query | hot p50 ms | warm p50 ms | cold, warm cache | cold, empty cache | cold-warm / hot | GETs (empty cache) | GETs (warm cache) |")
print("|---|---|---|---|---|---|---|---|")
for key, title in hot["queries"]:
    h, wm, cw, ce = (p50(r, key) for r in runs)
    ratio = f"{cw / h:.2f}x" if h and cw else "n/a"
    ge = gets.get("coldempty", {}).get(key, {}).get("gets", "n/a")
    gw = gets.get("coldwarm", {}).get(key, {}).get("gets", "n/a")
    print(f"| {key} {title} | {fmt(h)} | {fmt(wm)} | {fmt(cw)} | {fmt(ce)} | {ratio} | {ge} | {gw} |")
print()
m = facts["maintenance"]
print(f"compaction: {m['compact']['compacted_segments']} segments into {m['compact']['compacted_into']}, "
      f"{m['compact']['compacted_rows']:,} rows in {m['compact']['elapsed_ms']} ms "
      f"({m['compact']['compacted_rows'] / max(m['compact']['elapsed_ms'], 1) * 1000:,.0f} rows/s)")
print(f"move to SeaweedFS: {m['move']['moved_segments']} segments, {m['move']['moved_bytes']:,} B in "
      f"{m['move']['elapsed_ms']} ms ({m['move']['moved_bytes'] / max(m['move']['elapsed_ms'], 1) / 1000:,.1f} MB/s)")
print(f"ingest of 1M rows alone: {facts['ingest_alone']} lines/s; during the compaction pass: "
      f"{facts['ingest_during']} lines/s")
