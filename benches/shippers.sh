#!/usr/bin/env bash
# Figures of the shipper protocols and file ingest (issue 17), against a release build, one run:
#   1. durable ingest events/s per protocol, each on a fresh server, the same generated events:
#      /v1/ingest JSON (the reference), OTLP/HTTP protobuf, Loki push (protobuf + snappy),
#      Elasticsearch _bulk, OTLP/gRPC (grpcio client), syslog over TCP (octet counting; counted
#      until every event is stored, since syslog has no acknowledgement)
#   2. `timberline ingest` lines/s per file format (1M generated events written in each shape)
#   3. `--follow` latency from a line written to the row queryable
# Usage: bash benches/shippers.sh [--seconds N] [--lines N]   (appends a section to benches/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LOAD=20
LINES=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_LOAD="$2"; shift 2 ;;
    --lines) LINES="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/timberline-target}"
bin="${TIMBERLINE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --bin timberline >/dev/null
  bin="$CARGO_TARGET_DIR/release/timberline"
fi
python3 -m pip install -q --disable-pip-version-check -r tests/clients/requirements.txt
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() {
  rm -rf "$work/data"
  "$bin" serve --data-dir "$work/data" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 \
    --otlp-grpc-addr 127.0.0.1:0 --syslog-addr 127.0.0.1:0 >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 1 300); do grep -q '^timberline ready' "$work/out" && break; sleep 0.1; done
  line=$(grep '^timberline ready' "$work/out")
  http=http://$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
  pg_port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')
  grpc=$(echo "$line" | sed -E 's/.*otlp-grpc=([^ ]+).*/\1/')
  syslog=$(echo "$line" | sed -E 's/.*syslog=([^ ]+).*/\1/')
}
stop() { kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

out="$work/report.md"
{
  echo
  echo "## Shippers and file ingest — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB. Command: \`bash benches/shippers.sh --seconds $SECONDS_LOAD --lines $LINES\`"
  echo "Each protocol on a fresh release server; generated events (~500 B as JSON), 1,000 per request,"
  echo "16 requests in flight; the load generator runs on the same 2 cores as the server."
  echo
} >"$out"
stored() { PGPASSWORD=timberline psql -X -tA -h 127.0.0.1 -p "$pg_port" -U timberline -c 'SELECT count(*) FROM logs'; }
for proto in json otlp loki bulk; do
  start
  echo "- $("$bin" bench ingest --server "$http" --seconds "$SECONDS_LOAD" --protocol "$proto"); rows stored: $(stored)" >>"$out"
  stop
done
start
echo "- $(python3 benches/shippers/otlp_grpc_load.py "$grpc" timberline "$SECONDS_LOAD" 8); rows stored: $(stored)" >>"$out"
stop
start
echo "- $("$bin" bench ingest --protocol syslog-tcp --syslog "$syslog" --pg "host=127.0.0.1 port=$pg_port user=timberline password=timberline" --seconds "$SECONDS_LOAD" --concurrency 4)" >>"$out"
stop

# File ingest per format: the same events in each shape.
"$bin" generate --rows "$LINES" --seed 1 --format ndjson --out "$work/events.ndjson"
"$bin" generate --rows "$LINES" --seed 1 --format triage --out "$work/triage.log"
python3 benches/shippers/file_formats.py "$work/events.ndjson" "$work/files"
hdfs=tests/data/loghub/HDFS/HDFS_2k.log
: >"$work/hdfs.log"
for _ in $(seq 1 $((LINES / 2000))); do cat "$hdfs" >>"$work/hdfs.log"; echo >>"$work/hdfs.log"; done
gzip -1 -k "$work/files/logfmt.log"
echo >>"$out"
echo "File ingest (\`timberline ingest --quiet FILE\`, format auto-detected, fresh server each):" >>"$out"
echo >>"$out"
for f in "$work/events.ndjson" "$work/files/ecs.log" "$work/files/logfmt.log" "$work/files/logfmt.log.gz" \
         "$work/files/cri.log" "$work/files/access.log" "$work/triage.log" "$work/hdfs.log" \
         "$work/files/java.log" "$work/files/glog.log"; do
  start
  res=$("$bin" ingest --quiet --server "$http" --data-dir "$work/ck-$RANDOM" "$f" 2>"$work/ingest-err")
  fmt=$(grep -oE 'format [^(]+' "$work/ingest-err" | head -1 | sed 's/format //')
  echo "- $(basename "$f") ($fmt): $res" >>"$out"
  stop
done

start
: >"$work/follow.log"
"$bin" ingest --quiet --follow --server "$http" --data-dir "$work/ck-follow" "$work/follow.log" >/dev/null 2>&1 &
fpid=$!
echo >>"$out"
echo "- $(python3 benches/shippers/follow_latency.py "$work/follow.log" "$pg_port" 50) (poll interval 100 ms)" >>"$out"
kill "$fpid" 2>/dev/null || true
stop

cat "$out" | tee -a benches/RESULTS.md
