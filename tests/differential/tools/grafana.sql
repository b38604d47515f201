-- Grafana's PostgreSQL datasource: the SQL its query editor, variable editor, schema API and
-- macro engine send, taken from grafana/grafana (public/app/plugins/datasource/
-- grafana-postgresql-datasource/postgresMetaQuery.ts, sqlUtil.ts; pkg/tsdb/
-- grafana-postgresql-datasource/macros.go, schema.go). Macros are expanded as macros.go does for
-- the dashboard range 2024-01-15T09:00:00Z .. 2024-01-15T12:00:00Z (RFC3339Nano, UTC); bound
-- parameters of schema.go ($1, $2) are written as literals.

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts getVersion (configuration/useAutoDetectFeatures.ts)
SELECT current_setting('server_version_num')::int/100 as version;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts getTimescaleDBVersion
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb';

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts showSchemas
SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts showTables (no schema: search_path constraint)
SELECT
    CASE WHEN
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts showTables (schema public)
SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'public'
      ORDER BY 1;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts getSchema (table logs)
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('logs'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('logs'))[1]
          AND quote_ident(table_name) = (parse_ident('logs'))[2]
        ELSE quote_ident(table_name) = 'logs'
          AND
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts getSchema (table public.logs)
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('public.logs'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('public.logs'))[1]
          AND quote_ident(table_name) = (parse_ident('public.logs'))[2]
        ELSE quote_ident(table_name) = 'public.logs'
          AND
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/schema.go querySchemas
SELECT schema_name FROM information_schema.schemata
		 WHERE schema_name NOT LIKE 'pg_%' AND schema_name != 'information_schema'
		 ORDER BY schema_name;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/schema.go queryTables
SELECT table_name FROM information_schema.tables
		 WHERE table_schema = 'public' AND table_type IN ('BASE TABLE', 'VIEW')
		 ORDER BY table_name;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/schema.go queryColumns
SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale
		 FROM information_schema.columns
		 WHERE table_schema = 'public' AND table_name = 'logs'
		 ORDER BY ordinal_position;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/schema.go queryColumns (rollup view)
SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale
		 FROM information_schema.columns
		 WHERE table_schema = 'public' AND table_name = 'logs_per_minute'
		 ORDER BY ordinal_position;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/schema.go ColumnValues (columns service, level)
SELECT 'service' AS col_name, "service"::text AS val FROM (SELECT DISTINCT "service" FROM "public"."logs" WHERE "service" IS NOT NULL ORDER BY "service" LIMIT 100) sub_0 UNION ALL SELECT 'level' AS col_name, "level"::text AS val FROM (SELECT DISTINCT "level" FROM "public"."logs" WHERE "level" IS NOT NULL ORDER BY "level" LIMIT 100) sub_1;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/schema.go ColumnValues (column host)
SELECT 'host' AS col_name, "host"::text AS val FROM (SELECT DISTINCT "host" FROM "public"."logs" WHERE "host" IS NOT NULL ORDER BY "host" LIMIT 100) sub_0;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/sqlUtil.ts toRawSql (builder: columns, group by, order by, limit)
SELECT service, COUNT(msg) FROM logs GROUP BY service ORDER BY service ASC LIMIT 50 ;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/sqlUtil.ts toRawSql (builder: where, limit)
SELECT ts, level, msg FROM logs WHERE level = 'ERROR' LIMIT 50 ;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/sqlUtil.ts toRawSql (builder: aggregation, order desc)
SELECT host, MAX(ts) FROM public.logs GROUP BY host ORDER BY host DESC LIMIT 50 ;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go $__time + $__timeFilter
SELECT
  ts AS "time",
  msg
FROM logs
WHERE
  ts BETWEEN '2024-01-15T09:00:00Z' AND '2024-01-15T12:00:00Z'
ORDER BY 1;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go $__timeGroupAlias(ts,5m)
SELECT
  floor(extract(epoch from ts)/300)*300 AS "time",
  count(*) AS "value"
FROM logs
WHERE
  ts BETWEEN '2024-01-15T09:00:00Z' AND '2024-01-15T12:00:00Z'
GROUP BY 1
ORDER BY 1;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go $__timeGroup(ts,1h) followed by ',' (becomes __timeGroupAlias)
SELECT
  floor(extract(epoch from ts)/3600)*3600 AS "time", level AS metric,
  count(*) AS "value"
FROM logs
WHERE
  ts BETWEEN '2024-01-15T09:00:00Z' AND '2024-01-15T12:00:00Z'
GROUP BY 1, 2
ORDER BY 1, 2;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go $__timeGroup(ts,'10m') in GROUP BY
SELECT
  floor(extract(epoch from ts)/600)*600 AS time,
  service AS metric,
  count(*) FILTER (WHERE level = 'ERROR') AS errors
FROM logs
WHERE
  ts BETWEEN '2024-01-15T09:00:00Z' AND '2024-01-15T12:00:00Z'
GROUP BY floor(extract(epoch from ts)/600)*600, service
ORDER BY 1, 2;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go $__timeEpoch(ts)
SELECT
  extract(epoch from ts) as "time",
  (attrs->>'latency_ms')::float8 AS latency
FROM logs
WHERE
  ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T10:10:00Z'
ORDER BY 1;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go $__timeFrom() / $__timeTo()
SELECT count(*) AS "value" FROM logs WHERE ts >= '2024-01-15T09:00:00Z' AND ts < '2024-01-15T12:00:00Z';

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go $__unixEpochFilter(extract(epoch from ts))
SELECT count(*) FROM logs WHERE extract(epoch from ts) >= 1705309200 AND extract(epoch from ts) <= 1705320000;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go $__unixEpochGroupAlias(extract(epoch from ts),15m)
SELECT
  floor((extract(epoch from ts))/900)*900 AS "time",
  count(*)
FROM logs
WHERE extract(epoch from ts) >= 1705309200 AND extract(epoch from ts) <= 1705320000
GROUP BY 1
ORDER BY 1;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go $__timeGroupAlias(ts,1m) over a table panel with a string metric
SELECT
  floor(extract(epoch from ts)/60)*60 AS "time",
  host AS metric,
  count(*) AS "value"
FROM logs
WHERE
  ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T10:15:00Z'
  AND service IN ('api','payments')
GROUP BY 1, 2
ORDER BY 1, 2;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/VariableQueryEditor.tsx query variable (__text / __value)
SELECT DISTINCT host AS __text, host AS __value FROM logs WHERE service = 'api' ORDER BY 1;

-- source: grafana public/app/plugins/datasource/grafana-postgresql-datasource/CheatSheet.tsx time series example (metric column, $__timeFilter)
SELECT
  ts AS "time",
  service AS metric,
  (attrs->>'latency_ms')::int AS value
FROM logs
WHERE ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T10:05:00Z'
ORDER BY 1, 2;

-- source: grafana pkg/tsdb/grafana-postgresql-datasource/macros.go annotation query ($__timeFilter, time/text/tags columns)
SELECT
  ts AS "time",
  msg AS text,
  service || ',' || level AS tags
FROM logs
WHERE ts BETWEEN '2024-01-15T09:00:00Z' AND '2024-01-15T12:00:00Z' AND level = 'ERROR'
ORDER BY 1;
