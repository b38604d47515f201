#!/usr/bin/env bash
# nearest() end to end, same data, same targets, same run:
#   Timberline  `SELECT * FROM logs WHERE nearest(ts, T) [AND service = S]` over pgwire
#   PostgreSQL 15  two-probe btree query (ts >= T ORDER BY ts LIMIT 1 ∪ ts < T ORDER BY ts DESC LIMIT 1),
#                  btree on (ts) and (service, ts), over pgwire
#   DuckDB      the same two-probe query over the Parquet files Timberline wrote (in-process, no
#               network: flatters DuckDB)
# Targets: the golden-ratio sequence of `timberline bench sql` (benches/nearest_duckdb.py repeats it).
# Usage: bash benches/nearest.sh [--rows N] [--samples N] [--duck-samples N]
#   (appends a section to benches/RESULTS.md). TIMBERLINE_BIN=path skips the release build.
# Nothing is staged on disk but the systems' own data: generated events stream into Timberline,
# and PostgreSQL loads Timberline's Parquet through a pipe. PostgreSQL's table leaves out `attrs`
# (60% of the bytes) so that 100M rows fit this machine's disk; narrower rows only help it.
set -euo pipefail
# The demo password of the user timberline (libpq and psycopg read PGPASSWORD).
export PGPASSWORD="${TIMBERLINE_PASSWORD:-timberline}"
cd "$(dirname "$0")/.."
ROWS=10000000
SAMPLES=200
DUCK_SAMPLES=
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --samples) SAMPLES="$2"; shift 2 ;;
    --duck-samples) DUCK_SAMPLES="$2"; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--samples N] [--duck-samples N]" >&2; exit 2 ;;
  esac
done
DUCK_SAMPLES="${DUCK_SAMPLES:-$SAMPLES}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin="${TIMBERLINE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --bin timberline >/dev/null
  bin="$CARGO_TARGET_DIR/release/timberline"
fi
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/postgres" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
python3 -c 'import duckdb, pytz' 2>/dev/null || pip install -q duckdb pytz
SERVICE=checkout

work=$(mktemp -d)
# PostgreSQL refuses to run as root: its directory belongs to the postgres user then.
pgroot=$(mktemp -d)
chmod 755 "$pgroot"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$pgroot"
pid=
pgdata=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  [ -n "$pgdata" ] && as_pg "$PGBIN/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1
  rm -rf "$work" "$pgroot"
}
trap cleanup EXIT

"$bin" serve --data-dir "$work/tl" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 300); do grep -q '^timberline ready' "$work/out" && break; sleep 0.1; done
line=$(grep '^timberline ready' "$work/out")
http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
pg_port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')
echo "generating $ROWS rows into Timberline…" >&2
started=$(date +%s)
"$bin" generate --rows "$ROWS" --seed 1 | "$bin" ingest --quiet --format ndjson --server "http://$http" -
echo "generated and ingested in $(( $(date +%s) - started )) s" >&2
curl -sf -XPOST -H "Authorization: Bearer ${TIMBERLINE_API_KEY:-timberline}" "http://$http/v1/flush" >/dev/null
sync # the flush's writeback is the load phase, not part of any lookup
tl="host=127.0.0.1 port=$pg_port user=timberline password=timberline"
q() { psql -X -tA -h 127.0.0.1 -p "$pg_port" -U timberline -c "$1"; }
from=$(q "SELECT arrow_cast(min(ts), 'Int64') FROM logs")
to=$(q "SELECT arrow_cast(max(ts), 'Int64') FROM logs")
rows=$(q "SELECT count(*) FROM logs")
segments=$(q "SELECT count(*) FROM segments")

# Warm means every segment's footer and page index are in Timberline's metadata cache (as on a
# server that has been answering queries): warm-up targets touch each segment a few times.
# PostgreSQL gets the same warm-up. The first lookup into a segment after a restart pays for
# reading its metadata (see RESULTS.md).
warmup=$(( segments * 3 > 20 ? segments * 3 : 20 ))
run() { "$bin" bench sql --pg "$1" --query "$2" --from "$from" --to "$to" --samples "$SAMPLES" --warmup "$warmup"; }
tl_all=$(run "$tl" "SELECT * FROM logs WHERE nearest(ts, '{T}')")
tl_svc=$(run "$tl" "SELECT * FROM logs WHERE nearest(ts, '{T}') AND service = '$SERVICE'")
tl_k10=$(run "$tl" "SELECT * FROM logs WHERE nearest(ts, '{T}', 10) AND service = '$SERVICE' AND level = 'ERROR'")
tl_rss=$(awk '/VmHWM/{print $2}' /proc/$pid/status)

echo "loading into PostgreSQL…" >&2
pgdata="$pgroot/data"
as_pg "$PGBIN/initdb" -D "$pgdata" -U postgres --auth=trust >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$pgdata" -l "$pgroot/pg.log" -w \
  -o "-p 55432 -k $pgroot -c listen_addresses=127.0.0.1 -c shared_buffers=1GB -c max_wal_size=8GB" start >/dev/null
pq() { psql -X -q -h 127.0.0.1 -p 55432 -U postgres -d postgres "$@"; }
pq -c "CREATE UNLOGGED TABLE logs (ts timestamptz, service text, host text, level text, msg text, trace_id text)"
mkfifo "$work/rows.csv"
python3 - "$work" <<'PY' &
import duckdb, sys
w = sys.argv[1]
duckdb.sql(f"""COPY (SELECT ts, service, host, level, msg, trace_id
               FROM read_parquet('{w}/tl/segments/**/*.parquet'))
               TO '{w}/rows.csv' (FORMAT csv, HEADER false)""")
PY
exporter=$!
pq -c "\\copy logs FROM '$work/rows.csv' WITH (FORMAT csv)"
wait "$exporter"
pq -c "CREATE INDEX ON logs (ts)" -c "CREATE INDEX ON logs (service, ts)" -c "ANALYZE logs"
pg="host=127.0.0.1 port=55432 user=postgres dbname=postgres"
probe() { # WHERE-extra
  echo "SELECT * FROM ((SELECT * FROM logs WHERE ts >= '{T}' $1 ORDER BY ts LIMIT 1) UNION ALL (SELECT * FROM logs WHERE ts < '{T}' $1 ORDER BY ts DESC LIMIT 1)) c ORDER BY abs(extract(epoch FROM ts - '{T}'::timestamptz)) LIMIT 1"
}
pg_all=$(run "$pg" "$(probe '')")
pg_svc=$(run "$pg" "$(probe "AND service = '$SERVICE'")")
pg_bytes=$(pq -tA -c "SELECT pg_total_relation_size('logs')")

echo "DuckDB over the same Parquet files…" >&2
duck=$(python3 benches/nearest_duckdb.py "$work/tl/segments" "$from" "$to" "$DUCK_SAMPLES" "$SERVICE")
duck_all=$(echo "$duck" | sed -n 1p)
duck_svc=$(echo "$duck" | sed -n 2p)
tl_bytes=$(q "SELECT sum(bytes) FROM segments")

p50() { echo "$1" | sed -E 's/.*p50_us=([0-9]+).*/\1/'; }
p99() { echo "$1" | sed -E 's/.*p99_us=([0-9]+).*/\1/'; }
ms() { awk -v u="$1" 'BEGIN{printf "%.2f ms", u/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f×", b/a}'; }
{
  echo
  echo "## nearest() end to end — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB. Command: \`bash benches/nearest.sh --rows $ROWS --samples $SAMPLES --duck-samples $DUCK_SAMPLES\`."
  echo "$rows generated rows (\`timberline generate --seed 1\`, $(( (to - from) / 3600000000 )) h of event time), $segments segments"
  echo "($tl_bytes bytes of Parquet; PostgreSQL table without attrs + indexes $pg_bytes bytes). Random targets"
  echo "($SAMPLES for Timberline and PostgreSQL after $warmup warm-up queries, $DUCK_SAMPLES for DuckDB), the same targets for every system;"
  echo "Timberline and PostgreSQL over pgwire from the same client, DuckDB in-process."
  echo
  echo "| query | Timberline p50 / p99 | PostgreSQL 15 (btree, two probes) p50 / p99 | DuckDB (same Parquet) p50 / p99 | PG ÷ TL (p50) | DuckDB ÷ TL (p50) |"
  echo "|---|---|---|---|---|---|"
  echo "| nearest, no filter | $(ms "$(p50 "$tl_all")") / $(ms "$(p99 "$tl_all")") | $(ms "$(p50 "$pg_all")") / $(ms "$(p99 "$pg_all")") | $(ms "$(p50 "$duck_all")") / $(ms "$(p99 "$duck_all")") | $(ratio "$(p50 "$tl_all")" "$(p50 "$pg_all")") | $(ratio "$(p50 "$tl_all")" "$(p50 "$duck_all")") |"
  echo "| nearest, service = '$SERVICE' | $(ms "$(p50 "$tl_svc")") / $(ms "$(p99 "$tl_svc")") | $(ms "$(p50 "$pg_svc")") / $(ms "$(p99 "$pg_svc")") | $(ms "$(p50 "$duck_svc")") / $(ms "$(p99 "$duck_svc")") | $(ratio "$(p50 "$tl_svc")" "$(p50 "$pg_svc")") | $(ratio "$(p50 "$tl_svc")" "$(p50 "$duck_svc")") |"
  echo "| nearest k=10, service AND level = 'ERROR' (Timberline only) | $(ms "$(p50 "$tl_k10")") / $(ms "$(p99 "$tl_k10")") | | | | |"
  echo
  echo "Raw: TL \`$tl_all\` / \`$tl_svc\` / \`$tl_k10\`; PG \`$pg_all\` / \`$pg_svc\`; DuckDB \`$duck_all\` / \`$duck_svc\`. Timberline peak RSS ${tl_rss} kB."
} | tee -a benches/RESULTS.md
