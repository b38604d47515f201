-- The differential corpus: each statement goes to Timberline and to PostgreSQL 15 holding the
-- same `logs` rows (tests/it/differential.rs); names, type OIDs and text values must agree.
-- A `-- differs: <reason>` line before a statement documents why it does not (README,
-- "PostgreSQL compatibility"). Statements run in order on one connection: SETs carry over.

-- Constants, names and output formats
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT 1;
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT 1 AS one;
SELECT 'a' || 'b';
SELECT NULL;
SELECT true, false;
SELECT 1 = 1, 1 <> 1;
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT 10 / 3, 10 % 3, -7 / 2;
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT 10.0 / 4;
SELECT 2 ^ 10;
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL (sign, ceil, floor of a decimal; abs of an integer is int8)
SELECT abs(-5), sign(-3.5), ceil(1.2), floor(-1.2);
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT round(2.567, 2), round(2.5), trunc(2.567, 1);
SELECT 1.5::numeric(10, 2);
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT 0.1 + 0.2;
SELECT 1e3::float8, 1.5::float4;
SELECT 3::bigint * 4::smallint;
-- differs: type: varchar(n) casts yield text
SELECT 'x'::varchar(3), 'y'::text;
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT CAST('42' AS integer) + 1;
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT greatest(1, 5, 3), least(4, 2, 8);
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT coalesce(NULL, 'fallback'), nullif(1, 1);
SELECT CASE WHEN 2 > 1 THEN 'yes' ELSE 'no' END;
SELECT 'it''s';
SELECT E'tab\there';
SELECT length('héllo'), octet_length('héllo'), char_length('abc');

-- Strings and patterns
SELECT upper('abc'), lower('ÀBC'), initcap('hello world');
SELECT substr('timberline', 3, 4), substring('timberline' from 6);
SELECT position('ber' in 'timberline'), strpos('timberline', 'line');
SELECT left('timberline', 3), right('timberline', 4);
SELECT split_part('a,b,c', ',', 2);
SELECT replace('a-b-c', '-', '+'), translate('abc', 'ab', 'xy');
SELECT trim('  x  '), ltrim('xxy', 'x'), rtrim('yxx', 'x'), btrim('xyx', 'x');
SELECT lpad('7', 3, '0'), rpad('ab', 4, '.');
SELECT concat('a', NULL, 'b'), concat_ws('/', 'a', NULL, 'b');
SELECT repeat('ab', 3), reverse('abc');
SELECT starts_with('timberline', 'tim');
SELECT md5('timberline');
SELECT 'abc' LIKE 'a%', 'abc' ILIKE 'A%', 'abc' NOT LIKE '%z%';
SELECT 'abc' ~ '^a', 'ABC' ~* 'b', 'abc' !~ 'z';
SELECT 'abc' SIMILAR TO 'a(b|c)c';
SELECT regexp_replace('card 1234 declined', '[0-9]+', 'N');
SELECT regexp_replace('a1b2c3', '[0-9]', '', 'g');
SELECT regexp_match('user:42', '([a-z]+):([0-9]+)');
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT regexp_count('a1b2c3', '[0-9]');
SELECT regexp_like('timeout', 'time');
SELECT to_hex(255), ascii('A'), chr(66);
SELECT quote_ident('Logs'), quote_literal('it''s');
SELECT format('%s-%s', 'a', 1);
SELECT string_agg(x, ',' ORDER BY x) FROM (VALUES ('b'), ('a'), ('c')) AS t(x);

-- The logs table: counts and groups
SELECT count(*) FROM logs;
SELECT count(*) AS n FROM logs;
SELECT service, count(*) FROM logs GROUP BY service ORDER BY service;
SELECT level, count(*) AS n FROM logs GROUP BY level ORDER BY n DESC, level;
SELECT service, level, count(*) FROM logs GROUP BY service, level ORDER BY 1, 2;
SELECT host, count(*) FROM logs WHERE service = 'payments' GROUP BY host ORDER BY host;
SELECT count(*) FILTER (WHERE level = 'ERROR') FROM logs;
SELECT service, count(*) FILTER (WHERE level = 'ERROR') AS errors, count(*) AS total FROM logs GROUP BY service ORDER BY service;
SELECT count(DISTINCT host), count(DISTINCT service) FROM logs;
SELECT count(trace_id), count(*) - count(trace_id) FROM logs;
SELECT DISTINCT service FROM logs ORDER BY service;
SELECT DISTINCT level FROM logs ORDER BY level DESC;
SELECT DISTINCT ON (service) service, ts, msg FROM logs ORDER BY service, ts DESC;
SELECT DISTINCT ON (level) level, msg FROM logs ORDER BY level, ts;
SELECT service FROM logs GROUP BY service HAVING count(*) > 39 ORDER BY 1;
SELECT msg, count(*) FROM logs GROUP BY msg ORDER BY count(*) DESC, msg LIMIT 3;
SELECT service, min(ts), max(ts) FROM logs GROUP BY service ORDER BY service;
SELECT min(ts), max(ts) FROM logs;
SELECT max(ts) - min(ts) FROM logs;
SELECT count(*) FROM logs WHERE level IN ('ERROR', 'WARN');
SELECT count(*) FROM logs WHERE level NOT IN ('INFO');
SELECT count(*) FROM logs WHERE service = 'api' AND level = 'ERROR' OR service = 'auth';
SELECT count(*) FROM logs WHERE msg LIKE '%timeout%';
SELECT count(*) FROM logs WHERE msg ILIKE '%TIMEOUT%';
SELECT count(*) FROM logs WHERE msg ~ 'time(out)?';
SELECT count(*) FROM logs WHERE msg ~* '^ORDER';
SELECT count(*) FROM logs WHERE msg SIMILAR TO '%(declined|timeout)%';
SELECT count(*) FROM logs WHERE msg NOT SIMILAR TO '%(declined|timeout)%';
SELECT count(*) FROM logs WHERE msg SIMILAR TO 'cache miss_for key%';
SELECT count(*) FROM logs WHERE host SIMILAR TO '(api|auth)-[0-9]';
SELECT msg FROM logs WHERE msg LIKE 'card%' ORDER BY ts LIMIT 2;
SELECT ts, service, msg FROM logs ORDER BY ts LIMIT 5;
SELECT ts, service, msg FROM logs ORDER BY ts DESC LIMIT 5;
SELECT ts, msg FROM logs ORDER BY ts LIMIT 3 OFFSET 10;
SELECT service, host, level, msg FROM logs WHERE trace_id = '4bf92f36' ORDER BY ts;
SELECT trace_id FROM logs WHERE trace_id IS NOT NULL ORDER BY trace_id LIMIT 3;
SELECT trace_id FROM logs ORDER BY trace_id NULLS FIRST, ts LIMIT 3;
SELECT trace_id FROM logs ORDER BY trace_id DESC NULLS LAST LIMIT 3;
SELECT coalesce(trace_id, '-') AS trace FROM logs ORDER BY ts LIMIT 4;
SELECT count(*) FROM logs WHERE trace_id IS NULL;
SELECT parse_failed, truncated, count(*) FROM logs GROUP BY 1, 2;
SELECT tenant, count(*) FROM logs GROUP BY tenant;
SELECT upper(service) AS s, length(msg) AS l FROM logs ORDER BY ts LIMIT 3;
SELECT split_part(host, '-', 2) AS n, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT regexp_replace(msg, '[0-9]+', 'N', 'g') AS shape, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT substr(msg, 1, 10) FROM logs ORDER BY ts LIMIT 3;
SELECT * FROM (SELECT service, count(*) AS n FROM logs GROUP BY service) s WHERE n > 39 ORDER BY service;
SELECT service FROM logs WHERE level = 'ERROR' UNION SELECT service FROM logs WHERE level = 'WARN' ORDER BY 1;
SELECT service FROM logs INTERSECT SELECT 'api' ORDER BY 1;
WITH e AS (SELECT service, count(*) AS n FROM logs WHERE level = 'ERROR' GROUP BY service) SELECT service, n FROM e ORDER BY n DESC, service;
SELECT service, (SELECT count(*) FROM logs l2 WHERE l2.service = l1.service AND l2.level = 'ERROR') AS errors FROM logs l1 GROUP BY service ORDER BY service;
SELECT count(*) FROM logs WHERE service IN (SELECT service FROM logs WHERE level = 'ERROR');
SELECT EXISTS (SELECT 1 FROM logs WHERE level = 'FATAL');

-- Window functions
SELECT service, ts, row_number() OVER (PARTITION BY service ORDER BY ts) AS rn FROM logs ORDER BY service, ts LIMIT 6;
SELECT ts, lag(ts) OVER (ORDER BY ts) AS prev FROM logs ORDER BY ts LIMIT 3;
SELECT ts, ts - lag(ts) OVER (ORDER BY ts) AS gap FROM logs ORDER BY ts LIMIT 3;
SELECT service, count(*) OVER () AS total FROM logs ORDER BY ts LIMIT 2;
SELECT level, rank() OVER (ORDER BY level) FROM logs GROUP BY level ORDER BY level;
-- differs: type: sum(bigint) is bigint here, numeric in PostgreSQL
SELECT service, n, sum(n) OVER (ORDER BY service) AS running FROM (SELECT service, count(*) AS n FROM logs GROUP BY service) s ORDER BY service;
SELECT service, dense_rank() OVER (ORDER BY count(*) DESC) FROM logs GROUP BY service ORDER BY service;
SELECT ts, first_value(msg) OVER (PARTITION BY service ORDER BY ts) FROM logs ORDER BY ts LIMIT 3;

-- JSON attributes
SELECT attrs->>'user' FROM logs ORDER BY ts LIMIT 3;
SELECT attrs->>'region', count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT attrs->'http'->>'method', count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT attrs#>>'{http,path}' AS path, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT attrs #> '{http}' ->> 'method' AS m, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM logs WHERE attrs->'http'->>'method' = 'POST';
SELECT count(*) FROM logs WHERE (attrs#>>'{latency_ms}')::int > 800;
SELECT attrs::jsonb->>'user' AS u, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT (attrs->>'latency_ms')::int AS latency FROM logs ORDER BY ts LIMIT 3;
SELECT avg((attrs->>'latency_ms')::float8) FROM logs;
SELECT max((attrs->>'latency_ms')::int), min((attrs->>'latency_ms')::int) FROM logs;
SELECT service, percentile_cont(0.5) WITHIN GROUP (ORDER BY (attrs->>'latency_ms')::float8) FROM logs GROUP BY service ORDER BY service;
SELECT count(*) FROM logs WHERE attrs->>'status' = '500';
SELECT count(*) FROM logs WHERE (attrs->>'status')::int >= 400;
SELECT count(*) FROM logs WHERE attrs @> '{"status": 500}';
SELECT count(*) FROM logs WHERE attrs @> '{"status": "500"}';
SELECT count(*) FROM logs WHERE '{"status": 500}'::jsonb <@ attrs;
SELECT count(*) FROM logs WHERE attrs ? 'retry';
SELECT count(*) FROM logs WHERE attrs->>'retry' = 'true';
SELECT jsonb_typeof(attrs->'latency_ms'), jsonb_typeof(attrs->'http') FROM logs ORDER BY ts LIMIT 1;
-- differs: jsonb_object_keys as a table function is not implemented (42P01); json_keys() is
SELECT k, count(*) FROM logs, jsonb_object_keys(attrs) AS k GROUP BY k ORDER BY k;
-- differs: jsonb_each as a table function is not implemented (42P01)
SELECT e.key, count(*) FROM logs, jsonb_each(attrs) AS e GROUP BY e.key ORDER BY e.key;
-- differs: type: attrs and JSON results are JSON text (text, OID 25) here, jsonb in PostgreSQL
SELECT attrs->'http' FROM logs ORDER BY ts LIMIT 1;
-- differs: type: attrs and JSON results are JSON text (text, OID 25) here, jsonb in PostgreSQL
SELECT attrs FROM logs ORDER BY ts LIMIT 1;
SELECT '{"a": {"b": 2}}'::jsonb->'a'->>'b';
SELECT '{"a": 1}'::jsonb ? 'a';
-- differs: type: attrs and JSON results are JSON text (text, OID 25) here, jsonb in PostgreSQL
SELECT '[1, 2, 3]'::jsonb->1;
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT jsonb_array_length('[1, 2, 3]'::jsonb);

-- Timestamps: input
SELECT count(*) FROM logs WHERE ts >= '2024-01-15 10:00:00' AND ts < '2024-01-15 11:00:00';
SELECT count(*) FROM logs WHERE ts > '2024-01-15 10:30';
SELECT count(*) FROM logs WHERE ts > '2024-01-15T10:30:00Z';
SELECT count(*) FROM logs WHERE ts > '2024-01-15 10:30:00+00';
SELECT count(*) FROM logs WHERE ts > '2024-01-15 11:30:00+01';
SELECT count(*) FROM logs WHERE ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T10:15:00Z';
SELECT count(*) FROM logs WHERE ts > timestamptz '2024-01-15 10:30:00+00';
SELECT count(*) FROM logs WHERE ts < '2024-01-16';
SELECT count(*) FROM logs WHERE ts::date = '2024-01-15';
SELECT '2024-01-15'::date;
SELECT date '2024-01-15' + 1;
SELECT '2024-01-15 10:30:45'::timestamp;
SELECT '2024-01-15 10:30:45.123456'::timestamp;
SELECT '2024-01-15T10:30:45Z'::timestamptz;
SELECT '2024-01-15 10:30:45.5+02'::timestamptz;
SELECT '2024-01-15 10:30'::timestamptz;
SELECT 'January 15, 2024'::date;
SELECT '20240115'::date;
SELECT '2024-01-15 10:30:45'::timestamp + interval '1 day';
SELECT to_timestamp(1705314645);
SELECT to_timestamp(1705314645.5);
SELECT to_date('2024-01-15', 'YYYY-MM-DD');
SELECT to_timestamp('2024-01-15 10:30', 'YYYY-MM-DD HH24:MI');

-- Timestamps: output and arithmetic
SELECT ts FROM logs ORDER BY ts LIMIT 3;
SELECT ts::text FROM logs ORDER BY ts LIMIT 1;
SELECT ts::date FROM logs ORDER BY ts LIMIT 1;
SELECT ts + interval '1 hour' FROM logs ORDER BY ts LIMIT 1;
SELECT ts - interval '90 minutes' AS earlier FROM logs ORDER BY ts LIMIT 1;
SELECT ts - interval '1 hour' FROM logs ORDER BY ts LIMIT 1;
SELECT '2024-01-15 10:00:00+00'::timestamptz + interval '1 hour';
SELECT '2024-01-15 12:00:00+00'::timestamptz - '2024-01-15 10:30:00+00'::timestamptz;
SELECT date_trunc('hour', ts) AS h, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT date_trunc('minute', ts) FROM logs ORDER BY ts LIMIT 2;
SELECT date_trunc('day', ts), count(*) FROM logs GROUP BY 1;
SELECT date_bin('15 minutes', ts, '2024-01-01 00:00:00+00') AS b, count(*) FROM logs GROUP BY 1 ORDER BY 1;
-- differs: type: extract/date_part return integer here, numeric (extract) or float8 (date_part) in PostgreSQL
SELECT extract(hour FROM ts) AS h, count(*) FROM logs GROUP BY 1 ORDER BY 1;
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT extract(epoch FROM ts) FROM logs ORDER BY ts LIMIT 1;
-- differs: type: extract/date_part return integer here, numeric (extract) or float8 (date_part) in PostgreSQL
SELECT extract(dow FROM ts), extract(doy FROM ts), extract(year FROM ts) FROM logs ORDER BY ts LIMIT 1;
-- differs: type: extract/date_part return integer here, numeric (extract) or float8 (date_part) in PostgreSQL
SELECT extract(microseconds FROM ts), extract(milliseconds FROM ts) FROM logs ORDER BY ts LIMIT 1;
-- differs: type: extract/date_part return integer here, numeric (extract) or float8 (date_part) in PostgreSQL
SELECT date_part('minute', ts) FROM logs ORDER BY ts LIMIT 1;
SELECT date_part('epoch', ts) FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'YYYY-MM-DD HH24:MI:SS') FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'YYYY-MM-DD HH24:MI') FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'HH12:MI AM') FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'Dy DD Mon YYYY') FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'Day, Month DD') FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'YYYY"-W"IW') FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'HH24:MI:SS.MS') FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'HH24:MI:SS.US') FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'DDD Q') FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(1234.5, '9999.99');
SELECT to_char(42, '000');
SELECT to_char(-1234.5, 'FM9,999.00'), to_char(0.5, '9.99'), to_char(12345, '999'), to_char(-5, 'S999'), to_char(5, '999MI');
SELECT level, to_char(count(*), 'FM999,999') FROM logs GROUP BY level ORDER BY level;
SELECT ts AT TIME ZONE 'UTC' FROM logs ORDER BY ts LIMIT 1;
SELECT ts AT TIME ZONE 'Europe/Berlin' FROM logs ORDER BY ts LIMIT 1;
SELECT ts AT TIME ZONE 'America/New_York' FROM logs ORDER BY ts LIMIT 1;
SELECT '2024-01-15 10:30:00'::timestamp AT TIME ZONE 'Europe/Berlin';

-- Intervals
SELECT interval '1 day';
SELECT interval '90 minutes';
SELECT interval '1 day' + interval '3 hours';
SELECT interval '48 hours' > interval '1 day';
SELECT interval '1 month' > interval '29 days';
SELECT interval '1 hour' * 3;
SELECT 2.5 * interval '1 hour';
SELECT interval '1 month 1 day' * 0.5;
SELECT interval '1 day' / 4;
SELECT count(*) FROM logs WHERE ts > timestamptz '2024-01-15 10:00:00+00' + interval '1 minute' * 2;
SELECT interval '2 hours 30 minutes';
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT extract(epoch FROM interval '1 hour');
SELECT max(ts) - min(ts) > interval '1 hour' FROM logs;
SELECT now() - max(ts) > interval '1 day' FROM logs;
SELECT interval '90 minutes' < interval '1 hour 31 minutes', interval '1 day' = interval '24 hours';
SELECT count(*) FROM logs WHERE ts - '2024-01-15 09:58:00+00'::timestamptz > interval '1 hour';
SELECT max(ts) - min(ts) >= interval '1 day' FROM logs;
SELECT count(*) FROM logs WHERE ts > (SELECT max(ts) FROM logs) - interval '10 minutes';

-- generate_series
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT generate_series(1, 3);
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT * FROM generate_series(1, 3);
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT x FROM generate_series(1, 5, 2) AS x;
SELECT generate_series('2024-01-15 10:00:00+00'::timestamptz, '2024-01-15 11:00:00+00'::timestamptz, interval '15 minutes');
SELECT g AS bucket, count(l.ts) FROM generate_series('2024-01-15 10:00:00+00'::timestamptz, '2024-01-15 11:00:00+00'::timestamptz, interval '30 minutes') AS g LEFT JOIN logs l ON date_bin('30 minutes', l.ts, '2024-01-01 00:00:00+00') = g GROUP BY g ORDER BY g;

-- Grafana: macro expansions of the PostgreSQL datasource and its query editor
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT floor(extract(epoch FROM ts)/300)*300 AS "time", count(*) AS "value" FROM logs WHERE ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T11:00:00Z' GROUP BY 1 ORDER BY 1;
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT floor(extract(epoch FROM ts)/60)*60 AS "time", service AS metric, count(*) AS "value" FROM logs WHERE ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T10:10:00Z' GROUP BY 1, 2 ORDER BY 1, 2;
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT extract(epoch FROM ts) AS "time", msg FROM logs WHERE ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T10:05:00Z' ORDER BY 1;
SELECT ts AS "time", level, msg FROM logs WHERE ts BETWEEN '2024-01-15T10:00:00Z' AND '2024-01-15T10:05:00Z' ORDER BY ts DESC LIMIT 5;
SELECT date_trunc('minute', ts) AS "time", count(*) FILTER (WHERE level = 'ERROR') AS errors FROM logs WHERE ts >= '2024-01-15T10:00:00Z' AND ts <= '2024-01-15T10:10:00Z' GROUP BY 1 ORDER BY 1;
SELECT DISTINCT service AS __text, service AS __value FROM logs ORDER BY 1;
SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'logs';
SELECT column_name FROM information_schema.columns WHERE table_name = 'logs' ORDER BY ordinal_position;
SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'logs' AND column_name IN ('ts', 'msg', 'service') ORDER BY ordinal_position;
-- differs: value: the database is always `timberline` here, whatever name the client connected with
SELECT current_database();
SELECT current_schema();
SELECT current_setting('TimeZone');

-- BI tools: Metabase, Superset, DBeaver shapes
SELECT "public"."logs"."service" AS "service", count(*) AS "count" FROM "public"."logs" GROUP BY "public"."logs"."service" ORDER BY "public"."logs"."service" ASC;
SELECT "source"."level" AS "level", count(*) AS "count" FROM (SELECT "public"."logs"."level" AS "level" FROM "public"."logs") AS "source" GROUP BY "source"."level" ORDER BY "source"."level" ASC;
SELECT service AS service, COUNT(*) AS count FROM public.logs GROUP BY service ORDER BY count DESC, service LIMIT 10000;
SELECT DATE_TRUNC('hour', ts) AS ts, COUNT(*) AS count FROM public.logs GROUP BY DATE_TRUNC('hour', ts) ORDER BY count DESC LIMIT 10000;
SELECT l.service, l.msg FROM public.logs l WHERE l.level = 'ERROR' ORDER BY l.ts LIMIT 3;
SELECT count(*) AS "count" FROM "public"."logs" WHERE "public"."logs"."level" = 'ERROR';

-- Session time zone on input and output
SET TIME ZONE 'Europe/Berlin';
SHOW TimeZone;
SELECT ts FROM logs ORDER BY ts LIMIT 1;
SELECT count(*) FROM logs WHERE ts >= '2024-01-15 11:40:00';
SELECT '2024-01-15 10:30:00'::timestamptz;
SELECT date_trunc('hour', ts) FROM logs ORDER BY ts LIMIT 1;
-- differs: type: extract/date_part return integer here, numeric (extract) or float8 (date_part) in PostgreSQL
SELECT extract(hour FROM ts) FROM logs ORDER BY ts LIMIT 1;
SELECT to_char(ts, 'YYYY-MM-DD HH24:MI') FROM logs ORDER BY ts LIMIT 1;
SELECT ts::text FROM logs ORDER BY ts LIMIT 1;
SELECT count(*) FROM logs WHERE ts::text LIKE '2024-01-15 11:%';
SELECT ts AT TIME ZONE 'UTC' AS utc_wall FROM logs ORDER BY ts LIMIT 1;
SELECT '2024-01-15 10:30:00'::timestamp AT TIME ZONE 'UTC';
SELECT to_char(ts, 'FMDay DD FMMonth YYYY HH24:MI OF') FROM logs ORDER BY ts LIMIT 1;
SELECT date_trunc('day', ts) AS d, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM logs WHERE ts >= '2024-01-15 11:00' AND ts < 'January 15, 2024 12:00';
SELECT count(*) FROM logs WHERE ts >= '2024-01-15 10:00:00Z';
SELECT count(*) FROM logs WHERE ts::date = '2024-01-15';
SELECT count(*) FROM logs WHERE date_trunc('minute', ts) = ts;
SELECT '2024-10-27 02:30'::timestamptz;
SELECT to_char(ts, 'yyyy-mm-dd hh24:mi') FROM logs ORDER BY ts LIMIT 1;
SET TIME ZONE 'UTC';
SELECT ts FROM logs ORDER BY ts LIMIT 1;
SET TimeZone = 'America/New_York';
SELECT count(*) FROM logs WHERE ts < '2024-01-15 05:00:00';
RESET TimeZone;
SHOW TimeZone;

-- Catalog helpers psql's `+` commands and analysis SQL call
SELECT pg_size_pretty(10239::bigint), pg_size_pretty(10240::bigint), pg_size_pretty(1234567::bigint), pg_size_pretty(123456789::bigint), pg_size_pretty(20000000000::bigint);
SELECT pg_typeof(ts)::text, pg_typeof(msg)::text, pg_typeof(parse_failed)::text FROM logs LIMIT 1;
SELECT pg_typeof(count(*))::text FROM logs;
SELECT obj_description(0, 'pg_class');

-- Booleans, NULLs and casts
SELECT NULL::int IS NULL, 1 IS DISTINCT FROM NULL;
SELECT true AND NULL, false OR NULL;
SELECT NOT true;
SELECT 'yes'::boolean, 'off'::boolean;
SELECT 1::boolean;
-- differs: numeric without a scale is numeric(38,10) here, so '3.14'::numeric prints 3.1400000000
SELECT '42'::int, '3.14'::numeric, '1e-3'::float8;
SELECT 7::text || 'x';
SELECT 'abc'::bytea;
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL (int8[] vs int4[])
SELECT array[1, 2, 3];
SELECT (array['a', 'b'])[1];
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT 1 WHERE NULL;
SELECT count(*) FROM logs WHERE trace_id = NULL;
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT sum(x), avg(x), count(x) FROM (VALUES (1), (2), (NULL::int)) AS t(x);
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT avg(x) FROM (VALUES (1), (2)) AS t(x);
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT sum(x) FROM (VALUES (1.5), (2.25)) AS t(x);
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL (variance)
SELECT stddev(x)::numeric(10, 4), variance(x) FROM (VALUES (1), (2), (4)) AS t(x);
SELECT bool_and(x), bool_or(x) FROM (VALUES (true), (false)) AS t(x);

-- Errors: both refuse, with the same class of SQLSTATE
SELECT * FROM no_such_table;
SELECT no_such_column FROM logs;
SELECT 1/0;
SELECT 'abc'::int;
SELECT FROM WHERE;
SELECT ts FROM logs WHERE ts > 'not a time';

-- Hand-written analysis SQL over logs
WITH errs AS (SELECT service, count(*) AS n FROM logs WHERE level = 'ERROR' GROUP BY service) SELECT service, n FROM errs WHERE n > 5 ORDER BY n DESC, service;
SELECT service, count(DISTINCT host) AS hosts, count(DISTINCT attrs->>'user') AS users FROM logs GROUP BY service ORDER BY service;
SELECT service FROM logs GROUP BY service HAVING count(*) FILTER (WHERE level = 'ERROR') > 3 ORDER BY service;
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT level, count(*) * 100.0 / sum(count(*)) OVER () AS pct FROM logs GROUP BY level ORDER BY level;
SELECT service, round(avg((attrs->>'latency_ms')::numeric), 2) AS avg_ms FROM logs GROUP BY service ORDER BY service;
SELECT service, percentile_disc(0.9) WITHIN GROUP (ORDER BY (attrs->>'latency_ms')::int) AS p90 FROM logs GROUP BY service ORDER BY service;
SELECT service, max(ts) - min(ts) AS span FROM logs GROUP BY service ORDER BY service;
SELECT service, lag(ts) OVER (PARTITION BY service ORDER BY ts) AS prev, ts FROM logs ORDER BY service, ts LIMIT 5;
SELECT ts, ts - lag(ts) OVER (ORDER BY ts) AS gap FROM logs ORDER BY ts LIMIT 4;
SELECT service, first_value(msg) OVER (PARTITION BY service ORDER BY ts) AS first_msg FROM logs ORDER BY service, ts LIMIT 4;
SELECT count(*) FROM logs WHERE service IN (SELECT service FROM logs WHERE level = 'ERROR' GROUP BY service HAVING count(*) > 10);
SELECT count(*) FROM logs l WHERE NOT EXISTS (SELECT 1 FROM logs e WHERE e.trace_id = l.trace_id AND e.level = 'ERROR');
SELECT a.service, b.service FROM (SELECT DISTINCT service FROM logs) a JOIN (SELECT DISTINCT service FROM logs) b ON a.service < b.service ORDER BY 1, 2;
SELECT service FROM logs WHERE level = 'ERROR' UNION SELECT service FROM logs WHERE level = 'WARN' ORDER BY 1;
SELECT level FROM logs UNION ALL SELECT 'X' ORDER BY 1 LIMIT 3;
SELECT string_agg(DISTINCT service, ', ' ORDER BY service) FROM logs;
SELECT array_agg(DISTINCT level ORDER BY level) FROM logs;
SELECT split_part(host, '-', 1) AS svc, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT substring(msg from '[0-9]+') AS num, count(*) FROM logs GROUP BY 1 ORDER BY 1 NULLS FIRST;
SELECT regexp_replace(msg, '[0-9]+', '#', 'g') AS pattern, count(*) FROM logs GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5;
SELECT coalesce(trace_id, '-') AS t, count(*) FROM logs GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3;
SELECT CASE WHEN (attrs->>'latency_ms')::int >= 500 THEN 'slow' ELSE 'fast' END AS speed, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT date_trunc('hour', ts) + interval '30 minutes' AS mid, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT ts::date AS day, count(*) FROM logs GROUP BY 1 ORDER BY 1;
-- differs: type: decimal literals and numeric results (round, ceil, avg, sum of decimals, extract(epoch)) are double precision (float8) here, numeric in PostgreSQL
SELECT extract(epoch FROM max(ts) - min(ts)) AS seconds FROM logs;
SELECT count(*) FROM logs WHERE ts BETWEEN now() - interval '10 years' AND now();
SELECT count(*) FROM logs WHERE ts > current_date - 3650;
SELECT min(ts)::timestamp, max(ts)::timestamp FROM logs;
SELECT count(*) FROM logs WHERE ts::time BETWEEN '10:00' AND '10:30';
SELECT lower(level) AS lvl, length(msg) AS len FROM logs ORDER BY ts LIMIT 3;
SELECT msg ILIKE '%TIMEOUT%' AS t, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE msg ~* 'declined|timeout') AS bad, count(*) AS total FROM logs;
-- differs: type: integer literals and integer functions are bigint (int8) here, integer (int4) in PostgreSQL
SELECT (attrs->>'status')::int / 100 AS class, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT to_char(date_trunc('hour', ts), 'HH24:MI') AS hour, count(*) FROM logs GROUP BY 1 ORDER BY 1;
SELECT ts FROM logs ORDER BY ts DESC OFFSET 5 LIMIT 2;
-- differs: type: attrs and JSON results are JSON text (text, OID 25) here, jsonb in PostgreSQL
SELECT * FROM logs ORDER BY ts LIMIT 1;

-- Cases an independent review found
SELECT interval '36 hours' BETWEEN interval '1 day' AND interval '2 days', interval '24 hours' IN (interval '1 day');
SELECT E'a\nerror' SIMILAR TO '%error%';
SELECT '1/15/24'::date;
SELECT pg_size_pretty(-10241::bigint), pg_size_pretty((-9223372036854775807 - 1)::bigint);
SELECT Level, count(*) FROM logs GROUP BY Level ORDER BY Level;
SELECT i FROM (VALUES (interval '36 hours'), (interval '1 day'), (interval '2 days 1 hour'), (interval '47 hours')) AS t(i) ORDER BY i;
SELECT service, max(ts) - min(ts) AS span FROM logs GROUP BY service ORDER BY span DESC, service;
