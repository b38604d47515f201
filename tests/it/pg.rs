//! The pg front end with a real client: startup parameters, simple and extended protocol, text and
//! binary results with standard type OIDs, empty queries, SQLSTATEs, recovery after errors.

use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

use crate::support::{batch, pg_connect, TestServer};
use crate::wire::startup;

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_parameters_and_types() {
    let server = TestServer::start();
    assert_eq!(server.ingest(&batch("pg", 10)).await.0, 202);
    let pg = server.pg().await;
    // tokio-postgres keeps nothing of ParameterStatus we can read, so ask the way drivers do.
    let row = pg
        .query_one(
            "SELECT current_setting('server_version_num')::int / 100 AS version",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.columns()[0].name(), "version");
    assert_eq!(row.get::<_, i64>(0), 1600);
    let v: String = pg.query_one("SELECT version()", &[]).await.unwrap().get(0);
    assert!(v.starts_with("PostgreSQL 16.6 (Timberline"), "{v}");

    // Binary results with standard OIDs (extended protocol).
    let stmt = pg
        .prepare("SELECT ts, msg, count(*) OVER () AS n, 1.5::double precision AS f, parse_failed FROM logs LIMIT 1")
        .await
        .unwrap();
    let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        vec![
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::INT8,
            Type::FLOAT8,
            Type::BOOL
        ]
    );
    assert_eq!(
        [
            Type::TIMESTAMPTZ.oid(),
            Type::TEXT.oid(),
            Type::INT8.oid(),
            Type::FLOAT8.oid(),
            Type::BOOL.oid()
        ],
        [1184, 25, 20, 701, 16]
    );
    let row = pg.query_one(&stmt, &[]).await.unwrap();
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["ts", "msg", "n", "f", "parse_failed"]);
    // Unaliased function calls are named after the function, as PostgreSQL does.
    let s = pg
        .prepare("SELECT count(*), max(ts), date_trunc('hour', ts) FROM logs GROUP BY 3")
        .await
        .unwrap();
    let names: Vec<&str> = s.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["count", "max", "date_trunc"]);
    let simple = pg.simple_query("SELECT count(*) FROM logs").await.unwrap();
    let col = simple.iter().find_map(|m| match m {
        SimpleQueryMessage::RowDescription(cols) => Some(cols[0].name().to_string()),
        _ => None,
    });
    assert_eq!(col.as_deref(), Some("count"));
    assert_eq!(row.get::<_, i64>(2), 10);
    assert_eq!(row.get::<_, f64>(3), 1.5);

    // Parameters, inferred from the plan.
    let n: i64 = pg
        .query_one(
            "SELECT count(*) FROM logs WHERE level = $1 AND msg <> $2",
            &[&"ERROR", &"x"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);

    // Text results (simple protocol) of the same values.
    let msgs = pg
        .simple_query("SELECT ts, level FROM logs WHERE msg = 'pg-1'")
        .await
        .unwrap();
    let row = msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(r),
        _ => None,
    });
    let row = row.expect("one row");
    assert!(
        row.get(0).unwrap().starts_with("2024-01-15 10:00:01"),
        "{:?}",
        row.get(0)
    );
    assert_eq!(row.get(1), Some("ERROR"));
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_carry_sqlstates_and_the_connection_stays_usable() {
    let server = TestServer::start();
    let pg = server.pg().await;
    let cases = [
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM logs", "42703"),
        ("SELEC 1", "42601"),
        ("SELECT no_such_function(1)", "42883"),
        ("SELECT match(1, 2)", "42883"),
        ("SELECT count(*) FROM logs WHERE nearest(ts)", "42883"),
        ("INSERT INTO logs (msg) VALUES ('x')", "25006"),
        ("CREATE TABLE t (a int)", "25006"),
        ("SELECT current_setting('no.such')", "42704"),
    ];
    for (sql, code) in cases {
        // Simple protocol.
        let e = pg.simple_query(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e), code, "simple: {sql}");
        // Extended protocol (Parse fails; recovery at Sync).
        let e = pg.query(sql, &[]).await.expect_err(sql);
        assert_eq!(sqlstate(&e), code, "extended: {sql}");
        let one: i64 = pg.query_one("SELECT 1::bigint", &[]).await.unwrap().get(0);
        assert_eq!(one, 1, "connection usable after {sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_and_comment_only_queries_and_session_statements() {
    let server = TestServer::start();
    let pg = server.pg().await;
    for q in ["", ";", "-- ping", "/* nothing */"] {
        let msgs = pg
            .simple_query(q)
            .await
            .unwrap_or_else(|e| panic!("{q:?}: {e}"));
        assert!(
            msgs.iter()
                .all(|m| !matches!(m, SimpleQueryMessage::Row(_))),
            "{q:?}"
        );
    }
    pg.batch_execute("BEGIN; SET application_name = 'x'; COMMIT")
        .await
        .unwrap();
    let msgs = pg
        .simple_query("SHOW transaction isolation level")
        .await
        .unwrap();
    let v = msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(v.as_deref(), Some("read committed"));
    // Multi-statement simple query returns each result.
    let msgs = pg.simple_query("SELECT 1; SELECT 2").await.unwrap();
    let rows = msgs
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(rows, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_user_is_refused_like_a_wrong_password() {
    let server = TestServer::start();
    let e = pg_connect(server.pg_port, "mallory")
        .await
        .err()
        .expect("refused");
    assert_eq!(sqlstate(&e), "28P01");
    // The server still accepts the right user.
    assert!(pg_connect(server.pg_port, "timberline").await.is_ok());
}

/// Sends `bytes` on a fresh connection and reads until the server closes it (or 10 s pass):
/// (what the server sent, whether it closed).
async fn exchange(addr: &str, bytes: &[u8]) -> (Vec<u8>, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    (buf, matches!(read, Ok(Ok(_)) | Ok(Err(_))))
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_the_wire_closes_only_that_connection() {
    // Trust authentication, so a hand-made startup reaches the query phase.
    let server = TestServer::start_with(&["--pg-auth", "trust"]);
    let addr = format!("127.0.0.1:{}", server.pg_port);
    for (what, junk) in [
        ("HTTP request", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("0xff bytes", vec![0xff; 64]),
        (
            "1 GiB startup length",
            [&(1u32 << 30).to_be_bytes()[..], &[0u8; 8]].concat(),
        ),
        (
            "protocol 2 startup",
            [&8u32.to_be_bytes()[..], &0x0002_0000u32.to_be_bytes()].concat(),
        ),
    ] {
        let (reply, closed) = exchange(&addr, &junk).await;
        assert!(closed, "{what}: the connection was left open");
        assert_eq!(
            reply.first(),
            Some(&b'E'),
            "{what}: no ErrorResponse: {reply:?}"
        );
        assert!(
            String::from_utf8_lossy(&reply).contains("08P01"),
            "{what}: {reply:?}"
        );
    }
    // After a good startup: an unknown message type, and a 1 GiB query length prefix. The
    // server answers with a FATAL ErrorResponse and closes; it never allocates the 1 GiB.
    for (what, msg) in [
        (
            "unknown message type",
            [&b"y"[..], &4u32.to_be_bytes()].concat(),
        ),
        (
            "1 GiB query",
            [&b"Q"[..], &(1u32 << 30).to_be_bytes(), b"SELECT 1"].concat(),
        ),
    ] {
        let (reply, closed) = exchange(&addr, &[startup("timberline"), msg].concat()).await;
        assert!(closed, "{what}: the connection was left open");
        let ready = reply
            .windows(6)
            .position(|w| w[0] == b'Z' && w[1..5] == 5u32.to_be_bytes());
        let after = &reply[ready.map_or(0, |p| p + 6)..];
        assert_eq!(
            after.first(),
            Some(&b'E'),
            "{what}: no ErrorResponse after ReadyForQuery: {reply:?}"
        );
    }
    // Every other connection is unaffected.
    let pg = crate::support::pg_connect(server.pg_port, "timberline")
        .await
        .expect("connect");
    let one: i64 = pg.query_one("SELECT 1::bigint", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn execute_row_limits_suspend_the_portal() {
    let server = TestServer::start();
    let events: Vec<_> = (0..25)
        .map(|i| serde_json::json!({"timestamp": format!("2024-01-15T10:00:{i:02}Z"), "level": "INFO", "msg": format!("m{i}")}))
        .collect();
    server.ingest_ndjson(events).await;
    let mut pg = server.pg().await;
    let tx = pg.transaction().await.expect("begin");
    let stmt = tx
        .prepare("SELECT msg FROM logs ORDER BY ts")
        .await
        .expect("prepare");
    let portal = tx.bind(&stmt, &[]).await.expect("bind");
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        // Execute with max_rows = 10: the server sends 10 rows and PortalSuspended.
        let rows = tx.query_portal(&portal, 10).await.expect("execute");
        pages += 1;
        assert!(rows.len() <= 10, "page {pages} has {} rows", rows.len());
        if rows.is_empty() {
            break;
        }
        got.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    assert_eq!(pages, 4, "10 + 10 + 5 rows, then an empty page");
    let want: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    tx.commit().await.expect("commit");
}
