#!/usr/bin/env bash
# Figures of the shipper protocols and file ingest (issue 17), against a release build, one run:
#   1. durable ingest events/s per protocol, each on a fresh server, the same generated events:
#      /v1/ingest JSON (the reference), OTLP/HTTP protobuf, Loki push (protobuf + snappy),
#      Elasticsearch _bulk, OTLP/gRPC (grpcio client), syslog over TCP (octet counting; counted
#      until every event is stored, since syslog has no acknowledgement)
#   2. `timberline ingest` lines/s per file format (1M generated events written in each shape)
#   3. `--follow` latency from a line written to the row queryable
#   With --files-only, 2 and 3 alone; TIMBERLINE_BIN_BEFORE=<binary> runs 2 with that build too,
#   alternating, for a before/after ratio in the same run.
# Usage: bash benches/shippers.sh [--seconds N] [--lines N] [--files-only]
#   (appends a section to benches/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS="$*"
SECONDS_LOAD=20
LINES=1000000
FILES_ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_LOAD="$2"; shift 2 ;;
    --lines) LINES="$2"; shift 2 ;;
    --files-only) FILES_ONLY=1; shift ;;
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
  "${server_bin:-$bin}" serve --data-dir "$work/data" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 \
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
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB. Command: \`${TIMBERLINE_BIN_BEFORE:+TIMBERLINE_BIN_BEFORE=$TIMBERLINE_BIN_BEFORE }bash benches/shippers.sh $ARGS\`"
  echo "Each protocol on a fresh release server; generated events (~500 B as JSON), 1,000 per request,"
  echo "16 requests in flight; the load generator runs on the same 2 cores as the server."
  echo
} >"$out"
stored() { PGPASSWORD=timberline psql -X -tA -h 127.0.0.1 -p "$pg_port" -U timberline -c 'SELECT count(*) FROM logs'; }
if [ -z "$FILES_ONLY" ]; then
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
fi

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
builds="after=$bin"
[ -n "${TIMBERLINE_BIN_BEFORE:-}" ] && builds="before=$TIMBERLINE_BIN_BEFORE $builds"
for f in "$work/events.ndjson" "$work/files/ecs.log" "$work/files/logfmt.log" "$work/files/logfmt.log.gz" \
         "$work/files/cri.log" "$work/files/access.log" "$work/triage.log" "$work/hdfs.log" \
         "$work/files/java.log" "$work/files/glog.log" "$work/files/postgres.log" "$work/files/syslog.log" \
         "$work/files/jul.log" "$work/files/python.log"; do
  for build in $builds; do
    label=${build%%=*}; server_bin=${build#*=}
    start
    res=$("$server_bin" ingest --quiet --server "$http" --data-dir "$work/ck-$RANDOM" "$f" 2>"$work/ingest-err")
    fmt=$(grep -oE 'format [^(]+' "$work/ingest-err" | head -1 | sed 's/format //')
    tag=""; [ "$builds" != "after=$bin" ] && tag="[$label] "
    echo "- ${tag}$(basename "$f") ($fmt): $res" >>"$out"
    stop
  done
done
server_bin=

# --follow latency: file events (inotify), then the polling fallback (--poll, the only way
# before file events).
echo >>"$out"
for mode in events poll; do
  start
  : >"$work/follow-$mode.log"
  flag=; [ "$mode" = poll ] && flag=--poll
  "$bin" ingest --quiet --follow $flag --server "$http" --data-dir "$work/ck-follow-$mode" "$work/follow-$mode.log" >/dev/null 2>&1 &
  fpid=$!
  echo "- [$mode] $(python3 benches/shippers/follow_latency.py "$work/follow-$mode.log" "$pg_port" 50)" >>"$out"
  kill "$fpid" 2>/dev/null || true
  stop
done

cat "$out" | tee -a benches/RESULTS.md
