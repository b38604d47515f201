#!/usr/bin/env bash
# Figures of alert rules (issue 32), against a release build: the time from a threshold
# crossing (the 202 of the ingest request that crosses it) to the webhook's receipt of the
# firing notification, for rules evaluated every 1s and every 5s (benches/alerts/latency.py).
# What one evaluation costs over 10M rows is in benches/mcp.sh.
# Usage: bash benches/alerts.sh [--rounds N]   (appends to benches/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=20
while [ $# -gt 0 ]; do
  case "$1" in
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
out=$(mktemp)
{
  echo
  echo "## Alert rules: threshold crossing to notification (issue 32) — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; release build. Command: \`bash benches/alerts.sh --rounds $ROUNDS\`."
  echo
  for every in 1s 5s; do
    echo "- $(python3 benches/alerts/latency.py "$bin" "$ROUNDS" "$every")"
  done
} >"$out"
cat "$out" >>benches/RESULTS.md
cat "$out"
