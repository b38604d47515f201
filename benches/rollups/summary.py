"""The rollups bench's tables, from WORK/panels.json and WORK/ingest.json, as Markdown.

Usage: summary.py WORK_DIR
"""
import json
import os
import statistics
import sys

w = sys.argv[1]
p = json.load(open(os.path.join(w, "panels.json")))
ing = json.load(open(os.path.join(w, "ingest.json")))

print(f"{p['rows']:,} rows over 7 days; 24 h panels group by minute, 7-day panels by 10 minutes "
      "(Grafana's `$__interval` for those ranges).")
print()
print("| panel | range | rewrite on | rewrite off | chDB, its MVs | on ÷ chDB | from a view |")
print("|---|---|---|---|---|---|---|")
for title, by_range in p["timberline"].items():
    for rng, r in by_range.items():
        ch = p["chdb"].get(title, {}).get(rng)
        ratio = f"{r['on'] / ch:.2f}×" if ch else "n/a"
        print(f"| {title} | {rng} | {r['on']:.1f} ms | {r['off']:.1f} ms | "
              f"{ch:.1f} ms | {ratio} | {'yes' if r['from_view'] else 'no'} |")
print()
n, v = statistics.mean(ing["none"]), statistics.mean(ing["views"])
print(f"Ingest (lines/s, each run into a fresh directory, flush included): no views {ing['none']} "
      f"(mean {n:,.0f}); the dashboard's two views {ing['views']} (mean {v:,.0f}): "
      f"**{(v - n) / n * 100:+.1f}%**.")
print()
seg = p["segment_bytes"]
views = p["view_bytes"]
total = sum(views.values())
print(f"Bytes: segments (Parquet) {seg:,}; views {', '.join(f'{k} {b:,}' for k, b in views.items())} "
      f"= {total:,} ({total / seg * 100:.2f}% of the segments). chDB: "
      + ", ".join(f"{t} {b:,}" for t, b in p["chdb_bytes"].items())
      + f"; load with its MVs {p['chdb_load_s']:.1f} s.")
