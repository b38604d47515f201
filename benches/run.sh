#!/usr/bin/env bash
# The benchmark driver: the same generated logs loaded into Timberline and its peers, the same
# workload (benches/driver/workload.py, Q1-Q8) timed on each in one run, the ratios reported.
#
#   bash benches/run.sh [--rows N] [--seed S] [--reps N] [--systems LIST] [--no-cold]
#                       [--tl-index true|false] [--smoke]
#
# LIST: comma-separated of timberline (always), duckdb-parquet, duckdb-native, chdb, postgres,
# ripgrep; all by default. Installs missing peers (pip, apt-get), starts every server on 127.0.0.1,
# appends a section to benches/RESULTS.md and writes benches/ratios.png. --smoke (CI): Timberline
# only, 3 repetitions, nothing appended. TIMBERLINE_BIN=path skips the release build;
# BENCH_DIR=dir puts the data there (default: a temp dir, removed at the end).
set -euo pipefail
# The demo password of the user timberline (libpq and psycopg read PGPASSWORD).
export PGPASSWORD="${TIMBERLINE_PASSWORD:-timberline}"
cd "$(dirname "$0")/.."
ROWS=10000000
SEED=1
REPS=20
SYSTEMS=timberline,duckdb-parquet,duckdb-native,chdb,postgres,ripgrep
COLD=--cold
SMOKE=
TL_INDEX=true
command="bash benches/run.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --systems) SYSTEMS="timberline,${2#timberline,}"; shift 2 ;;
    --no-cold) COLD=; shift ;;
    --tl-index) TL_INDEX="$2"; shift 2 ;;
    --smoke) SMOKE=1; SYSTEMS=timberline; REPS=3; COLD=; shift ;;
    *) echo "usage: $0 [--rows N] [--seed S] [--reps N] [--systems LIST] [--no-cold] [--tl-index true|false] [--smoke]" >&2; exit 2 ;;
  esac
done
for s in ${SYSTEMS//,/ }; do
  case "$s" in
    timberline|duckdb-parquet|duckdb-native|chdb|postgres|ripgrep) ;;
    *) echo "$0: unknown system '$s' (use timberline, duckdb-parquet, duckdb-native, chdb, postgres, ripgrep)" >&2; exit 2 ;;
  esac
done
[[ "$TL_INDEX" == true || "$TL_INDEX" == false ]] || { echo "$0: --tl-index takes true or false" >&2; exit 2; }
[[ "$ROWS" =~ ^[1-9][0-9]*$ && "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --rows and --reps take a positive number" >&2; exit 2; }
has() { [[ ",$SYSTEMS," == *",$1"* ]]; }
log() { echo "bench: $*" >&2; }

# Peers, installed if missing.
apt_install() { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
python3 -c 'import psycopg2' 2>/dev/null || pip install -q psycopg2-binary
if has duckdb || has postgres; then python3 -c 'import duckdb, pytz' 2>/dev/null || pip install -q duckdb pytz; fi
if has chdb; then python3 -c 'import chdb' 2>/dev/null || pip install -q chdb; fi
if [ -z "$SMOKE" ]; then python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib; fi
PGBIN=/usr/lib/postgresql/15/bin
if has postgres; then [ -x "$PGBIN/postgres" ] || apt_install postgresql postgresql-contrib; fi
if has ripgrep; then command -v rg >/dev/null || apt_install ripgrep; fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin="${TIMBERLINE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --bin timberline >/dev/null
  bin="$CARGO_TARGET_DIR/release/timberline"
fi

work=$(mktemp -d -p "${BENCH_DIR:-${TMPDIR:-/tmp}}")
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pid=
pgdata=
cleanup() {
  set +e
  [ -n "$pid" ] && { kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  [ -n "$pgdata" ] && as_pg "$PGBIN/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

log "generating $ROWS rows…"
t0=$(now)
"$bin" generate --rows "$ROWS" --seed "$SEED" --out "$work/logs.ndjson"
gen_s=$(since "$t0")

# No background maintenance: the passes below run before any peer reads the segments, and a
# later compaction would have a peer's load read compacted files beside their sources.
"$bin" serve --data-dir "$work/tl" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 --index "$TL_INDEX" \
  --maintenance-interval 0 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 300); do
  grep -q '^timberline ready' "$work/out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
line=$(grep '^timberline ready' "$work/out")
http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
tl_port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')
log "ingesting into Timberline over HTTP…"
ingest=$("$bin" ingest --quiet --format ndjson --server "http://$http" "$work/logs.ndjson")
echo "$ingest" >&2
tl_rate=$(echo "$ingest" | sed -E 's/.* ([0-9]+) lines\/s.*/\1/')
curl -sS --fail-with-body -XPOST -H "Authorization: Bearer ${TIMBERLINE_API_KEY:-timberline}" "http://$http/v1/flush" >"$work/flush.json" || { cat "$work/flush.json" "$work/err" >&2; exit 1; }
# The generated rows are hours old, so they are compacted now, before the peers load the Parquet
# files and queries are timed: passes until one compacts nothing (a pass merges a bounded number
# of segments) leave the segments as they will stay, with no compacted file beside its sources.
for _ in $(seq 1 50); do
  curl -sS --fail-with-body -XPOST -H "Authorization: Bearer ${TIMBERLINE_API_KEY:-timberline}" "http://$http/v1/maintenance" >"$work/maintenance.json" || { cat "$work/maintenance.json" "$work/err" >&2; exit 1; }
  log "maintenance: $(cat "$work/maintenance.json")"
  grep -q '"compacted_segments":0,' "$work/maintenance.json" && break
done
sync

pg_load=
pg_port=
if has postgres; then
  log "loading PostgreSQL…"
  pgdata="$work/pg"
  mkdir -p "$pgdata" && chmod 700 "$pgdata"
  [ "$(id -u)" = 0 ] && chown postgres "$pgdata"
  pg_port=55433
  as_pg "$PGBIN/initdb" -D "$pgdata" -U postgres --auth=trust >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -o "-p $pg_port -k $pgdata -c listen_addresses=127.0.0.1 \
    -c shared_buffers=2GB -c maintenance_work_mem=1GB -c max_wal_size=8GB -c max_parallel_workers_per_gather=2" start >/dev/null
  pq() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres "$@"; }
  t0=$(now)
  pq -c "CREATE EXTENSION pg_trgm" \
     -c "CREATE UNLOGGED TABLE logs (ts timestamptz, service text, host text, level text, msg text, trace_id text, attrs text)"
  mkfifo "$work/rows.csv"
  python3 - "$work" <<'PY' &
import duckdb, sys
w = sys.argv[1]
duckdb.sql(f"""COPY (SELECT ts, service, host, level, msg, trace_id, attrs
               FROM read_parquet('{w}/tl/segments/**/*.parquet'))
               TO '{w}/rows.csv' (FORMAT csv, HEADER false)""")
PY
  exporter=$!
  pq -c "\\copy logs FROM '$work/rows.csv' WITH (FORMAT csv)"
  wait "$exporter"
  pq -c "CREATE INDEX ON logs (ts)" -c "CREATE INDEX ON logs (trace_id)" \
     -c "CREATE INDEX ON logs USING gin (msg gin_trgm_ops)" -c "VACUUM ANALYZE logs"
  pg_s=$(since "$t0")
  pg_load="$pg_s"
fi

log "running the workload…"
meta=$(printf '{"seed": %s, "date": "%s", "generate_s": %s, "tl_rate": %s, "pg_load_s": %s, "tl_index": %s}' \
  "$SEED" "$(date -u +%Y-%m-%dT%H:%MZ)" "$gen_s" "$tl_rate" "${pg_load:-null}" "$TL_INDEX")
python3 benches/driver/main.py --work "$work" --systems "$SYSTEMS" --tl-port "$tl_port" \
  ${pg_port:+--pg-port "$pg_port"} --reps "$REPS" $COLD --meta "$meta" --out "$work/result.json"
if [ -n "$SMOKE" ]; then
  python3 benches/driver/report.py "$work/result.json" --command "$command"
  # The smoke fails if any query failed or returned nothing where rows exist.
  python3 - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["systems"]["timberline"]["results"]
bad = [k for k, v in r.items() if v is None or "error" in v or v["answer"] in ("0 rows", "0")]
if bad:
    sys.exit(f"bench smoke: failed or empty: {bad}: {[r[k] for k in bad]}")
print("bench smoke: every query answered")
PY
else
  python3 benches/driver/report.py "$work/result.json" --command "$command" --png benches/ratios.png \
    --previous benches/last-run.json | tee -a benches/RESULTS.md
  cp "$work/result.json" "benches/last-run.json"
fi
