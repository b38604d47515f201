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
-- Timberline's own functions, as they stand in its pg_proc and pg_description (psql's \df,
-- pgjdbc's getFunctions); here with SQL bodies that are never called.
CREATE FUNCTION nearest(ts timestamptz, target timestamptz, k bigint DEFAULT 1) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT true';
CREATE FUNCTION ts_distance(ts timestamptz, target timestamptz) RETURNS interval LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT ts - target';
CREATE FUNCTION match(document text, query text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT true';
CREATE FUNCTION log_context(ts timestamptz, host text, service text, before bigint DEFAULT 50, after bigint DEFAULT 50) RETURNS TABLE(ts timestamptz, ingest_ts timestamptz, tenant text, service text, host text, level text, msg text, trace_id text, attrs text, parse_failed boolean, truncated boolean) LANGUAGE sql STABLE PARALLEL SAFE AS 'SELECT l.ts, l.ingest_ts, l.tenant, l.service, l.host, l.level, l.msg, l.trace_id, l.attrs::text, l.parse_failed, l.truncated FROM logs l WHERE false';
COMMENT ON FUNCTION nearest IS 'keeps the k rows of logs whose ts is closest to target, among the rows meeting the other conditions, closest first';
COMMENT ON FUNCTION ts_distance IS 'how far ts is from target, as an interval';
COMMENT ON FUNCTION match IS 'full-text search: whether the text''s tokens satisfy the query (terms, "phrases", prefix*, field:value, AND, OR, NOT, -term)';
COMMENT ON FUNCTION log_context IS 'the rows of a host (and service) at ts, with the before rows just before it and the after rows just after it, in time order';
