#!/usr/bin/env bash
# Figures of issue 29's tenant isolation and redaction, against a release build, one run:
#   1. a well-behaved tenant's ingest latency and query latency alone, then next to a tenant
#      sending 10x its ingest quota (benches/quotas/isolation.py);
#   2. durable ingest events/s with the default redaction rules on and off (`timberline bench
#      ingest`, fresh server each, on/off/on/off).
# Usage: bash benches/quotas.sh [--seconds N]   (appends a section to benches/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LOAD=20
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_LOAD="$2"; shift 2 ;;
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
start() { # start [serve flags…]
  rm -rf "$work/data"
  "$bin" serve --data-dir "$work/data" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 1 300); do grep -q '^timberline ready' "$work/out" && break; sleep 0.1; done
  line=$(grep '^timberline ready' "$work/out")
  http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
  pg_port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')
}
stop() { kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

out="$work/report.md"
{
  echo
  echo "## Tenant isolation and redaction (issue 29) — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; release build; the load generators run on the same cores."
  echo "Command: \`bash benches/quotas.sh --seconds $SECONDS_LOAD\`"
  echo
} >"$out"

QUOTA=2000
start
good=$("$bin" key add --tenant good --data-dir "$work/data")
noisy=$("$bin" key add --tenant noisy --data-dir "$work/data")
TIMBERLINE_NEW_PASSWORD=pw "$bin" user add good_user --tenant good --data-dir "$work/data" 2>/dev/null
"$bin" tenant set noisy --ingest-events-per-sec "$QUOTA" --data-dir "$work/data" >/dev/null 2>&1
echo "Tenant isolation: tenant \`noisy\` has a quota of $QUOTA events/s; tenant \`good\` sends 200 events every 50 ms and runs a small aggregate every 100 ms, for $SECONDS_LOAD s alone, then $SECONDS_LOAD s while \`noisy\` sends 10x its quota." >>"$out"
echo >>"$out"
python3 benches/quotas/isolation.py "$http" "$pg_port" "$good" "$noisy" good_user "$SECONDS_LOAD" "$QUOTA" >>"$out"
stop

echo >>"$out"
echo "Redaction: durable ingest (\`timberline bench ingest\`, JSON, 1,000 events a request, 16 in flight), fresh server each:" >>"$out"
echo >>"$out"
for round in 1 2; do
  for mode in default none; do
    start --redact "$mode"
    echo "- round $round, \`--redact $mode\`: $("$bin" bench ingest --server "http://$http" --seconds "$SECONDS_LOAD")" >>"$out"
    stop
  done
done
cat "$out" >>benches/RESULTS.md
cat "$out"
