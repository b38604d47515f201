#!/usr/bin/env bash
# psql against a real server: \dt, the README's queries, an error with its SQLSTATE.
set -euo pipefail
# The demo password of the user timberline (libpq and psycopg read PGPASSWORD).
export PGPASSWORD="${TIMBERLINE_PASSWORD:-timberline}"
bin="$1"
work=$(mktemp -d)
trap 'kill -9 "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" serve --data-dir "$work/data" --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 >"$work/out" 2>"$work/err" &
pid=$!
# The server prints its ready line only after WAL replay, once both ports are bound.
for _ in $(seq 1 300); do
  grep -q '^timberline ready' "$work/out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/err"; exit 1; }
  sleep 0.1
done
line=$(grep '^timberline ready' "$work/out")
http=$(echo "$line" | sed -E 's/.*http=([^ ]+).*/\1/')
pg_port=$(echo "$line" | sed -E 's/.*pg=[^:]+:([0-9]+).*/\1/')
"$bin" ingest --quiet --server "http://$http" --format ndjson sql/fixtures/logs.ndjson
psql_() { psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U timberline "$@"; }
expect() { # expect NAME WANT GOT
  if [ "$2" != "$3" ]; then echo "psql smoke: $1: want [$2] got [$3]"; exit 1; fi
  echo "psql smoke: $1 ok"
}
expect "count" "20" "$(psql_ -tAc 'SELECT count(*) FROM logs')"
expect "levels" "ERROR|5" "$(psql_ -tAc "SELECT level, count(*) FROM logs WHERE level = 'ERROR' GROUP BY 1")"
expect "recent" "0" "$(psql_ -tAc "SELECT count(*) FROM logs WHERE ts > now() - interval '5 minutes'")"
expect "errors" "2" "$(psql_ -tAc "SELECT count(*) FROM (SELECT * FROM logs WHERE service = 'payments' AND level = 'ERROR' ORDER BY ts DESC LIMIT 20)")"
dt=$(psql_ -c '\dt')
echo "$dt"
echo "$dt" | grep -q ' logs ' || { echo "psql smoke: \\dt does not list logs"; exit 1; }
d=$(psql_ -c '\d logs')
echo "$d"
echo "$d" | grep -q 'timestamp with time zone' || { echo "psql smoke: \\d logs lacks timestamptz"; exit 1; }
if err=$(psql_ -c 'SELECT * FROM nope' 2>&1); then echo "psql smoke: error expected"; exit 1; fi
echo "$err" | grep -q 'not found' || { echo "psql smoke: unexpected error text: $err"; exit 1; }
echo "1 passed, 0 failed: psql smoke"
