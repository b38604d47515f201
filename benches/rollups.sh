#!/usr/bin/env bash
# Rollup views at scale: N generated rows spread over a week. Measures the shipped Grafana
# dashboard's panels over 24 hours and 7 days, with the rewrite on and off, beside chDB reading
# materialized views (AggregatingMergeTree) of the same rows. Also ingest throughput with the
# dashboard's two views defined against none, and the bytes the views add.
#
#   bash benches/rollups.sh [--rows N] [--reps N] [--ingest-runs N]
#
# TIMBERLINE_BIN=path skips the release build; BENCH_DIR=dir puts the data there. Appends a
# section to benches/RESULTS.md.
set -euo pipefail
export PGPASSWORD="${TIMBERLINE_PASSWORD:-timberline}"
cd "$(dirname "$0")/.."
ROWS=10000000
REPS=20
RUNS=2
command="bash benches/rollups.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --ingest-runs) RUNS="$2"; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--reps N] [--ingest-runs N]" >&2; exit 2 ;;
  esac
done
log() { echo "bench: $*" >&2; }
python3 -c 'import psycopg2' 2>/dev/null || pip install -q psycopg2-binary
python3 -c 'import chdb' 2>/dev/null || pip install -q chdb

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin="${TIMBERLINE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --bin timberline >/dev/null
  bin="$CARGO_TARGET_DIR/release/timberline"
fi
work=$(mktemp -d -p "${BENCH_DIR:-${TMPDIR:-/tmp}}")
pid=
cleanup() {
  set +e
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

start_tl() { # data dir
  "$bin" serve --data-dir "$1" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 \
    --maintenance-interval 0 >"$work/out" 2>>"$work/err" &
  pid=$!
  for _ in $(seq 1 600); do grep -q '^timberline ready' "$work/out" 2>/dev/null && break; sleep 0.1; done
  line=$(grep '^timberline ready' "$work/out")
  http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
  tl_port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')
}
stop_tl() { kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
q() { psql -X -At -h 127.0.0.1 -p "$tl_port" -U timberline -d timberline -c "$1"; }
rate() { sed -E 's/.* ([0-9]+) lines\/s.*/\1/' <<<"$1"; }

# A week of rows: the step spreads N rows over 7 days.
start=2024-03-01T00:00:00Z
end=2024-03-08T00:00:00Z
step=$(( 7 * 86400 * 1000000 / ROWS ))
log "generating $ROWS rows, one every ${step} µs…"
"$bin" generate --rows "$ROWS" --seed 1 --start "$start" --step-us "$step" --out "$work/logs.ndjson"

# Ingest with no view and with the dashboard's two, alternately, each into a fresh directory.
none=() views=()
for run in $(seq 1 "$RUNS"); do
  for kind in none views; do
    rm -rf "$work/tl"
    start_tl "$work/tl"
    [ "$kind" = views ] && psql -X -q -h 127.0.0.1 -p "$tl_port" -U timberline -d timberline -f docker/grafana/rollups.sql
    out=$("$bin" ingest --quiet --from-start --format ndjson --server "http://$http" "$work/logs.ndjson")
    curl -sS -XPOST -H "Authorization: Bearer timberline" "http://$http/v1/flush" >/dev/null
    log "ingest run $run, $kind: $out"
    if [ "$kind" = none ]; then none+=("$(rate "$out")"); else views+=("$(rate "$out")"); fi
    # The last directory (with views) is kept running for the panels.
    if [ "$kind" = none ] || [ "$run" -lt "$RUNS" ]; then stop_tl; fi
  done
done
# Partials are written in the background after each flush: time the panels once they are.
for _ in $(seq 1 1200); do
  [ "$(q "SELECT count(*) FROM rollups WHERE state <> 'ready'")" = 0 ] && break
  sleep 0.5
done
log "views: $(q "SELECT name, state, segments_done, segments_total, bytes FROM rollups")"
log "timing panels…"
python3 benches/rollups/panels.py --tl-port "$tl_port" --work "$work" --end "$end" --reps "$REPS" --out "$work/panels.json"
stop_tl
printf '{"none": [%s], "views": [%s]}\n' "$(IFS=,; echo "${none[*]}")" "$(IFS=,; echo "${views[*]}")" >"$work/ingest.json"
{
  echo
  echo "## Rollup views: dashboard panels, ingest with views, bytes — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "\`$command\` (release build, 2 cores, p50 of $REPS runs after one warm-up)"
  echo
  python3 benches/rollups/summary.py "$work"
} | tee -a benches/RESULTS.md
