-- The relations Timberline lists in schema public (information_schema.tables, pg_class), made
-- in the PostgreSQL 15 reference with the same names, columns and kinds, so that the tools'
-- table lists and column lists are comparable. measure.py --load runs this file on the
-- reference, then copies the rows of logs, segments and rollups from Timberline.
--
-- Timberline reports: logs, segments, rollups as relkind 'r' / BASE TABLE; the built-in rollup
-- view logs_per_minute as relkind 'm' (a materialized view; information_schema.tables lists it
-- as VIEW there, which PostgreSQL does not do for a materialized view). audit_log is listed to
-- the administrator only (the tools connect as the non-administrator `postgres`).
CREATE TABLE logs (ts timestamptz NOT NULL, ingest_ts timestamptz NOT NULL, tenant text NOT NULL, service text NOT NULL, host text NOT NULL, level text NOT NULL, msg text NOT NULL, trace_id text, attrs jsonb NOT NULL, parse_failed boolean NOT NULL, truncated boolean NOT NULL);
CREATE TABLE segments (segment_id bigint NOT NULL, tenant text NOT NULL, tier text NOT NULL, min_ts timestamptz NOT NULL, max_ts timestamptz NOT NULL, "rows" bigint NOT NULL, bytes bigint NOT NULL, path text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE rollups (name text NOT NULL, definition text NOT NULL, bucket_seconds bigint NOT NULL, state text NOT NULL, segments_done bigint NOT NULL, segments_total bigint NOT NULL, segments_failed bigint NOT NULL, bytes bigint NOT NULL);
CREATE MATERIALIZED VIEW logs_per_minute AS SELECT date_trunc('minute', ts) AS minute, service, host, level, count(*) AS n FROM logs GROUP BY 1, 2, 3, 4 WITH NO DATA;
