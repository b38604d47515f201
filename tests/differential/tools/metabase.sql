-- Metabase's PostgreSQL driver: the SQL of its sync (describe-database, describe-fields,
-- describe-fks, describe-indexes, table privileges, field values, fingerprint samples) and of
-- its query processor (MBQL compiled by sql.qp with the :postgres methods), from
-- metabase/metabase src/metabase/driver/postgres.clj (and the sql-jdbc / sql.qp namespaces it
-- builds on). HoneySQL forms are written out as HoneySQL 2 formats them with the :ansi dialect
-- (quoted identifiers, upper-case function names); bound parameters as literals. The JDBC
-- DatabaseMetaData calls Metabase also makes (getSchemas, getTables) are in pgjdbc.sql.

-- source: metabase src/metabase/driver/postgres.clj driver/db-default-timezone
show timezone;

-- source: metabase src/metabase/driver/postgres.clj enum-types (describe-fields-pre-process-xf, dynamic-database-types-lookup)
SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e);

-- source: metabase src/metabase/driver/postgres.clj get-tables-sql (describe-database, schemas ('public'))
SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type", "d"."description" AS "description", "stat"."n_live_tup" AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = 0) AND ("d"."classoid" = 'pg_class'::regclass) LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ '^pg_') AND ("n"."nspname" <> 'information_schema') AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ('public')) ORDER BY "type" ASC, "schema" ASC, "name" ASC;

-- source: metabase src/metabase/driver/postgres.clj get-tables-sql (one table: schemas ('public'), table-names ('logs'))
SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type", "d"."description" AS "description" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = 0) AND ("d"."classoid" = 'pg_class'::regclass) LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ '^pg_') AND ("n"."nspname" <> 'information_schema') AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ('public')) AND ("c"."relname" IN ('logs')) ORDER BY "type" ASC, "schema" ASC, "name" ASC;

-- source: metabase src/metabase/driver/postgres.clj sql-jdbc.sync/current-user-table-privileges
with table_privileges as (
 select
   NULL as role,
   t.schemaname as schema,
   t.objectname as table,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'update') as update,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'select') as select,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'insert') as insert,
   pg_catalog.has_table_privilege(     current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'delete') as delete
 from (
   select schemaname, tablename as objectname from pg_catalog.pg_tables
   union
   select schemaname, viewname as objectname from pg_catalog.pg_views
   union
   select schemaname, matviewname as objectname from pg_catalog.pg_matviews
 ) t
 where t.schemaname !~ '^pg_'
   and t.schemaname <> 'information_schema'
   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')
)
select t.*
from table_privileges t;

-- source: metabase src/metabase/driver/sql_jdbc/sync/describe_database.clj have-select-privilege? (sql-jdbc default, tables not in the privileges list)
SELECT TRUE AS "_" FROM "public"."logs" WHERE 1 <> 1 LIMIT 0;

-- source: metabase src/metabase/driver/postgres.clj sql-jdbc.sync/describe-fields-sql (schema-names ('public'), table-names ('logs'))
SELECT "c"."column_name" AS "name", CASE WHEN "c"."udt_schema" IN ('public', 'pg_catalog') THEN FORMAT('%s', "c"."udt_name") ELSE FORMAT('"%s"."%s"', "c"."udt_schema", "c"."udt_name") END AS "database-type", "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema", "c"."table_name" AS "table-name", "pk"."column_name" IS NOT NULL AS "pk?", COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST("c"."table_schema" AS TEXT), CAST("c"."table_name" AS TEXT)) AS REGCLASS) AS OID), "c"."ordinal_position") AS "field-comment", (("column_default" IS NULL) OR (LOWER("column_default") = 'null')) AND ("is_nullable" = 'NO') AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO')) AS "database-required", (("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO') AS "database-is-auto-increment" FROM "information_schema"."columns" AS "c" LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name" FROM "information_schema"."table_constraints" AS "tc" INNER JOIN "information_schema"."key_column_usage" AS "kc" ON ("tc"."constraint_name" = "kc"."constraint_name") AND ("tc"."table_schema" = "kc"."table_schema") AND ("tc"."table_name" = "kc"."table_name") WHERE "tc"."constraint_type" = 'PRIMARY KEY') AS "pk" ON ("c"."table_schema" = "pk"."table_schema") AND ("c"."table_name" = "pk"."table_name") AND ("c"."column_name" = "pk"."column_name") WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND ("c"."table_schema" IN ('public')) AND ("c"."table_name" IN ('logs')) UNION ALL SELECT "pa"."attname" AS "name", CASE WHEN "ptn"."nspname" IN ('public', 'pg_catalog') THEN FORMAT('%s', "pt"."typname") ELSE FORMAT('"%s"."%s"', "ptn"."nspname", "pt"."typname") END AS "database-type", "pa"."attnum" - 1 AS "database-position", "pn"."nspname" AS "table-schema", "pc"."relname" AS "table-name", FALSE AS "pk?", NULL AS "field-comment", FALSE AS "database-required", FALSE AS "database-is-auto-increment" FROM "pg_catalog"."pg_class" AS "pc" INNER JOIN "pg_catalog"."pg_namespace" AS "pn" ON "pn"."oid" = "pc"."relnamespace" INNER JOIN "pg_catalog"."pg_attribute" AS "pa" ON "pa"."attrelid" = "pc"."oid" INNER JOIN "pg_catalog"."pg_type" AS "pt" ON "pt"."oid" = "pa"."atttypid" INNER JOIN "pg_catalog"."pg_namespace" AS "ptn" ON "ptn"."oid" = "pt"."typnamespace" WHERE ("pc"."relkind" = 'm') AND ("pa"."attnum" >= 1) AND ("pn"."nspname" IN ('public')) AND ("pc"."relname" IN ('logs')) ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC;

-- source: metabase src/metabase/driver/postgres.clj sql-jdbc.sync/describe-fields-sql (schema-names ('public'), table-names ('logs_per_minute'): the materialized-view half)
SELECT "c"."column_name" AS "name", CASE WHEN "c"."udt_schema" IN ('public', 'pg_catalog') THEN FORMAT('%s', "c"."udt_name") ELSE FORMAT('"%s"."%s"', "c"."udt_schema", "c"."udt_name") END AS "database-type", "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema", "c"."table_name" AS "table-name", "pk"."column_name" IS NOT NULL AS "pk?", COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST("c"."table_schema" AS TEXT), CAST("c"."table_name" AS TEXT)) AS REGCLASS) AS OID), "c"."ordinal_position") AS "field-comment", (("column_default" IS NULL) OR (LOWER("column_default") = 'null')) AND ("is_nullable" = 'NO') AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO')) AS "database-required", (("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO') AS "database-is-auto-increment" FROM "information_schema"."columns" AS "c" LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name" FROM "information_schema"."table_constraints" AS "tc" INNER JOIN "information_schema"."key_column_usage" AS "kc" ON ("tc"."constraint_name" = "kc"."constraint_name") AND ("tc"."table_schema" = "kc"."table_schema") AND ("tc"."table_name" = "kc"."table_name") WHERE "tc"."constraint_type" = 'PRIMARY KEY') AS "pk" ON ("c"."table_schema" = "pk"."table_schema") AND ("c"."table_name" = "pk"."table_name") AND ("c"."column_name" = "pk"."column_name") WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND ("c"."table_schema" IN ('public')) AND ("c"."table_name" IN ('logs_per_minute')) UNION ALL SELECT "pa"."attname" AS "name", CASE WHEN "ptn"."nspname" IN ('public', 'pg_catalog') THEN FORMAT('%s', "pt"."typname") ELSE FORMAT('"%s"."%s"', "ptn"."nspname", "pt"."typname") END AS "database-type", "pa"."attnum" - 1 AS "database-position", "pn"."nspname" AS "table-schema", "pc"."relname" AS "table-name", FALSE AS "pk?", NULL AS "field-comment", FALSE AS "database-required", FALSE AS "database-is-auto-increment" FROM "pg_catalog"."pg_class" AS "pc" INNER JOIN "pg_catalog"."pg_namespace" AS "pn" ON "pn"."oid" = "pc"."relnamespace" INNER JOIN "pg_catalog"."pg_attribute" AS "pa" ON "pa"."attrelid" = "pc"."oid" INNER JOIN "pg_catalog"."pg_type" AS "pt" ON "pt"."oid" = "pa"."atttypid" INNER JOIN "pg_catalog"."pg_namespace" AS "ptn" ON "ptn"."oid" = "pt"."typnamespace" WHERE ("pc"."relkind" = 'm') AND ("pa"."attnum" >= 1) AND ("pn"."nspname" IN ('public')) AND ("pc"."relname" IN ('logs_per_minute')) ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC;

-- source: metabase src/metabase/driver/postgres.clj sql-jdbc.sync/describe-fks-sql (schema-names ('public'), table-names ('logs'))
SELECT "fk_ns"."nspname" AS "fk-table-schema", "fk_table"."relname" AS "fk-table-name", "fk_column"."attname" AS "fk-column-name", "pk_ns"."nspname" AS "pk-table-schema", "pk_table"."relname" AS "pk-table-name", "pk_column"."attname" AS "pk-column-name" FROM "pg_constraint" AS "c" INNER JOIN "pg_class" AS "fk_table" ON "c"."conrelid" = "fk_table"."oid" INNER JOIN "pg_namespace" AS "fk_ns" ON "c"."connamespace" = "fk_ns"."oid" INNER JOIN "pg_attribute" AS "fk_column" ON "c"."conrelid" = "fk_column"."attrelid" INNER JOIN "pg_class" AS "pk_table" ON "c"."confrelid" = "pk_table"."oid" INNER JOIN "pg_namespace" AS "pk_ns" ON "pk_table"."relnamespace" = "pk_ns"."oid" INNER JOIN "pg_attribute" AS "pk_column" ON "c"."confrelid" = "pk_column"."attrelid" WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND ("c"."contype" = 'f'::char) AND ("fk_column"."attnum" = ANY(c.conkey)) AND ("pk_column"."attnum" = ANY(c.confkey)) AND ("fk_table"."relname" IN ('logs')) AND ("fk_ns"."nspname" IN ('public')) ORDER BY "fk-table-schema" ASC, "fk-table-name" ASC;

-- source: metabase src/metabase/driver/postgres.clj sql-jdbc.sync/describe-indexes-sql (schema-names ('public'), table-names ('logs'))
SELECT "tmp"."table-schema", "tmp"."table-name", TRIM(BOTH '"' FROM PG_CATALOG.PG_GET_INDEXDEF("tmp"."ci_oid", "tmp"."pos", FALSE)) AS "field-name" FROM (SELECT "n"."nspname" AS "table-schema", "ct"."relname" AS "table-name", "ci"."oid" AS "ci_oid", (INFORMATION_SCHEMA._PG_EXPANDARRAY("i"."indkey")).n AS "pos" FROM "pg_catalog"."pg_class" AS "ct" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "ct"."relnamespace" = "n"."oid" INNER JOIN "pg_catalog"."pg_index" AS "i" ON "ct"."oid" = "i"."indrelid" INNER JOIN "pg_catalog"."pg_class" AS "ci" ON "ci"."oid" = "i"."indexrelid" WHERE (PG_CATALOG.PG_GET_EXPR("i"."indpred", "i"."indrelid") IS NULL) AND n.nspname !~ '^information_schema|catalog_history|pg_' AND ("n"."nspname" IN ('public')) AND ("ct"."relname" IN ('logs'))) AS "tmp" WHERE "tmp"."pos" = 1;

-- source: metabase src/metabase/driver/common/table_rows_sample.clj table-rows-sample (fingerprinting sample)
SELECT "public"."logs"."ts" AS "ts", "public"."logs"."ingest_ts" AS "ingest_ts", "public"."logs"."tenant" AS "tenant", "public"."logs"."service" AS "service", "public"."logs"."host" AS "host", "public"."logs"."level" AS "level", "public"."logs"."msg" AS "msg", "public"."logs"."trace_id" AS "trace_id", "public"."logs"."parse_failed" AS "parse_failed", "public"."logs"."truncated" AS "truncated" FROM "public"."logs" ORDER BY "public"."logs"."ts" ASC LIMIT 10000;

-- source: metabase src/metabase/driver/sql_jdbc/sync/describe_table.clj sample-json-row-honey-sql (nested-field-columns: JSON unfolding sample)
SELECT "attrs" FROM "public"."logs" LIMIT 100;

-- source: metabase src/metabase/warehouse_schema/metadata_queries.clj field-distinct-values (field values for the filter widget)
SELECT "public"."logs"."level" AS "level" FROM "public"."logs" GROUP BY "public"."logs"."level" ORDER BY "public"."logs"."level" ASC LIMIT 1000;

-- source: metabase src/metabase/warehouse_schema/metadata_queries.clj field-distinct-values (service)
SELECT "public"."logs"."service" AS "service" FROM "public"."logs" GROUP BY "public"."logs"."service" ORDER BY "public"."logs"."service" ASC LIMIT 1000;

-- source: metabase src/metabase/driver/sql/query_processor.clj MBQL count
SELECT COUNT(*) AS "count" FROM "public"."logs";

-- source: metabase src/metabase/driver/sql/query_processor.clj MBQL raw rows (default LIMIT 2000)
SELECT "public"."logs"."ts" AS "ts", "public"."logs"."service" AS "service", "public"."logs"."host" AS "host", "public"."logs"."level" AS "level", "public"."logs"."msg" AS "msg", "public"."logs"."trace_id" AS "trace_id" FROM "public"."logs" ORDER BY "public"."logs"."ts" DESC LIMIT 2000;

-- source: metabase src/metabase/driver/sql/query_processor.clj MBQL breakout level, count
SELECT "public"."logs"."level" AS "level", COUNT(*) AS "count" FROM "public"."logs" GROUP BY "public"."logs"."level" ORDER BY "public"."logs"."level" ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/date :hour (date-trunc)
SELECT DATE_TRUNC('hour', "public"."logs"."ts") AS "ts", COUNT(*) AS "count" FROM "public"."logs" GROUP BY DATE_TRUNC('hour', "public"."logs"."ts") ORDER BY DATE_TRUNC('hour', "public"."logs"."ts") ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/date :minute (date-trunc), filter level
SELECT DATE_TRUNC('minute', "public"."logs"."ts") AS "ts", COUNT(*) AS "count" FROM "public"."logs" WHERE "public"."logs"."level" = 'ERROR' GROUP BY DATE_TRUNC('minute', "public"."logs"."ts") ORDER BY DATE_TRUNC('minute', "public"."logs"."ts") ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/date :day (maybe-cast of ->date)
SELECT CAST(CAST("public"."logs"."ts" AS date) AS timestamptz) AS "ts", COUNT(*) AS "count" FROM "public"."logs" GROUP BY CAST(CAST("public"."logs"."ts" AS date) AS timestamptz) ORDER BY CAST(CAST("public"."logs"."ts" AS date) AS timestamptz) ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/date :week (adjust-start-of-week, Sunday start)
SELECT (DATE_TRUNC('week', ("public"."logs"."ts" + INTERVAL '1 day')) + INTERVAL '-1 day') AS "ts", COUNT(*) AS "count" FROM "public"."logs" GROUP BY (DATE_TRUNC('week', ("public"."logs"."ts" + INTERVAL '1 day')) + INTERVAL '-1 day') ORDER BY (DATE_TRUNC('week', ("public"."logs"."ts" + INTERVAL '1 day')) + INTERVAL '-1 day') ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/date :hour-of-day (extract-integer)
SELECT CAST(extract(hour from "public"."logs"."ts") AS integer) AS "ts", COUNT(*) AS "count" FROM "public"."logs" GROUP BY CAST(extract(hour from "public"."logs"."ts") AS integer) ORDER BY CAST(extract(hour from "public"."logs"."ts") AS integer) ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/date :day-of-week (adjust-day-of-week of extract dow + 1)
SELECT ((((CAST(extract(dow from "public"."logs"."ts") AS integer) + 1) + 6) % 7) + 1) AS "ts", COUNT(*) AS "count" FROM "public"."logs" GROUP BY ((((CAST(extract(dow from "public"."logs"."ts") AS integer) + 1) + 6) % 7) + 1) ORDER BY ((((CAST(extract(dow from "public"."logs"."ts") AS integer) + 1) + 6) % 7) + 1) ASC;

-- source: metabase src/metabase/driver/sql/query_processor.clj MBQL filter between (specific dates), breakout service, distinct count
SELECT "public"."logs"."service" AS "service", COUNT(DISTINCT "public"."logs"."host") AS "count" FROM "public"."logs" WHERE ("public"."logs"."ts" >= timestamp with time zone '2024-01-15 10:00:00.000 Z') AND ("public"."logs"."ts" < timestamp with time zone '2024-01-15 11:00:00.000 Z') GROUP BY "public"."logs"."service" ORDER BY "public"."logs"."service" ASC;

-- source: metabase src/metabase/driver/sql/query_processor.clj MBQL relative filter (previous 30 days; both servers' data is older)
SELECT COUNT(*) AS "count" FROM "public"."logs" WHERE ("public"."logs"."ts" >= DATE_TRUNC('day', (NOW() + INTERVAL '-30 day'))) AND ("public"."logs"."ts" < DATE_TRUNC('day', NOW()));

-- source: metabase src/metabase/driver/sql/query_processor.clj MBQL contains filter (case-insensitive)
SELECT COUNT(*) AS "count" FROM "public"."logs" WHERE LOWER("public"."logs"."msg") LIKE '%timeout%';

-- source: metabase src/metabase/driver/postgres.clj sql.qp/json-query (JSON unfolding: attrs -> latency_ms, avg)
SELECT "public"."logs"."service" AS "service", AVG(("public"."logs"."attrs"#>> array['latency_ms']::text[])::bigint) AS "avg" FROM "public"."logs" GROUP BY "public"."logs"."service" ORDER BY "public"."logs"."service" ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/json-query (JSON unfolding: attrs -> http -> method, breakout)
SELECT ("public"."logs"."attrs"#>> array['http', 'method']::text[])::text AS "attrs → http → method", COUNT(*) AS "count" FROM "public"."logs" GROUP BY "attrs → http → method" ORDER BY "attrs → http → method" ASC;

-- source: metabase src/metabase/driver/sql/query_processor.clj custom aggregation (CountIf / SumIf)
SELECT "public"."logs"."service" AS "service", SUM(CASE WHEN "public"."logs"."level" = 'ERROR' THEN 1 ELSE 0.0 END) AS "errors", COUNT(*) AS "count" FROM "public"."logs" GROUP BY "public"."logs"."service" ORDER BY "errors" DESC, "public"."logs"."service" ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/->honeysql :median (percentile 0.5)
SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY ("public"."logs"."attrs"#>> array['latency_ms']::text[])::bigint) AS "median" FROM "public"."logs";

-- source: metabase src/metabase/driver/sql/query_processor.clj nested query (source-query / saved question)
SELECT "source"."level" AS "level", COUNT(*) AS "count" FROM (SELECT "public"."logs"."level" AS "level", "public"."logs"."service" AS "service" FROM "public"."logs" WHERE "public"."logs"."service" = 'payments') AS "source" GROUP BY "source"."level" ORDER BY "count" DESC, "source"."level" ASC;

-- source: metabase src/metabase/driver/sql/query_processor.clj cumulative count (window over the breakout)
SELECT DATE_TRUNC('minute', "public"."logs"."ts") AS "ts", SUM(COUNT(*)) OVER (ORDER BY DATE_TRUNC('minute', "public"."logs"."ts") ASC ROWS UNBOUNDED PRECEDING) AS "count" FROM "public"."logs" WHERE "public"."logs"."ts" < timestamp with time zone '2024-01-15 10:10:00.000 Z' GROUP BY DATE_TRUNC('minute', "public"."logs"."ts") ORDER BY DATE_TRUNC('minute', "public"."logs"."ts") ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/->honeysql :convert-timezone (timestamptz column)
SELECT timezone('Europe/Berlin', "public"."logs"."ts") AS "local_ts", "public"."logs"."msg" AS "msg" FROM "public"."logs" ORDER BY "public"."logs"."ts" ASC LIMIT 3;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/datetime-diff :second (trunc of epoch difference)
SELECT CAST(TRUNC(extract(epoch from "public"."logs"."ingest_ts") - extract(epoch from "public"."logs"."ts")) AS integer) > 0 AS "late", COUNT(*) AS "count" FROM "public"."logs" GROUP BY 1 ORDER BY 1 ASC;

-- source: metabase src/metabase/driver/postgres.clj sql.qp/->honeysql :regex-match-first
SELECT substring("public"."logs"."msg" FROM '[0-9]+') AS "number", COUNT(*) AS "count" FROM "public"."logs" GROUP BY substring("public"."logs"."msg" FROM '[0-9]+') ORDER BY substring("public"."logs"."msg" FROM '[0-9]+') ASC;
