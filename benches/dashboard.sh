#!/usr/bin/env bash
# Ten concurrent identical dashboard refreshes vs one, with the result cache off and on:
# N generated rows over a week, the shipped dashboard's aggregate panels (no rollup view
# defined) over the last 24 hours and 7 days (benches/dashboard/refresh.py). Each setting starts
# a fresh server on the same segments (an empty cache): round 1 is cold, rounds 2+ warm.
#
#   bash benches/dashboard.sh [--rows N] [--rounds N]
#
# TIMBERLINE_BIN=path skips the release build. Appends a section to benches/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=3000000
ROUNDS=5
command="bash benches/dashboard.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--rounds N]" >&2; exit 2 ;;
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
work=$(mktemp -d -p "${BENCH_DIR:-${TMPDIR:-/tmp}}")
pid=
cleanup() {
  set +e
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
start_tl() { # serve flags…
  "$bin" serve --data-dir "$work/tl" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 \
    --maintenance-interval 0 "$@" >"$work/out" 2>>"$work/err" &
  pid=$!
  for _ in $(seq 1 600); do grep -q '^timberline ready' "$work/out" 2>/dev/null && break; sleep 0.1; done
  line=$(grep '^timberline ready' "$work/out")
  http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
  tl_port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')
}
stop_tl() { kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

start=2024-03-01T00:00:00Z
end=2024-03-08T00:00:00Z
step=$(( 7 * 86400 * 1000000 / ROWS ))
log "generating and loading $ROWS rows…"
"$bin" generate --rows "$ROWS" --seed 1 --start "$start" --step-us "$step" --out "$work/logs.ndjson"
start_tl
"$bin" ingest --quiet --from-start --format ndjson --server "http://$http" "$work/logs.ndjson" >&2
curl -sS -XPOST -H "Authorization: Bearer timberline" "http://$http/v1/flush" >/dev/null
segments=$(PGPASSWORD=timberline psql -X -At -h 127.0.0.1 -p "$tl_port" -U timberline -d timberline -c "SELECT count(*) FROM segments")
stop_tl
rm -f "$work/logs.ndjson"

for cache in off on; do
  flag=()
  [ "$cache" = off ] && flag=(--result-cache-bytes 0)
  for users in 1 10; do
    start_tl "${flag[@]}"
    log "cache $cache, $users user(s)…"
    python3 benches/dashboard/refresh.py --port "$tl_port" --end "$end" --users "$users" --rounds "$ROUNDS" \
      >"$work/$cache-$users.json"
    stop_tl
  done
done
{
  echo
  echo "## Ten concurrent dashboard refreshes vs one, result cache off and on (issue 29) — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "\`$command\` (release build, $(nproc) cores; $ROWS rows over a week in $segments segments; the load generator runs on the same cores)"
  echo
  python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
r = {(c, u): json.load(open(f"{w}/{c}-{u}.json")) for c in ["off", "on"] for u in [1, 10]}
print("Panels (each on its own connection, all at once, as Grafana refreshes): " + ", ".join(r[("on", 1)]["panels"]) + ".")
print("Wall time of one refresh (ms) and of ten users refreshing at the same moment; round 1 on a fresh server (cache empty), then the median of the next rounds, each moving the window on by 10 s.")
print()
print("| range | round | cache off: 1 | off: 10 at once | off ×| cache on: 1 | on: 10 at once | on × |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for rng in ["24h", "7d"]:
    for rd in ["cold", "warm"]:
        o1, o10 = r[("off", 1)][rng][rd], r[("off", 10)][rng][rd]
        n1, n10 = r[("on", 1)][rng][rd], r[("on", 10)][rng][rd]
        print(f"| {rng} | {rd} | {o1:.0f} | {o10:.0f} | {o10 / o1:.1f} | {n1:.0f} | {n10:.0f} | {n10 / n1:.1f} |")
PY
} | tee -a benches/RESULTS.md
