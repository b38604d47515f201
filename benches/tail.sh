#!/usr/bin/env bash
# Figures of the live tail (issue 32), against a release build, one run: `timberline bench tail`
# at a steady ingest rate with 0 streams (the baseline), then 20 streams of different filters,
# fresh server each, alternating. Each figure is the latency from an ingest request's 202 to a
# stream's receipt of the probe row that request carried (0 when the row came first), over every
# (stream, probe) pair; the ingest rate and request latency beside it show what the streams cost
# ingest.
# Usage: bash benches/tail.sh [--rate N] [--seconds N] [--rounds N]   (appends to benches/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=100000
SECONDS_LOAD=20
ROUNDS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE="$2"; shift 2 ;;
    --seconds) SECONDS_LOAD="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/timberline-target}"
bin="${TIMBERLINE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --bin timberline >/dev/null
  bin="$CARGO_TARGET_DIR/release/timberline"
fi
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
start() {
  rm -rf "$work/data"
  "$bin" serve --data-dir "$work/data" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 1 300); do grep -q '^timberline ready' "$work/out" && break; sleep 0.1; done
  http=$(grep '^timberline ready' "$work/out" | sed -E 's/.*http=([^ ]+).*/\1/')
}
stop() { kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

out="$work/report.md"
{
  echo
  echo "## Live tail latency under ingest (issue 32) — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; release build; the ingest driver and the 20 stream readers run on the same cores."
  echo "Command: \`bash benches/tail.sh --rate $RATE --seconds $SECONDS_LOAD --rounds $ROUNDS\` (\`timberline bench tail\`, batches of 1,000 events, 8 requests in flight)."
  echo
} >"$out"
for round in $(seq 1 "$ROUNDS"); do
  for tailers in 0 20; do
    start
    echo "- round $round: $("$bin" bench tail --server "http://$http" --rate "$RATE" --seconds "$SECONDS_LOAD" --tailers "$tailers")" >>"$out"
    stop
  done
done
cat "$out" >>benches/RESULTS.md
cat "$out"
