#!/usr/bin/env python3
"""Sends the BI tools' own SQL (tests/differential/tools/*.sql) to Timberline and to a
PostgreSQL 15 holding the same tables, and compares the answers as tests/it/differential.rs
does: column names and type OIDs from the extended protocol's description (Parse/Describe),
values as text from the simple protocol; rows sorted unless the statement has its own
(top-level) ORDER BY.

Each statement is one of
  identical   same names, type OIDs and rows (or both fail with the same SQLSTATE class);
  same shape  same names and type OIDs and as many rows, but some values differ (OIDs, ...);
  different   anything else where Timberline did not fail (other columns, types, row counts,
              or PostgreSQL failed and Timberline did not);
  error       Timberline failed and PostgreSQL did not (or failed with another class).

Servers (see tests/it/differential.rs for the PostgreSQL side):
  timberline user add postgres --tenant default --data-dir D   (the tools log in as postgres)
  timberline serve --data-dir D --pg-auth trust --maintenance-interval 0 \
      --flush-interval-secs 86400 --http-addr 127.0.0.1:18080 --pg-addr 127.0.0.1:15433
  (no background flush or compaction: `segments` keeps the rows --load copied)
  postgres -D PGDATA -p 15432 -c listen_addresses=127.0.0.1 -c TimeZone=UTC

Usage:
  measure.py --tl-port 15433 --pg-port 15432 [--verbose] [FILE.sql ...]
  measure.py --load --tl-http 127.0.0.1:18080 --tl-port 15433 --pg-port 15432
      (ingests the 160 rows of tests/it/differential.rs into Timberline, half flushed into a
      segment, reads them back and inserts them, with schema.sql's relations, into PostgreSQL)

Without files it measures every *.sql of this directory but schema.sql.
"""

import argparse
import collections
import datetime
import glob
import json
import os
import re
import sys
import urllib.request

from psycopg import pq

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ("identical", "same shape", "different", "error")


# ---------------------------------------------------------------------------------------------
# The corpus format (the parser of tests/it/differential.rs, plus the `-- source:` line)


class Case:
    def __init__(self, path, line, sql, source, differs):
        self.path, self.line, self.sql, self.source, self.differs = path, line, sql, source, differs


def corpus(path):
    """Statements end with `;` at the end of a line; `--` lines between statements are comments;
    `-- source: ...` and `-- differs: ...` lines name the next statement's origin / exception."""
    out, sql, start, source, differs = [], [], 0, None, None
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        t = line.strip()
        if not sql:
            if t.startswith("-- differs:"):
                differs = t[len("-- differs:"):].strip()
                continue
            if t.startswith("-- source:"):
                source = t[len("-- source:"):].strip()
                continue
            if not t or t.startswith("--"):
                continue
            start = i + 1
        sql.append(line)
        if t.endswith(";"):
            text = "\n".join(sql).strip()
            while text.endswith(";"):
                text = text[:-1]
            out.append(Case(path, start, text, source, differs))
            sql, source, differs = [], None, None
    return out


# ---------------------------------------------------------------------------------------------
# Talking to a server over libpq (psycopg's pq wrapper): Describe for types, simple query for text


class Server:
    def __init__(self, name, dsn, timeout):
        self.name, self.dsn, self.timeout = name, dsn, timeout
        self.conn = None

    def connect(self):
        self.conn = pq.PGconn.connect(self.dsn.encode())
        if self.conn.status != pq.ConnStatus.OK:
            raise SystemExit(f"{self.name}: cannot connect ({self.dsn}): "
                             f"{self.conn.error_message.decode(errors='replace')}")
        if self.timeout:
            self.conn.exec_(f"SET statement_timeout = '{self.timeout}s'".encode())

    def alive(self):
        if self.conn is None or self.conn.status != pq.ConnStatus.OK:
            self.connect()

    @staticmethod
    def _error(res, conn):
        code = res.error_field(pq.DiagnosticField.SQLSTATE) if res is not None else None
        msg = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) if res is not None else None
        if not msg:
            msg = conn.error_message
        return ("error", (code or b"").decode(), (msg or b"").decode(errors="replace").strip())

    def answer(self, sql):
        """("rows", [(name, oid)], [[text or None]]) or ("error", sqlstate, message)."""
        self.alive()
        q = sql.encode()
        try:
            res = self.conn.prepare(b"", q)
            if res.status != pq.ExecStatus.COMMAND_OK:
                return self._error(res, self.conn)
            res = self.conn.describe_prepared(b"")
            if res.status != pq.ExecStatus.COMMAND_OK:
                return self._error(res, self.conn)
            types = [res.ftype(i) for i in range(res.nfields)]
            res = self.conn.exec_(q)
        except Exception as e:  # the connection broke
            self.conn = None
            return ("error", "08006", f"connection lost: {e}")
        if res.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            out = self._error(res, self.conn)
            if self.conn.status != pq.ConnStatus.OK:
                self.conn = None
            return out
        names = [res.fname(i).decode() for i in range(res.nfields)]
        rows = []
        for r in range(res.ntuples):
            rows.append([None if res.get_value(r, c) is None else res.get_value(r, c).decode(errors="replace")
                         for c in range(res.nfields)])
        if not ordered(sql):
            rows.sort(key=lambda row: [(v is not None, v or "") for v in row])
        return ("rows", list(zip(names, types)), rows)


def ordered(sql):
    """Whether the statement's own result is ordered: an ORDER BY outside parentheses, string
    literals and quoted names (tests/it/differential.rs looks for "order by" anywhere, which
    leaves a UNION ALL of ordered subqueries unsorted and its branch order to the server)."""
    depth, out, i, n = 0, [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            j = sql.find(ch, i + 1)
            while j != -1 and j + 1 < n and sql[j + 1] == ch:
                j = sql.find(ch, j + 2)
            i = n if j == -1 else j + 1
            out.append(" ")
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            out.append(ch)
        i += 1
    return re.search(r"\border\s+by\b", "".join(out), re.I) is not None


def classify(ours, theirs):
    """(class, description of the difference or None)."""
    if ours[0] == "error" and theirs[0] == "error":
        if ours[1][:2] == theirs[1][:2]:
            return "identical", None
        return "error", f"error {ours[1]} {ours[2]}, PostgreSQL error {theirs[1]} {theirs[2]}"
    if ours[0] == "error":
        return "error", f"error {ours[1]} {ours[2]}"
    if theirs[0] == "error":
        return "different", f"{len(ours[2])} rows, PostgreSQL error {theirs[1]} {theirs[2]}"
    (_, c1, r1), (_, c2, r2) = ours, theirs
    if c1 != c2:
        return "different", f"columns {c1}\n        PostgreSQL {c2}"
    if len(r1) != len(r2):
        return "different", f"{len(r1)} rows, PostgreSQL {len(r2)}" + first_extra(r1, r2)
    for a, b in zip(r1, r2):
        if a != b:
            return "same shape", f"row {a}\n        PostgreSQL {b}"
    return "identical", None


def first_extra(r1, r2):
    """The first row only one side has, as a hint."""
    s1, s2 = {tuple(r) for r in r1}, {tuple(r) for r in r2}
    only_pg = [r for r in r2 if tuple(r) not in s1]
    only_tl = [r for r in r1 if tuple(r) not in s2]
    out = ""
    if only_tl:
        out += f"\n        only Timberline: {list(only_tl[0])}"
    if only_pg:
        out += f"\n        only PostgreSQL: {list(only_pg[0])}"
    return out


def clip(s, n=600):
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


# ---------------------------------------------------------------------------------------------
# Loading the same rows into both servers


def events():
    """The 160 rows of tests/it/differential.rs (same generator, same values)."""
    services = ["api", "payments", "checkout", "auth"]
    levels = ["INFO", "ERROR", "WARN", "DEBUG", "INFO"]
    words = ["request served", "card declined by issuer", "connection timeout to db-1",
             "user login ok", "retrying payment after timeout", "cache miss for key user:42",
             "Order #1234 shipped", "slow query took 1532 ms"]
    start = 1_705_312_680_000_000
    out = []
    for i in range(160):
        ts = start + i * 37_123_457 + (i % 7) * 1_000
        at = datetime.datetime.fromtimestamp(ts // 1_000_000, datetime.timezone.utc).replace(
            microsecond=ts % 1_000_000).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        service = services[i % 4]
        meta = {
            "latency_ms": (i * 37) % 900,
            "status": [200, 500, 404, 200, 201][i % 5],
            "user": f"u{i % 9}",
            "region": ["eu-west-1", "us-east-1"][i % 2],
            "http": {"method": ["GET", "POST"][i % 2], "path": f"/v1/items/{i % 3}"},
        }
        if i % 3 == 0:
            meta["trace_id"] = format(0x4BF92F35 + i // 3, "08x")
        if i % 11 == 0:
            meta["retry"] = True
        out.append({"ts": at, "service": service, "host": f"{service}-{i % 3}",
                    "level": levels[i % 5], "msg": words[i % 8], "meta": meta})
    return out


def post(url, body, key, content_type="application/x-ndjson"):
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "authorization": f"Bearer {key}", "content-type": content_type})
    with urllib.request.urlopen(req) as r:
        return r.status, json.loads(r.read() or b"null")


def copy_rows(tl, pg, table, columns, casts):
    res = tl.conn.exec_(f"SELECT {', '.join(columns)} FROM {table}".encode())
    if res.status != pq.ExecStatus.TUPLES_OK:
        raise SystemExit(f"read {table} back: {res.error_message.decode()}")
    placeholders = ", ".join(f"${i + 1}{casts.get(c, '')}" for i, c in enumerate(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})".encode()
    for r in range(res.ntuples):
        values = [res.get_value(r, c) for c in range(res.nfields)]
        out = pg.conn.exec_params(sql, values)
        if out.status != pq.ExecStatus.COMMAND_OK:
            raise SystemExit(f"insert into {table}: {out.error_message.decode()}")
    return res.ntuples


def load(args, tl, pg):
    base = f"http://{args.tl_http}"
    all_events = events()
    half = len(all_events) // 2
    for chunk, flush in ((all_events[:half], True), (all_events[half:], False)):
        body = "\n".join(json.dumps(e) for e in chunk).encode()
        status, answer = post(f"{base}/v1/ingest", body, args.api_key)
        if status != 202 or answer.get("failed"):
            raise SystemExit(f"ingest: {status} {answer}")
        if flush:
            post(f"{base}/v1/flush", b"", args.api_key)
    for drop in ("DROP MATERIALIZED VIEW IF EXISTS logs_per_minute", "DROP TABLE IF EXISTS logs",
                 "DROP TABLE IF EXISTS segments", "DROP TABLE IF EXISTS rollups"):
        pg.conn.exec_(drop.encode())
    with open(os.path.join(HERE, "schema.sql"), encoding="utf-8") as f:
        for case in corpus(f.name):
            res = pg.conn.exec_(case.sql.encode())
            if res.status != pq.ExecStatus.COMMAND_OK:
                raise SystemExit(f"schema.sql:{case.line}: {res.error_message.decode()}")
    n = copy_rows(tl, pg, "logs", ["ts", "ingest_ts", "tenant", "service", "host", "level", "msg",
                                   "trace_id", "attrs", "parse_failed", "truncated"],
                  {"ts": "::timestamptz", "ingest_ts": "::timestamptz", "attrs": "::text::jsonb",
                   "parse_failed": "::boolean", "truncated": "::boolean"})
    s = copy_rows(tl, pg, "segments", ["segment_id", "tenant", "tier", "min_ts", "max_ts", '"rows"',
                                       "bytes", "path", "created_at"],
                  {"segment_id": "::bigint", "min_ts": "::timestamptz", "max_ts": "::timestamptz",
                   '"rows"': "::bigint", "bytes": "::bigint", "created_at": "::timestamptz"})
    r = copy_rows(tl, pg, "rollups", ["name", "definition", "bucket_seconds", "state",
                                      "segments_done", "segments_total", "segments_failed", "bytes"],
                  {c: "::bigint" for c in ["bucket_seconds", "segments_done", "segments_total",
                                           "segments_failed", "bytes"]})
    pg.conn.exec_(b"REFRESH MATERIALIZED VIEW logs_per_minute")
    print(f"loaded: logs {n} rows, segments {s}, rollups {r}")


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tl-port", type=int, default=15433)
    ap.add_argument("--pg-port", type=int, default=15432)
    ap.add_argument("--tl-dsn", help="libpq conninfo of Timberline (overrides --tl-port)")
    ap.add_argument("--pg-dsn", help="libpq conninfo of PostgreSQL (overrides --pg-port)")
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--dbname", default="postgres")
    ap.add_argument("--timeout", type=int, default=30, help="statement_timeout in seconds")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--json", help="write every statement's outcome to this file")
    ap.add_argument("--load", action="store_true", help="load the rows into both servers first")
    ap.add_argument("--tl-http", default="127.0.0.1:18080")
    ap.add_argument("--api-key", default="timberline")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()

    def dsn(port, override):
        return override or f"host=127.0.0.1 port={port} user={args.user} dbname={args.dbname} connect_timeout=10"

    tl = Server("Timberline", dsn(args.tl_port, args.tl_dsn), args.timeout)
    pg = Server("PostgreSQL", dsn(args.pg_port, args.pg_dsn), args.timeout)
    tl.connect()
    pg.connect()
    if args.load:
        load(args, tl, pg)
        if not args.files:
            return
    files = args.files or sorted(p for p in glob.glob(os.path.join(HERE, "*.sql"))
                                 if os.path.basename(p) != "schema.sql")
    totals = collections.Counter()
    report = []
    table = []
    for path in files:
        counts = collections.Counter()
        for case in corpus(path):
            ours, theirs = tl.answer(case.sql), pg.answer(case.sql)
            cls, diff = classify(ours, theirs)
            counts[cls] += 1
            name = os.path.basename(path)
            report.append({"file": name, "line": case.line, "source": case.source, "class": cls,
                           "diff": diff, "sql": case.sql,
                           "tl_error": list(ours[1:]) if ours[0] == "error" else None,
                           "pg_error": list(theirs[1:]) if theirs[0] == "error" else None})
            if args.verbose and cls != "identical":
                print(f"{name}:{case.line}: [{cls}] {case.source or ''}")
                print("    " + clip(" ".join(case.sql.split()), 400))
                print("    " + clip(diff or ""))
        totals.update(counts)
        table.append((os.path.basename(path), counts))
    width = max([len(n) for n, _ in table] + [5])
    print(f"{'file':<{width}}  {'total':>5}  " + "  ".join(f"{c:>10}" for c in CLASSES))
    for name, counts in table + [("total", totals)]:
        print(f"{name:<{width}}  {sum(counts.values()):>5}  " + "  ".join(f"{counts[c]:>10}" for c in CLASSES))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
