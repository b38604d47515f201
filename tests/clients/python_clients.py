"""Real Python pg clients against a running Timberline: psycopg2, psycopg3 (with and without
parameters, text and binary), asyncpg (binary), SQLAlchemy 2, and a replay of Grafana's SQL.

Usage: python_clients.py PORT. The server holds the data `tests/it/clients.rs` loads: 120 events
from 2024-05-01T10:00:00Z, 30 s apart; level cycles ERROR, WARN, INFO; service cycles api, db.
Every check asserts values and type OIDs. Prints `PASS|FAIL client feature [reason]` per check
and exits 1 if any failed.
"""

import asyncio
import datetime as dt
import sys
import traceback

PORT = int(sys.argv[1])
PASSWORD = "timberline"
DSN = f"host=127.0.0.1 port={PORT} user=timberline password={PASSWORD} dbname=timberline"
T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
OID = {"int2": 21, "int4": 23, "int8": 20, "float4": 700, "float8": 701, "numeric": 1700,
       "bool": 16, "text": 25, "varchar": 1043, "timestamptz": 1184, "timestamp": 1114}
failed = []


def check(client, feature):
    def wrap(fn):
        try:
            r = fn()
            if asyncio.iscoroutine(r):
                asyncio.run(r)
            print(f"PASS {client} {feature}")
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failed.append((client, feature))
            print(f"FAIL {client} {feature}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3)
        return fn
    return wrap


def eq(got, want, what=""):
    assert got == want, f"{what}: got {got!r}, want {want!r}"


# ---------------------------------------------------------------- psycopg2 (libpq, text, client-side params)
import psycopg2  # noqa: E402
import psycopg2.errors  # noqa: E402


@check("psycopg2", "connect+params")
def _():
    c = psycopg2.connect(DSN)
    eq(c.server_version, 160006, "server_version")
    cur = c.cursor()
    cur.execute("SELECT count(*) AS n FROM logs WHERE service = %s AND level = %s", ("api", "ERROR"))
    eq(cur.fetchone()[0], 20, "count")
    eq(cur.description[0].type_code, OID["int8"], "count OID")
    cur.execute("SELECT ts, service, level, msg FROM logs ORDER BY ts LIMIT 2")
    rows = cur.fetchall()
    eq(rows[0], (T0, "api", "ERROR", "request 0 done"), "first row")
    eq([d.type_code for d in cur.description], [OID["timestamptz"], OID["text"], OID["text"], OID["text"]])
    c.close()


@check("psycopg2", "transaction+error recovery")
def _():
    c = psycopg2.connect(DSN)  # autocommit off: psycopg2 sends BEGIN first
    cur = c.cursor()
    try:
        cur.execute("SELECT * FROM no_such_table")
        raise AssertionError("no error")
    except psycopg2.errors.UndefinedTable as e:
        eq(e.pgcode, "42P01")
    c.rollback()
    cur.execute("SELECT 1")
    eq(cur.fetchone(), (1,))
    c.commit()
    c.close()


@check("psycopg2", "SET/SHOW and statement_timeout")
def _():
    c = psycopg2.connect(DSN)
    c.autocommit = True
    cur = c.cursor()
    cur.execute("SET application_name = 'etl'")
    cur.execute("SHOW application_name")
    eq(cur.fetchone(), ("etl",))
    cur.execute("SET statement_timeout = 200")
    try:
        cur.execute("SELECT count(*) FROM generate_series(1, 100000000000) AS t(i) WHERE i % 7 = 3")
        raise AssertionError("not stopped")
    except psycopg2.errors.QueryCanceled as e:
        eq(e.pgcode, "57014")
    cur.execute("RESET statement_timeout")
    cur.execute("SELECT 1")
    eq(cur.fetchone(), (1,))
    c.close()


# ---------------------------------------------------------------- psycopg3
import psycopg  # noqa: E402


@check("psycopg3", "no params")
def _():
    with psycopg.connect(DSN) as c:
        cur = c.execute("SELECT count(*) FROM logs")
        eq(cur.fetchone()[0], 120)
        eq(cur.description[0].type_code, OID["int8"])


@check("psycopg3", "SET reports ParameterStatus")
def _():
    with psycopg.connect(DSN, autocommit=True) as c:
        eq(c.info.parameter_status("DateStyle"), "ISO, MDY")
        c.execute("SET application_name = 'dashboards'")
        eq(c.info.parameter_status("application_name"), "dashboards")
        eq(c.execute("SHOW application_name").fetchone(), ("dashboards",))
        c.execute("RESET application_name")
        eq(c.info.parameter_status("application_name"), "")


@check("psycopg3", "params (unknown-typed str, timestamptz)")
def _():
    with psycopg.connect(DSN, autocommit=True) as c:
        cur = c.execute("SELECT count(*) FROM logs WHERE level = %s AND ts >= %s", ("WARN", T0 + dt.timedelta(minutes=30)))
        eq(cur.fetchone()[0], 20)


@check("psycopg3", "prepared x10 (named after 5)")
def _():
    with psycopg.connect(DSN, autocommit=True) as c:
        for i in range(10):
            cur = c.execute("SELECT msg FROM logs WHERE ts = %s", (T0 + dt.timedelta(seconds=30 * i),))
            eq(cur.fetchone()[0], f"request {i} done", f"run {i}")


@check("psycopg3", "binary results")
def _():
    with psycopg.connect(DSN, autocommit=True) as c:
        cur = c.cursor(binary=True)
        cur.execute("SELECT 1::int2, 2::int4, 3::int8, 1.5::float4, 2.5::float8, true, 'x'::text, ts "
                    "FROM logs ORDER BY ts LIMIT 1")
        eq(cur.fetchone(), (1, 2, 3, 1.5, 2.5, True, "x", T0))
        eq([d.type_code for d in cur.description],
           [OID[t] for t in ["int2", "int4", "int8", "float4", "float8", "bool", "text", "timestamptz"]])


# Every type a query here returns, in text and binary, through two drivers.
TYPES_SQL = """SELECT ts_distance(ts, '2024-05-01T10:00:30Z') AS iv, CAST(ts AS date) AS d,
  string_to_array('a,b', ',') AS arr, 1.25::numeric(10,2) AS num, CAST(ts AS timestamp) AS naive,
  attrs, trace_id, ts, parse_failed, 3::smallint AS sm, 4::int AS i4, 5::bigint AS i8,
  0.5::real AS f4, 0.25::double precision AS f8, msg
  FROM logs ORDER BY ts LIMIT 1"""
TYPES_ROW = (dt.timedelta(seconds=30), dt.date(2024, 5, 1), ["a", "b"], __import__("decimal").Decimal("1.25"),
             dt.datetime(2024, 5, 1, 10, 0), "{}", None, T0, False, 3, 4, 5, 0.5, 0.25, "request 0 done")
TYPES_OIDS = [1186, 1082, 1009, 1700, 1114, 25, 25, 1184, 16, 21, 23, 20, 700, 701, 25]


@check("psycopg3", "every returned type, text and binary")
def _():
    with psycopg.connect(DSN, autocommit=True) as c:
        for binary in (False, True):
            cur = c.cursor(binary=binary)
            cur.execute(TYPES_SQL)
            eq(cur.fetchone(), TYPES_ROW, f"binary={binary}")
            eq([d.type_code for d in cur.description], TYPES_OIDS, f"binary={binary}")


@check("psycopg3", "errors recover")
def _():
    with psycopg.connect(DSN, autocommit=True) as c:
        for sql, code in [("SELECT nope FROM logs", "42703"), ("SELEC 1", "42601"), ("SELECT 1/0", "22012")]:
            try:
                c.execute(sql)
                raise AssertionError(f"no error for {sql}")
            except psycopg.Error as e:
                eq(e.sqlstate, code, sql)
        eq(c.execute("SELECT 7").fetchone(), (7,))


# ---------------------------------------------------------------- asyncpg (extended protocol, binary)
import asyncpg  # noqa: E402


@check("asyncpg", "params+binary types")
async def _():
    c = await asyncpg.connect(host="127.0.0.1", port=PORT, user="timberline", password=PASSWORD, database="timberline")
    n = await c.fetchval("SELECT count(*) FROM logs WHERE level = $1 AND ts < $2", "INFO", T0 + dt.timedelta(minutes=30))
    eq(n, 20)
    r = await c.fetchrow("SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 1.5::float4 AS d, 2.5::float8 AS e, "
                         "true AS f, 'x'::text AS g, NULL::text AS h, ts FROM logs ORDER BY ts LIMIT 1")
    eq(tuple(r.values()), (1, 2, 3, 1.5, 2.5, True, "x", None, T0))
    await c.close()


@check("asyncpg", "every returned type (binary)")
async def _():
    c = await asyncpg.connect(host="127.0.0.1", port=PORT, user="timberline", password=PASSWORD, database="timberline")
    st = await c.prepare(TYPES_SQL)
    eq([a.type.oid for a in st.get_attributes()], TYPES_OIDS)
    eq(tuple(await st.fetchrow()), TYPES_ROW)
    await c.close()


@check("asyncpg", "prepared statement reused")
async def _():
    c = await asyncpg.connect(host="127.0.0.1", port=PORT, user="timberline", password=PASSWORD, database="timberline")
    st = await c.prepare("SELECT service, count(*) AS n FROM logs WHERE level = $1 GROUP BY service ORDER BY service")
    eq([a.name for a in st.get_attributes()], ["service", "n"])
    for level in ["ERROR", "WARN", "INFO"] * 3:
        eq([tuple(r) for r in await st.fetch(level)], [("api", 20), ("db", 20)], level)
    await c.close()


@check("asyncpg", "SET/SHOW per connection")
async def _():
    kw = dict(host="127.0.0.1", port=PORT, user="timberline", password=PASSWORD, database="timberline")
    a, b = await asyncpg.connect(**kw), await asyncpg.connect(**kw)
    await a.execute("SET search_path TO public")
    eq(await a.fetchval("SHOW search_path"), "public")
    eq(await b.fetchval("SELECT current_setting('search_path')"), '"$user", public')
    await a.close()
    await b.close()


@check("asyncpg", "oid[] binary parameter")
async def _():
    c = await asyncpg.connect(host="127.0.0.1", port=PORT, user="timberline", password=PASSWORD, database="timberline")
    eq(await c.fetchval("SELECT array_length($1::oid[], 1)", [23, 25, 1184]), 3)
    await c.close()


@check("asyncpg", "error recovery")
async def _():
    c = await asyncpg.connect(host="127.0.0.1", port=PORT, user="timberline", password=PASSWORD, database="timberline")
    try:
        await c.fetch("SELECT * FROM no_such_table WHERE x = $1", 1)
        raise AssertionError("no error")
    except asyncpg.PostgresError as e:
        eq(e.sqlstate, "42P01")
    eq(await c.fetchval("SELECT 5::int8"), 5)
    await c.close()


# ---------------------------------------------------------------- SQLAlchemy 2 (psycopg2 and psycopg 3)
import sqlalchemy as sa  # noqa: E402

URLS = {
    "psycopg2": f"postgresql+psycopg2://timberline:{PASSWORD}@127.0.0.1:{PORT}/timberline",
    # The default `postgresql+psycopg://` dialect runs psycopg 3's `to_regtype` lookup on connect.
    "psycopg": f"postgresql+psycopg://timberline:{PASSWORD}@127.0.0.1:{PORT}/timberline",
}


def inspector_round(url):
    e = sa.create_engine(url)
    insp = sa.inspect(e)
    assert "public" in insp.get_schema_names(), insp.get_schema_names()
    tables = insp.get_table_names()
    assert "logs" in tables, tables
    assert "logs_per_minute" in insp.get_materialized_view_names(), insp.get_materialized_view_names()
    insp.get_view_names()
    assert insp.has_table("logs") and not insp.has_table("nope")
    cols = {c["name"]: c for c in insp.get_columns("logs")}
    assert isinstance(cols["ts"]["type"], sa.TIMESTAMP) and cols["ts"]["type"].timezone, cols["ts"]
    assert isinstance(cols["msg"]["type"], sa.Text), cols["msg"]
    eq(cols["msg"]["nullable"], False, "msg nullable")
    eq(cols["trace_id"]["nullable"], True, "trace_id nullable")
    eq(insp.get_pk_constraint("logs")["constrained_columns"], [], "primary key")
    eq(insp.get_foreign_keys("logs"), [], "foreign keys")
    eq(insp.get_indexes("logs"), [], "indexes")
    eq(insp.get_unique_constraints("logs"), [], "unique constraints")
    insp.get_check_constraints("logs")
    insp.get_table_comment("logs")
    insp.get_table_options("logs")
    insp.get_multi_columns()
    insp.get_multi_pk_constraint()
    # Reflection of the whole schema, and one table autoloaded and queried.
    md = sa.MetaData()
    md.reflect(e)
    assert "logs" in md.tables, list(md.tables)
    logs = sa.Table("logs", sa.MetaData(), autoload_with=e)
    with e.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(logs).where(logs.c.service == "db")).scalar_one()
        eq(n, 60)
    return e


@check("sqlalchemy", "psycopg2: every Inspector method, MetaData().reflect(), autoload")
def _():
    inspector_round(URLS["psycopg2"]).dispose()


@check("sqlalchemy", "psycopg 3 (the default postgresql:// driver): connect, Inspector, reflect, pandas")
def _():
    e = inspector_round(URLS["psycopg"])
    import pandas as pd

    frame = pd.read_sql("SELECT service, count(*) AS n FROM logs GROUP BY service ORDER BY service", e)
    eq(list(frame["service"]), ["api", "db"])
    eq(list(frame["n"]), [60, 60])
    e.dispose()


# ---------------------------------------------------------------- Grafana (pgx simple protocol, text)
FROM, TO = "'2024-05-01T10:00:00Z'", "'2024-05-01T11:00:00Z'"


def grafana(sql):
    """Runs `sql` over the simple query protocol (as pgx's PgConn.Exec does): (oids, names, rows)."""
    with psycopg.connect(DSN, autocommit=True) as c:
        cur = psycopg.ClientCursor(c)
        cur.execute(sql)
        if cur.description is None:
            return None
        return [d.type_code for d in cur.description], [d.name for d in cur.description], cur.fetchall()


@check("grafana", "G1 -- ping")
def _():
    eq(grafana("-- ping"), None)


@check("grafana", "G2 version detection")
def _():
    oids, names, rows = grafana("SELECT current_setting('server_version_num')::int/100 as version")
    eq(names, ["version"])
    assert oids[0] in (OID["int4"], OID["int8"]), oids
    eq(rows, [(1600,)])


@check("grafana", "G6 $__timeGroupAlias time series")
def _():
    oids, names, rows = grafana(
        "SELECT floor(extract(epoch from ts)/60)*60 AS \"time\", level AS metric, count(*) AS value FROM logs "
        f"WHERE ts BETWEEN {FROM} AND {TO} GROUP BY 1, 2 ORDER BY 1")
    eq(names, ["time", "metric", "value"])
    assert oids[0] in (OID["float8"], OID["numeric"]), oids
    eq(oids[1:], [OID["text"], OID["int8"]])
    eq(sum(r[2] for r in rows), 120)
    eq(rows[0][0], 1714557600)
    assert all((r[0] - 1714557600) % 60 == 0 for r in rows)


@check("grafana", "G11 table panel $__time")
def _():
    oids, names, rows = grafana(f"SELECT ts AS \"time\", service, level, msg FROM logs WHERE ts BETWEEN {FROM} AND {TO} ORDER BY 1 DESC LIMIT 500")
    eq(names, ["time", "service", "level", "msg"])
    eq(oids, [OID["timestamptz"], OID["text"], OID["text"], OID["text"]])
    eq(len(rows), 120)
    eq(rows[0][0], T0 + dt.timedelta(seconds=30 * 119))


@check("grafana", "G12 logs panel with multi-value variable")
def _():
    oids, names, rows = grafana(f"SELECT ts AS \"time\", msg AS body, level, service FROM logs WHERE ts BETWEEN {FROM} AND {TO} AND level IN ('error','warn') AND service = 'api' ORDER BY ts DESC LIMIT 1000")
    eq(names, ["time", "body", "level", "service"])
    eq(rows, [])  # levels are stored upper-case
    _, _, rows = grafana(f"SELECT ts AS \"time\", msg AS body, level, service FROM logs WHERE ts BETWEEN {FROM} AND {TO} AND level IN ('ERROR','WARN') AND service = 'api' ORDER BY ts DESC LIMIT 1000")
    eq(len(rows), 40)


@check("grafana", "$__timeEpoch, $__unixEpochGroupAlias, epoch filter")
def _():
    oids, names, rows = grafana(
        "SELECT floor((extract(epoch from ts))/600)*600 AS \"time\", count(*) AS value FROM logs "
        "WHERE extract(epoch from ts) >= 1714557600 AND extract(epoch from ts) <= 1714561200 GROUP BY 1 ORDER BY 1")
    eq([r[1] for r in rows], [20] * 6)
    oids, _, rows = grafana(f"SELECT extract(epoch from ts) as \"time\", msg FROM logs WHERE ts BETWEEN {FROM} AND {TO} ORDER BY 1 LIMIT 1")
    assert oids[0] in (OID["float8"], OID["numeric"]), oids
    eq(float(rows[0][0]), 1714557600.0)


@check("grafana", "date_trunc and count(*) FILTER")
def _():
    oids, names, rows = grafana(
        "SELECT date_trunc('minute', ts) AS \"time\", count(*) FILTER (WHERE level = 'ERROR') AS errors, count(*) AS total "
        f"FROM logs WHERE ts BETWEEN {FROM} AND {TO} GROUP BY 1 ORDER BY 1")
    eq(oids, [OID["timestamptz"], OID["int8"], OID["int8"]])
    eq(len(rows), 60)
    eq(sum(r[1] for r in rows), 40)
    eq(rows[0][0], T0)


@check("grafana", "table dropdown (search_path, string_to_array, generate_series)")
def _():
    oids, names, rows = grafana("""select quote_ident(table_name) as "table" from information_schema.tables
    where quote_ident(table_schema) not in ('information_schema', 'pg_catalog', '_timescaledb_cache',
      '_timescaledb_catalog', '_timescaledb_internal', '_timescaledb_config', 'timescaledb_information',
      'timescaledb_experimental')
      and table_type = 'BASE TABLE' and quote_ident(table_schema) IN (
      SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
      FROM generate_series(
          array_lower(string_to_array(current_setting('search_path'),','),1),
          array_upper(string_to_array(current_setting('search_path'),','),1)
        ) as i,
        string_to_array(current_setting('search_path'),',') s
      )""")
    tables = sorted(r[0] for r in rows)
    assert "logs" in tables, tables


@check("grafana", "column dropdown (information_schema.columns, PG type names)")
def _():
    _, _, rows = grafana("SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\" FROM information_schema.columns "
                         "WHERE quote_ident(table_name) = 'logs' ORDER BY ordinal_position")
    types = dict(rows)
    eq(types.get("ts"), "timestamp with time zone", "ts")
    eq(types.get("msg"), "text", "msg")


@check("grafana", "column dropdown with parse_ident (current builder)")
def _():
    _, _, rows = grafana("""SELECT quote_ident(column_name) AS "column", data_type AS "type" FROM information_schema.columns
      WHERE CASE WHEN array_length(parse_ident('logs'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('logs'))[1] AND quote_ident(table_name) = (parse_ident('logs'))[2]
        ELSE quote_ident(table_name) = 'logs' AND quote_ident(table_schema) IN (
          SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1),
                               array_upper(string_to_array(current_setting('search_path'),','),1)) as i,
               string_to_array(current_setting('search_path'),',') s) END""")
    types = dict(rows)
    eq(types.get("ts"), "timestamp with time zone", "ts")
    eq(types.get("parse_failed"), "boolean", "parse_failed")


@check("grafana", "schema API with $1/$2 (extended protocol)")
def _():
    with psycopg.connect(DSN, autocommit=True) as c:
        s = [r[0] for r in c.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT LIKE 'pg_%' AND schema_name != 'information_schema' ORDER BY schema_name")]
        assert "public" in s, s
        t = [r[0] for r in c.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type IN ('BASE TABLE', 'VIEW') ORDER BY table_name", ("public",))]
        assert "logs" in t, t
        cols = c.execute("SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", ("public", "logs")).fetchall()
        udt = {r[0]: r[2] for r in cols}
        eq(udt.get("ts"), "timestamptz", "udt ts")
        vals = c.execute("SELECT 'level' AS col_name, \"level\"::text AS val FROM (SELECT DISTINCT \"level\" FROM \"public\".\"logs\" WHERE \"level\" IS NOT NULL ORDER BY \"level\" LIMIT 100) sub_0").fetchall()
        eq(sorted(v for _, v in vals), ["ERROR", "INFO", "WARN"])


print(f"{len(failed)} failed")
sys.exit(1 if failed else 0)
