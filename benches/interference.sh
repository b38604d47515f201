#!/usr/bin/env bash
# Small queries while something big runs: the p50/p99 of `nearest()` lookups (one connection,
# back to back) alone, during a loop of 30-day scans of every row (a `LIKE` over `msg`, the
# result cache off), and during full-speed ingest (`timberline ingest` of generated rows).
# N rows over 30 days are generated straight into the server (no file).
#
#   bash benches/interference.sh [--rows N] [--seconds S]
#
# TIMBERLINE_BIN=path skips the release build. Appends a section to benches/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=10000000
SECS=20
command="bash benches/interference.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --seconds) SECS="$2"; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--seconds S]" >&2; exit 2 ;;
  esac
done
log() { echo "bench: $*" >&2; }
python3 -c 'import psycopg2' 2>/dev/null || pip install -q psycopg2-binary
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/timberline-target}"
bin="${TIMBERLINE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --bin timberline >/dev/null
  bin="$CARGO_TARGET_DIR/release/timberline"
fi
export PGPASSWORD=timberline
work=$(mktemp -d -p "${BENCH_DIR:-${TMPDIR:-/tmp}}")
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$bin" serve --data-dir "$work/tl" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 \
  --maintenance-interval 0 >"$work/out" 2>>"$work/err" &
pids+=($!)
for _ in $(seq 1 600); do grep -q '^timberline ready' "$work/out" 2>/dev/null && break; sleep 0.1; done
line=$(grep '^timberline ready' "$work/out")
http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')

start=2024-03-01T00:00:00Z
end=2024-03-31T00:00:00Z
step=$(( 30 * 86400 * 1000000 / ROWS ))
log "loading $ROWS rows over 30 days…"
"$bin" generate --rows "$ROWS" --seed 1 --start "$start" --step-us "$step" \
  | "$bin" ingest --quiet --format ndjson --server "http://$http" --data-dir "$work/ckpt" - >&2
curl -sS -XPOST -H "Authorization: Bearer timberline" "http://$http/v1/flush" >/dev/null
segments=$(psql -X -At -h 127.0.0.1 -p "$port" -U timberline -d timberline -c "SELECT count(*) || ' segments, ' || sum(rows) || ' rows' FROM segments")
small() { python3 benches/interference/small.py --port "$port" --start "$start" --end "$end" --seconds "$SECS"; }

log "small queries alone…"
alone=$(small)
log "small queries during 30-day scans…"
scan_sql="SET timberline.result_cache = off; SELECT service, count(*) FROM logs WHERE msg LIKE '%timeout%' GROUP BY 1"
t0=$(date +%s.%N)
psql -X -q -At -h 127.0.0.1 -p "$port" -U timberline -d timberline -c "$scan_sql" >/dev/null
scan_s=$(echo "$(date +%s.%N) - $t0" | bc)
( while true; do psql -X -q -At -h 127.0.0.1 -p "$port" -U timberline -d timberline -c "$scan_sql" >/dev/null || true; done ) &
scanner=$!
pids+=("$scanner")
during_scan=$(small)
kill "$scanner" 2>/dev/null; wait "$scanner" 2>/dev/null || true
log "small queries during full-speed ingest…"
( "$bin" generate --rows 100000000 --seed 2 --start "$end" --step-us 1000 \
    | "$bin" ingest --quiet --format ndjson --server "http://$http" --data-dir "$work/ckpt2" - >"$work/ingest.out" 2>&1 ) &
loader=$!
pids+=("$loader")
before=$(psql -X -At -h 127.0.0.1 -p "$port" -U timberline -d timberline -c "SELECT count(*) FROM logs WHERE ts >= '$end'")
t1=$(date +%s.%N)
during_ingest=$(small)
after=$(psql -X -At -h 127.0.0.1 -p "$port" -U timberline -d timberline -c "SELECT count(*) FROM logs WHERE ts >= '$end'")
rate=$(echo "($after - $before) / ($(date +%s.%N) - $t1)" | bc)
pkill -P "$loader" 2>/dev/null || true
{
  echo
  echo "## Small queries next to a 30-day scan and full-speed ingest (issue 29) — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "\`$command\` (release build, $(nproc) cores; $segments over 30 days; the load generators run on the same cores)"
  echo
  python3 - "$alone" "$during_scan" "$during_ingest" "$scan_s" "$rate" <<'PY'
import json, sys
alone, scan, ingest = (json.loads(x) for x in sys.argv[1:4])
scan_s, rate = float(sys.argv[4]), sys.argv[5]
print("Small query: `SELECT ts, service, level, msg FROM logs WHERE nearest(ts, <random instant>, 10)`, back to back on one connection.")
print()
print("| next to | queries | p50 ms | p99 ms | p99 × alone (target ≤ 2) |")
print("|---|---:|---:|---:|---:|")
for name, r in [("nothing", alone), (f"a loop of 30-day scans (`LIKE` over every row, {scan_s:.1f} s each alone)", scan),
                (f"full-speed ingest ({rate} rows/s kept up meanwhile)", ingest)]:
    print(f"| {name} | {r['n']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['p99_ms'] / alone['p99_ms']:.2f} |")
PY
} | tee -a benches/RESULTS.md
