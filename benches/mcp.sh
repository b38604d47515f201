#!/usr/bin/env bash
# Figures of the MCP endpoint and of alert rule evaluation (issue 32) at scale, against a release
# build: N generated rows (10M) spread over the last 2 hours, ingested and flushed; then the
# official MCP Python SDK (tests/clients/mcp_triage.py --calls) times each tool (p50/p95 over
# --calls calls, one client); then one evaluation of the README's 5-minute alert rule through
# psql, answered from the count tables and with them turned off (the same query, scanned).
# Usage: bash benches/mcp.sh [--rows N] [--calls N]   (appends to benches/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=10000000
CALLS=20
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --calls) CALLS="$2"; shift 2 ;;
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
"$bin" serve --data-dir "$work/data" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 \
  --maintenance-interval 0 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 600); do grep -q '^timberline ready' "$work/out" && break; sleep 0.1; done
line=$(grep '^timberline ready' "$work/out")
http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')

start=$(date -u -d '-2 hours' +%Y-%m-%dT%H:%M:%SZ)
step=$(( 2 * 3600 * 1000000 / ROWS ))
"$bin" generate --rows "$ROWS" --seed 1 --start "$start" --step-us "$step" --out "$work/logs.ndjson"
loaded=$("$bin" ingest --quiet --from-start --format ndjson --server "http://$http" "$work/logs.ndjson")
curl -sS -XPOST -H "Authorization: Bearer timberline" "http://$http/v1/flush" >/dev/null
rm -f "$work/logs.ndjson"

tools=$(python3 tests/clients/mcp_triage.py "http://$http/mcp" timberline --calls "$CALLS")
rule="SELECT service, count(*) FROM logs WHERE level = 'ERROR' AND ts > now() - interval '5 minutes' GROUP BY service"
time_rule() { # setting; the median of 7 runs, ms
  for _ in $(seq 1 7); do
    PGPASSWORD=timberline psql -X -q -h 127.0.0.1 -p "$port" -U timberline -d timberline \
      -c "SET timberline.rollups = $1" -c '\timing on' -c "$rule" | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p'
  done | sort -n | sed -n 4p
}
counted=$(time_rule on)
scanned=$(time_rule off)
out="$work/report.md"
{
  echo
  echo "## MCP tools and alert rule evaluation at ${ROWS} rows (issue 32) — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; release build; the client on the same cores. Command: \`bash benches/mcp.sh --rows $ROWS --calls $CALLS\`. Load: $loaded"
  echo
  echo "| tool | p50 ms | p95 ms |"
  echo "|---|---|---|"
  echo "$tools" | python3 -c 'import json,sys; [print("| %s | %s | %s |" % (k, v["p50"], v["p95"])) for k, v in json.load(sys.stdin).items()]'
  echo
  echo "Alert rule \`$rule\`, one evaluation (median of 7, through psql): ${counted} ms from the count tables; ${scanned} ms scanned (\`SET timberline.rollups = off\`)."
} >"$out"
cat "$out" >>benches/RESULTS.md
cat "$out"
