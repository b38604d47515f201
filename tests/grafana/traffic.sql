-- Grafana's PostgreSQL datasource traffic, as its pgx driver sends it (simple protocol, text
-- results): replayed by tests/grafana/replay.go against Timberline and PostgreSQL 15 holding the
-- same rows (tests/it/grafana.rs), after the health checks `-- ping` and `;`. A step ends at a
-- line ending with `;` and may hold several statements (one Exec). A `-- differs: <reason>`
-- line marks a documented exception (README, "PostgreSQL compatibility").

-- Version detection on save
-- differs: Timberline reports server_version 16.6 (the reference is 15), and the quotient is bigint here
SELECT current_setting('server_version_num')::int/100 as version;

-- Query editor: schema, table and column dropdowns
SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('information_schema', 'pg_catalog', 'pg_toast') AND schema_name NOT LIKE 'pg_temp_%' AND schema_name NOT LIKE 'pg_toast_temp_%' ORDER BY schema_name;
select quote_ident(table_name) as "table" from information_schema.tables
    where quote_ident(table_schema) not in ('information_schema', 'pg_catalog', '_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_internal', '_timescaledb_config', 'timescaledb_information', 'timescaledb_experimental')
      and table_type = 'BASE TABLE' and quote_ident(table_schema) IN (
      SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
      FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1), array_upper(string_to_array(current_setting('search_path'),','),1)) as i,
        string_to_array(current_setting('search_path'),',') s) AND table_name = 'logs';
-- differs: attrs is JSON text here (data_type text), jsonb in PostgreSQL; data_type is text, not varchar
SELECT quote_ident(column_name) AS "column", data_type AS "type" FROM information_schema.columns WHERE quote_ident(table_name) = 'logs' ORDER BY ordinal_position;
-- differs: attrs is JSON text here (data_type text), jsonb in PostgreSQL; identifiers are text, not name/varchar
SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'logs' ORDER BY ordinal_position;

-- Template variables: a query variable, then its values in a panel (multi-value, include All)
SELECT DISTINCT service FROM logs ORDER BY 1;
SELECT DISTINCT level AS __text, level AS __value FROM logs ORDER BY 1;
SELECT ts AS "time", service, level, msg FROM logs WHERE ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T10:30:00Z' AND service IN ('api','payments') AND level IN ('ERROR','WARN') ORDER BY ts DESC LIMIT 20;

-- Panels with macros expanded: $__timeGroupAlias, $__timeFilter, $__timeFrom/$__timeTo
-- differs: type: the time bucket is float8 here, numeric in PostgreSQL (same text)
SELECT floor(extract(epoch from ts)/300)*300 AS "time", count(*) AS "value" FROM logs WHERE ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T11:00:00Z' GROUP BY 1 ORDER BY 1;
-- differs: type: the time bucket is float8 here, numeric in PostgreSQL (same text)
SELECT floor(extract(epoch from ts)/60)*60 AS "time", service AS metric, count(*) AS "value" FROM logs WHERE ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T10:20:00Z' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT date_trunc('minute', ts) AS "time", count(*) FILTER (WHERE level = 'ERROR') AS errors, count(*) AS total FROM logs WHERE ts >= '2024-01-15T10:00:00Z' AND ts <= '2024-01-15T10:30:00Z' GROUP BY 1 ORDER BY 1;
SELECT ts AS "time", level, msg FROM logs WHERE ts >= '2024-01-15T10:00:00Z' AND ts <= '2024-01-15T11:00:00Z' AND level = 'ERROR' ORDER BY ts DESC LIMIT 10;
SELECT service, count(*) AS errors FROM logs WHERE ts BETWEEN '2024-01-15T09:00:00Z' AND '2024-01-15T12:00:00Z' AND level = 'ERROR' GROUP BY service ORDER BY errors DESC, service;
SELECT attrs->>'region' AS region, avg((attrs->>'latency_ms')::float8) AS latency FROM logs WHERE ts BETWEEN '2024-01-15T09:00:00Z' AND '2024-01-15T12:00:00Z' GROUP BY 1 ORDER BY 1;
SELECT msg, count(*) AS n FROM logs WHERE level = 'ERROR' AND ts BETWEEN '2024-01-15T09:00:00Z' AND '2024-01-15T12:00:00Z' GROUP BY msg ORDER BY n DESC, msg LIMIT 5;

-- The dashboard's time zone: panels that bucket in local time
SELECT date_trunc('hour', ts AT TIME ZONE 'Europe/Berlin') AS "time", count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT to_char(ts AT TIME ZONE 'America/New_York', 'YYYY-MM-DD HH24:MI') AS local, msg FROM logs ORDER BY ts LIMIT 3;

-- Several statements in one Exec
SET TIME ZONE 'Europe/Berlin'; SELECT ts, service FROM logs ORDER BY ts LIMIT 2;
SELECT count(*) FROM logs WHERE ts >= '2024-01-15 11:30:00'; SELECT date_trunc('hour', ts) AS h, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SET TIME ZONE 'UTC'; SET statement_timeout = '30s'; SELECT count(*) FROM logs WHERE ts > '2024-01-15T10:30:00Z';
