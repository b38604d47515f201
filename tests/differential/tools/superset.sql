-- Apache Superset's PostgreSQL engine spec (apache/superset superset/db_engine_specs/postgres.py) and the SQL its
-- chart and SQL Lab layers compile with SQLAlchemy (superset/models/helpers.py get_sqla_query,
-- superset/db_engine_specs/base.py): time grains (_time_grain_expressions), temporal filters
-- from convert_dttm (TO_TIMESTAMP('...', 'YYYY-MM-DD HH24:MI:SS.US')), epoch_to_dttm, the
-- series-limit subquery, select_star previews, the catalog list and estimate_statement_cost's
-- EXPLAIN. Dataset metadata goes through SQLAlchemy's Inspector (sqlalchemy.sql). The time range
-- of the charts is 2024-01-15 09:00 .. 12:00 UTC. Left out: SELECT pg_backend_pid() (query
-- cancel), set search_path (SQL Lab prequery).

-- source: superset superset/db_engine_specs/postgres.py PostgresEngineSpec.get_catalog_names
SELECT datname FROM pg_database
WHERE datistemplate = false;

-- source: superset superset/db_engine_specs/base.py BaseEngineSpec test connection (SELECT 1)
SELECT 1;

-- source: superset superset/db_engine_specs/base.py BaseEngineSpec.select_star (dataset preview, limit 100; of segments, whose 2 rows fit the limit)
SELECT
  segment_id,
  tenant,
  tier,
  min_ts,
  max_ts,
  rows,
  bytes,
  path,
  created_at
FROM public.segments
LIMIT 100;

-- source: superset superset/db_engine_specs/base.py BaseEngineSpec.select_star (SQL Lab table preview, SELECT *, SQL Lab's display limit 1000)
SELECT
  *
FROM public.logs_per_minute
LIMIT 1000;

-- source: superset superset/db_engine_specs/postgres.py PostgresEngineSpec.estimate_statement_cost (EXPLAIN of a chart query; Superset reads cost=a..b)
EXPLAIN SELECT service, count(*) FROM public.logs GROUP BY service;

-- source: superset superset/db_engine_specs/postgres.py PostgresEngineSpec.estimate_statement_cost (EXPLAIN of a filtered query)
EXPLAIN SELECT ts, msg FROM public.logs WHERE level = 'ERROR' ORDER BY ts DESC LIMIT 10;

-- source: superset superset/db_engine_specs/postgres.py _time_grain_expressions PT1M + convert_dttm (time series line chart)
SELECT DATE_TRUNC('minute', ts) AS ts,
       count(*) AS count
FROM public.logs
WHERE ts >= TO_TIMESTAMP('2024-01-15 09:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
  AND ts < TO_TIMESTAMP('2024-01-15 12:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
GROUP BY DATE_TRUNC('minute', ts)
ORDER BY count DESC
LIMIT 10000;

-- source: superset superset/db_engine_specs/postgres.py _time_grain_expressions PT1H (bar chart by level)
SELECT DATE_TRUNC('hour', ts) AS ts,
       level AS level,
       count(*) AS count
FROM public.logs
WHERE ts >= TO_TIMESTAMP('2024-01-15 09:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
  AND ts < TO_TIMESTAMP('2024-01-15 12:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
GROUP BY DATE_TRUNC('hour', ts),
         level
ORDER BY count DESC
LIMIT 10000;

-- source: superset superset/db_engine_specs/postgres.py _time_grain_expressions P1D
SELECT DATE_TRUNC('day', ts) AS ts,
       count(*) AS count
FROM public.logs
GROUP BY DATE_TRUNC('day', ts)
ORDER BY count DESC
LIMIT 10000;

-- source: superset superset/db_engine_specs/postgres.py _time_grain_expressions P1W
SELECT DATE_TRUNC('week', ts) AS ts,
       count(*) AS count
FROM public.logs
GROUP BY DATE_TRUNC('week', ts)
LIMIT 10000;

-- source: superset superset/db_engine_specs/postgres.py _time_grain_expressions P1M / P3M / P1Y
SELECT DATE_TRUNC('month', ts) AS month, DATE_TRUNC('quarter', ts) AS quarter, DATE_TRUNC('year', ts) AS year,
       count(*) AS count
FROM public.logs
GROUP BY DATE_TRUNC('month', ts), DATE_TRUNC('quarter', ts), DATE_TRUNC('year', ts)
LIMIT 10000;

-- source: superset superset/db_engine_specs/postgres.py _time_grain_expressions PT1S (table chart, raw records mode)
SELECT DATE_TRUNC('second', ts) AS ts,
       service AS service,
       msg AS msg
FROM public.logs
WHERE ts >= TO_TIMESTAMP('2024-01-15 10:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
  AND ts < TO_TIMESTAMP('2024-01-15 10:10:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
ORDER BY ts DESC
LIMIT 1000;

-- source: superset superset/db_engine_specs/postgres.py PostgresBaseEngineSpec.convert_dttm (Date target: TO_DATE)
SELECT count(*) AS count
FROM public.logs
WHERE CAST(ts AS DATE) >= TO_DATE('2024-01-15', 'YYYY-MM-DD')
LIMIT 50000;

-- source: superset superset/db_engine_specs/postgres.py PostgresBaseEngineSpec.epoch_to_dttm (epoch seconds column as a temporal column)
SELECT DATE_TRUNC('minute', (timestamp 'epoch' + floor(extract(epoch from ts)) * interval '1 second')) AS epoch_minute,
       count(*) AS count
FROM public.logs
GROUP BY DATE_TRUNC('minute', (timestamp 'epoch' + floor(extract(epoch from ts)) * interval '1 second'))
ORDER BY epoch_minute
LIMIT 5;

-- source: superset superset/models/helpers.py get_sqla_query (pie chart: one dimension, row limit 100; ", level" added as a tie-breaker, three levels have equal counts)
SELECT level AS level,
       count(*) AS count
FROM public.logs
GROUP BY level
ORDER BY count DESC, level
LIMIT 100;

-- source: superset superset/models/helpers.py get_sqla_query (series limit: inner query for the top 2 services, joined)
SELECT DATE_TRUNC('minute', ts) AS ts,
       service AS service,
       count(*) AS count
FROM public.logs
JOIN
  (SELECT service AS service__,
          count(*) AS mme_inner__
   FROM public.logs
   WHERE ts >= TO_TIMESTAMP('2024-01-15 09:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
     AND ts < TO_TIMESTAMP('2024-01-15 12:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
   GROUP BY service
   ORDER BY mme_inner__ DESC, service
   LIMIT 2) AS series_limit ON service = series_limit.service__
WHERE ts >= TO_TIMESTAMP('2024-01-15 09:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
  AND ts < TO_TIMESTAMP('2024-01-15 10:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
GROUP BY DATE_TRUNC('minute', ts),
         service
LIMIT 10000;

-- source: superset superset/models/helpers.py get_sqla_query (adhoc SQL metric with a quoted label, adhoc filter)
SELECT service AS service,
       AVG((attrs->>'latency_ms')::float) AS "AVG(latency_ms)",
       MAX((attrs->>'latency_ms')::int) AS "MAX(latency_ms)"
FROM public.logs
WHERE level IN ('ERROR', 'WARN')
  AND (attrs->>'region' = 'eu-west-1')
GROUP BY service
ORDER BY "AVG(latency_ms)" DESC
LIMIT 10000;

-- source: superset superset/models/helpers.py get_sqla_query (big number: COUNT_DISTINCT, time range)
SELECT COUNT(DISTINCT trace_id) AS "COUNT_DISTINCT(trace_id)"
FROM public.logs
WHERE ts >= TO_TIMESTAMP('2024-01-15 09:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')
  AND ts < TO_TIMESTAMP('2024-01-15 12:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US');

-- source: superset superset/models/helpers.py get_sqla_query (box plot / percentile metric)
SELECT service AS service,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY (attrs->>'latency_ms')::float) AS p95
FROM public.logs
GROUP BY service
ORDER BY service
LIMIT 10000;

-- source: superset superset/models/helpers.py get_sqla_query (filter box / native filter values: DISTINCT, row limit 1000)
SELECT DISTINCT host AS host
FROM public.logs
ORDER BY host
LIMIT 1000;

-- source: superset superset/models/helpers.py get_sqla_query (native filter: time column min/max for the time range slider)
SELECT MIN(ts) AS min_ts, MAX(ts) AS max_ts
FROM public.logs;

-- source: superset superset/models/helpers.py get_sqla_query (ILIKE adhoc filter, table chart with page size)
SELECT ts AS ts,
       host AS host,
       msg AS msg
FROM public.logs
WHERE msg ILIKE '%timeout%'
ORDER BY ts ASC
LIMIT 25
OFFSET 0;

-- source: superset superset/sql_lab.py execute_sql_statement (SQL Lab wraps a user query with the display limit)
SELECT service, count(*) AS n FROM public.logs GROUP BY service ORDER BY n DESC, service
LIMIT 1001;

-- source: superset superset/db_engine_specs/base.py BaseEngineSpec.get_limit_from_sql / apply_limit_to_sql (subquery wrap)
SELECT * FROM (SELECT ts, level FROM public.logs WHERE service = 'auth') AS inner_qry
LIMIT 1001;

-- source: superset superset/models/helpers.py get_sqla_query (virtual dataset as a subquery, count by minute)
SELECT DATE_TRUNC('minute', ts) AS ts,
       count(*) AS count
FROM
  (SELECT ts, level FROM public.logs WHERE level = 'ERROR') AS virtual_table
GROUP BY DATE_TRUNC('minute', ts)
ORDER BY ts
LIMIT 10000;

-- source: superset superset/models/helpers.py get_sqla_query (rollup view as a dataset)
SELECT DATE_TRUNC('hour', minute) AS minute,
       service AS service,
       sum(n) AS "SUM(n)"
FROM public.logs_per_minute
GROUP BY DATE_TRUNC('hour', minute),
         service
ORDER BY "SUM(n)" DESC, service
LIMIT 10000;
