#!/usr/bin/env bash
# Figures of the walking skeleton (issue 2), measured end to end against a release build:
#   1. durable HTTP ingest: ~500-byte JSON events, 1,000 per batch, ack after fsync, for $SECONDS_INGEST s
#   2. bulk file ingest of 1M lines made from the loghub HDFS sample (lines/s)
#   3. ingest → visible-in-pg latency
#   4. bytes on disk after flush / raw bytes (with gzip -6 and zstd -3 of the same raw file, same run)
# Usage: bash benches/skeleton.sh [--seconds N]   (appends a section to benches/RESULTS.md)
set -euo pipefail
# The demo password of the user timberline (libpq and psycopg read PGPASSWORD).
export PGPASSWORD="${TIMBERLINE_PASSWORD:-timberline}"
cd "$(dirname "$0")/.."
SECONDS_INGEST=60
[ "${1:-}" = "--seconds" ] && SECONDS_INGEST="$2"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --bin timberline >/dev/null
bin="$CARGO_TARGET_DIR/release/timberline"
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() { # start DATA_DIR
  "$bin" serve --data-dir "$1" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 1 300); do grep -q '^timberline ready' "$work/out" && break; sleep 0.1; done
  line=$(grep '^timberline ready' "$work/out")
  http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
  pg_port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')
}
stop() { kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
segbytes() { psql -X -tA -h 127.0.0.1 -p "$pg_port" -U timberline -c 'SELECT coalesce(sum(bytes),0) FROM segments'; }

out="$work/report.md"
{
  echo
  echo "## Walking skeleton — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r). Command: \`bash benches/skeleton.sh --seconds $SECONDS_INGEST\`"
  echo
} >"$out"

# 1. Durable HTTP ingest (3a: visibility on the idle server first).
start "$work/d1"
vis_idle=$("$bin" bench visibility --server "http://$http" --pg "host=127.0.0.1 port=$pg_port user=timberline password=timberline" --samples 100)
echo "- idle server: $vis_idle" >>"$out"
ingest=$("$bin" bench ingest --server "http://$http" --seconds "$SECONDS_INGEST" --batch 1000 --event-bytes 500 --concurrency 16)
echo "- $ingest" >>"$out"
# 3. Latency, on the loaded server.
vis=$("$bin" bench visibility --server "http://$http" --pg "host=127.0.0.1 port=$pg_port user=timberline password=timberline" --samples 100)
echo "- right after the 60 s load (the probe query scans every row ingested, no index yet): $vis" >>"$out"
echo "- peak RSS of the server during ingest: $(awk '/VmHWM/{print $2, $3}' /proc/$pid/status)" >>"$out"
stop

# 2 + 4. Bulk file ingest of 1M HDFS lines, then bytes on disk vs raw.
for _ in $(seq 1 500); do cat tests/data/loghub/HDFS/HDFS_2k.log; echo; done >"$work/hdfs-1m.log"
start "$work/d2"
t0=$(date +%s.%N)
bulk=$("$bin" ingest --quiet --format loghub:HDFS --server "http://$http" "$work/hdfs-1m.log")
curl -s -XPOST -H "Authorization: Bearer ${TIMBERLINE_API_KEY:-timberline}" "http://$http/v1/flush" >/dev/null
t1=$(date +%s.%N)
raw=$(stat -c %s "$work/hdfs-1m.log")
seg=$(segbytes)
gz=$(gzip -6 -c "$work/hdfs-1m.log" | wc -c)
zs=$(zstd -3 -q -c "$work/hdfs-1m.log" 2>/dev/null | wc -c || echo 0)
{
  echo "- bulk file ingest (1M lines of the HDFS sample ×500, loghub:HDFS): $bulk; incl. final flush $(echo "$t1 - $t0" | bc) s"
  echo "- bytes on disk after flush, HDFS 1M lines: raw $raw B → segments $seg B = $(echo "scale=3; $seg / $raw" | bc) of raw (gzip -6: $(echo "scale=3; $gz / $raw" | bc), zstd -3: $(echo "scale=3; $zs / $raw" | bc); segments carry 11 typed, queryable columns; the file repeats one 2k-line sample, which flatters every compressor)"
} >>"$out"
stop

# 4b. Bytes on disk for generated JSON events (the shape of shipper traffic).
"$bin" generate --rows 1000000 --seed 3 --format ndjson --out "$work/gen.ndjson"
start "$work/d3"
gen=$("$bin" ingest --quiet --format ndjson --server "http://$http" "$work/gen.ndjson")
curl -s -XPOST -H "Authorization: Bearer ${TIMBERLINE_API_KEY:-timberline}" "http://$http/v1/flush" >/dev/null
raw=$(stat -c %s "$work/gen.ndjson")
seg=$(segbytes)
gz=$(gzip -6 -c "$work/gen.ndjson" | wc -c)
{
  echo "- NDJSON file ingest (1M generated events): $gen"
  echo "- bytes on disk after flush, 1M generated JSON events: raw $raw B → segments $seg B = $(echo "scale=3; $seg / $raw" | bc) of raw (gzip -6: $(echo "scale=3; $gz / $raw" | bc))"
} >>"$out"
stop

cat "$out"
cat "$out" >>benches/RESULTS.md
