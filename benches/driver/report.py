"""Turns main.py's JSON into the markdown section of benches/RESULTS.md and a PNG chart of ratios.

Usage: report.py RESULT_JSON --command "…" [--png FILE] [--previous LAST_RUN_JSON]
(markdown on stdout; with --previous, the queries that got slower than in that run, on stderr too)
"""
import argparse
import json
import os
import platform
import subprocess
import sys

NAMES = {
    "timberline": "Timberline",
    "duckdb-parquet": "DuckDB (TL's Parquet)",
    "duckdb-native": "DuckDB (native table)",
    "chdb": "chDB (MergeTree)",
    "postgres": "PostgreSQL 15",
    "ripgrep": "ripgrep (raw NDJSON)",
}


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, round((len(s) - 1) * p))]


def ms(v):
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def cell(r):
    if r is None:
        return "n/a"
    if "error" in r:
        return "error"
    text = f"{ms(pct(r['lat_ms'], 0.5))} / {ms(pct(r['lat_ms'], 0.95))}"
    if "cold_ms" in r:
        text += f" (cold {ms(r['cold_ms'])})"
    return text


def p50(r):
    return pct(r["lat_ms"], 0.5) if r and "lat_ms" in r else None


def human_bytes(n):
    for unit in ["B", "KB", "MB", "GB"]:
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} {platform.release()}"


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def markdown(data, command):
    meta, systems = data["meta"], data["systems"]
    names = [s for s in NAMES if s in systems]
    out = [f"\n## Benchmark driver — {meta.get('date', '')}, commit {commit()}\n",
           f"Machine: {machine()}. Command: `{command}`.",
           f"{meta['rows']:,} generated rows (`timberline generate --seed {meta.get('seed', 1)}`), "
           f"{(meta['max_us'] - meta['min_us']) / 3.6e9:.1f} h of event time; generated in {meta['generate_s']} s. p50 / p95 in ms over "
           f"{meta['reps']} repetitions after {meta['warmup']} warm-up runs; cold = one run right after "
           "emptying the OS page cache (servers keep their own caches, as a running server does). "
           "Timberline and PostgreSQL are timed over pgwire (psycopg2), DuckDB and chDB in-process, "
           "ripgrep as a process per query.\n"]
    errors = []
    head = "| query | " + " | ".join(NAMES[s] for s in names) + " |"
    out += [head, "|" + "---|" * (len(names) + 1)]
    for key, title in data["queries"]:
        row = [f"{key} {title}"]
        for s in names:
            r = systems[s].get("results", {}).get(key) if "results" in systems[s] else {"error": systems[s].get("error")}
            row.append(cell(r))
            if r and "error" in r:
                errors.append(f"{NAMES[s]} {key}: {r['error']}")
        out.append("| " + " | ".join(row) + " |")
    peers = [s for s in names if s != "timberline"]
    if peers and "timberline" in names:
        out += ["", "Peer p50 ÷ Timberline p50 (above 1: Timberline is faster):", "",
                "| query | " + " | ".join(NAMES[s] for s in peers) + " |", "|" + "---|" * (len(peers) + 1)]
        for key, _ in data["queries"]:
            tl = p50(systems["timberline"].get("results", {}).get(key))
            row = [key]
            for s in peers:
                v = p50(systems[s].get("results", {}).get(key))
                row.append(f"{v / tl:.2f}×" if v and tl else "n/a")
            out.append("| " + " | ".join(row) + " |")
    out += ["", "Answers (rows returned, or the count; must agree):", "",
            "| query | " + " | ".join(NAMES[s] for s in names) + " |", "|" + "---|" * (len(names) + 1)]
    for key, _ in data["queries"]:
        answers = [(systems[s].get("results") or {}).get(key) for s in names]
        texts = [a["answer"] if a and "answer" in a else "—" for a in answers]
        out.append(f"| {key} | " + " | ".join(texts) + " |")
    out += ["", "| system | load | bytes on disk | peak RSS |", "|---|---|---|---|"]
    for s in names:
        e = systems[s]
        if s == "timberline":
            load = f"{meta['tl_rate']:,} events/s, durable HTTP ingest of the NDJSON file"
        elif s == "postgres" and meta.get("pg_load_s"):
            load = f"{meta['rows'] / meta['pg_load_s']:,.0f} rows/s: bulk COPY + index builds ({meta['pg_load_s']:.1f} s)"
        elif s == "duckdb-parquet":
            load = "— (queries TL's Parquet files in place)"
        elif "load_s" in e:
            load = f"{meta['rows'] / e['load_s']:,.0f} rows/s: bulk load of TL's Parquet ({e['load_s']:.1f} s)"
        else:
            load = "— (reads the raw file)" if s == "ripgrep" else "—"
        rss = f"{e['rss_kb'] / 1024:.0f} MB" if e.get("rss_kb") else "—"
        out.append(f"| {NAMES[s]} | {load} | {human_bytes(e['bytes']) if 'bytes' in e else '—'} | {rss} |")
    tl = systems.get("timberline", {})
    if tl.get("parquet_bytes"):
        out += ["", f"Timberline's indexes: {human_bytes(tl['index_bytes'])} beside {human_bytes(tl['parquet_bytes'])} "
                f"of Parquet ({100 * tl['index_bytes'] / tl['parquet_bytes']:.1f}%, of which segment blooms "
                f"{human_bytes(tl.get('bloom_bytes', 0))}); indexing "
                f"{'on' if meta.get('tl_index', True) else 'off'}."]
    if errors:
        out += ["", "Errors: " + "; ".join(errors)]
    return "\n".join(out) + "\n"


def regressions(data, previous, threshold=1.25):
    """Lines naming each query Timberline got slower at by more than `threshold` since `previous`
    (the last committed run), measured against the peers both runs timed, so that a slower or
    busier machine does not count: the new ratio Timberline ÷ peer over the old one, the median
    over those peers. With no peer in common, Timberline's own p50s are compared."""
    if previous.get("meta", {}).get("rows") != data["meta"].get("rows"):
        return [f"regression guard: the previous run had {previous.get('meta', {}).get('rows')} rows, "
                f"this one {data['meta'].get('rows')}: not compared"]
    new, old = data["systems"], previous.get("systems", {})
    tl_new = new.get("timberline", {}).get("results") or {}
    tl_old = old.get("timberline", {}).get("results") or {}
    peers = [s for s in new if s != "timberline" and s in old]
    out = []
    for key, _ in data["queries"]:
        a, b = p50(tl_new.get(key)), p50(tl_old.get(key))
        if not a or not b:
            continue
        changes = []
        for s in peers:
            pn, po = p50((new[s].get("results") or {}).get(key)), p50((old[s].get("results") or {}).get(key))
            if pn and po:
                changes.append((a / pn) / (b / po))
        against = f"relative to {len(changes)} peer(s)" if changes else "absolute (no peer in both runs)"
        change = sorted(changes)[len(changes) // 2] if changes else a / b
        if change > threshold:
            out.append(f"REGRESSION {key}: {ms(b)} -> {ms(a)} ms p50, {change:.2f}x slower {against}")
    return out or [f"regression guard: no query slower by more than {threshold:.2f}x than the previous run"]


def chart(data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    systems = data["systems"]
    peers = [s for s in NAMES if s in systems and s != "timberline"]
    keys = [k for k, _ in data["queries"]]
    tl = systems["timberline"].get("results", {})
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / max(1, len(peers))
    for i, s in enumerate(peers):
        res = systems[s].get("results") or {}
        ratios = [(p50(res.get(k)) / p50(tl.get(k))) if p50(res.get(k)) and p50(tl.get(k)) else 0 for k in keys]
        ax.bar([x + i * width for x in range(len(keys))], ratios, width, label=NAMES[s])
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks([x + width * (len(peers) - 1) / 2 for x in range(len(keys))], keys)
    ax.set_ylabel("peer p50 ÷ Timberline p50 (log; >1 = Timberline faster)")
    ax.set_title(f"{data['meta']['rows']:,} rows, commit {commit()} (missing bar: n/a)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("--command", required=True)
    ap.add_argument("--png")
    ap.add_argument("--previous", help="the last committed run's JSON: report regressions against it")
    a = ap.parse_args()
    with open(a.result) as f:
        data = json.load(f)
    print(markdown(data, a.command), end="")
    if a.previous and os.path.exists(a.previous):
        with open(a.previous) as f:
            lines = regressions(data, json.load(f))
        print("\n" + "\n".join(f"- {l}" for l in lines))
        for l in lines:
            print(l, file=sys.stderr)
    if a.png and "timberline" in data["systems"]:
        chart(data, a.png)


if __name__ == "__main__":
    main()
