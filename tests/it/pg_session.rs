//! pg sessions as real clients see them: SCRAM/md5/trust authentication, users bound to
//! tenants (and HTTP API keys too), per-session `SET`/`SHOW`/`current_setting`, unknown settings
//! warned about, `statement_timeout` and CancelRequest stopping a query with 57014, and TLS.

use std::process::Command;

use serde_json::json;
use tokio_postgres::NoTls;

use crate::support::{bin, psql, TestServer};

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default()
}

async fn connect(port: u16, params: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) =
        tokio_postgres::connect(&format!("host=127.0.0.1 port={port} {params}"), NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// count(*), distinct tenants, and the first tenant and service of `logs` as `c` sees it.
async fn count(c: &tokio_postgres::Client) -> (i64, i64, String, String) {
    let row = c
        .query_one(
            "SELECT count(*), count(DISTINCT tenant), min(tenant), min(service) FROM logs",
            &[],
        )
        .await
        .expect("count");
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// The first value of the first row of a simple query.
async fn show(c: &tokio_postgres::Client, q: &str) -> String {
    let rows = c.simple_query(q).await.expect(q);
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a row")
}

/// A query that runs for many seconds unless stopped.
const SLOW: &str = "SELECT count(*) FROM generate_series(1, 100000000000) AS t(i) WHERE i % 7 = 3";

#[tokio::test(flavor = "multi_thread")]
async fn scram_md5_and_trust_authentication() {
    let scram = TestServer::start();
    let ok = connect(scram.pg_port, "user=timberline password=timberline").await;
    assert!(ok.is_ok(), "{:?}", ok.err());
    let bad = connect(scram.pg_port, "user=timberline password=wrong").await;
    assert_eq!(
        sqlstate(&bad.err().expect("wrong password refused")),
        "28P01"
    );
    let none = connect(scram.pg_port, "user=nobody password=timberline").await;
    assert_eq!(
        sqlstate(&none.err().expect("unknown user refused")),
        "28P01"
    );
    // psql (libpq) speaks SCRAM too, and sees the server's PostgreSQL identity.
    let out = psql(
        &format!("host=127.0.0.1 port={} user=timberline", scram.pg_port),
        "timberline",
        "SHOW server_version",
    );
    assert_eq!(text(&out.stdout).trim(), "16.6", "{}", text(&out.stderr));

    // TIMBERLINE_PASSWORD replaces the demo password.
    let custom = TestServer::start_with(&["--password", "s3cret"]);
    assert!(connect(custom.pg_port, "user=timberline password=s3cret")
        .await
        .is_ok());
    let old = connect(custom.pg_port, "user=timberline password=timberline").await;
    assert_eq!(
        sqlstate(&old.err().expect("demo password refused")),
        "28P01"
    );

    let md5 = TestServer::start_with(&["--pg-auth", "md5"]);
    assert!(connect(md5.pg_port, "user=timberline password=timberline")
        .await
        .is_ok());
    // libpq (psql) answers md5 too.
    let out = psql(
        &format!("host=127.0.0.1 port={} user=timberline", md5.pg_port),
        "timberline",
        "SELECT 1",
    );
    assert_eq!(text(&out.stdout).trim(), "1", "{}", text(&out.stderr));
    let bad = connect(md5.pg_port, "user=timberline password=nope").await;
    assert_eq!(sqlstate(&bad.err().expect("md5 wrong password")), "28P01");

    let trust = TestServer::start_with(&["--pg-auth", "trust"]);
    assert!(connect(trust.pg_port, "user=timberline").await.is_ok());
    let e = connect(trust.pg_port, "user=mallory").await;
    assert_eq!(
        sqlstate(&e.err().expect("unknown user, even on trust")),
        "28P01"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn users_and_api_keys_see_only_their_tenant() {
    let server = TestServer::start();
    let data = server.dir.path();
    let add = Command::new(bin())
        .args(["user", "add", "ana", "--tenant", "acme", "--data-dir"])
        .arg(data)
        .env("TIMBERLINE_NEW_PASSWORD", "pw-ana")
        .output()
        .expect("user add");
    assert!(add.status.success(), "{}", text(&add.stderr));
    let key = Command::new(bin())
        .args(["key", "add", "--tenant", "acme", "--data-dir"])
        .arg(data)
        .output()
        .expect("key add");
    assert!(key.status.success(), "{}", text(&key.stderr));
    let acme_key = text(&key.stdout).trim().to_string();
    assert!(acme_key.starts_with("tl_"), "{acme_key}");

    let batch = |service: &str, n: usize| {
        let logs: Vec<_> = (0..n)
            .map(|i| json!({"timestamp": format!("2024-01-15T10:00:{i:02}Z"), "level": "INFO", "msg": format!("{service} {i}")}))
            .collect();
        serde_json::to_vec(&json!({"source": {"service": service, "host": "h"}, "logs": logs}))
            .expect("json")
    };
    let ct = ("content-type", "application/json");
    let bearer = format!("Bearer {acme_key}");
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[ct, ("authorization", &bearer)],
            batch("acme-svc", 5),
        )
        .await;
    assert_eq!((s, &b["accepted"]), (202, &json!(5)), "{b}");
    let (s, _) = server
        .post_raw("/v1/ingest", &[ct], batch("default-svc", 7))
        .await;
    assert_eq!(s, 202);
    // Without a valid key nothing is accepted, and the reason says why.
    for auth in ["Bearer nope", "Basic dGltYmVybGluZQ=="] {
        let (s, b) = server
            .post_raw("/v1/ingest", &[ct, ("authorization", auth)], batch("x", 1))
            .await;
        assert_eq!(s, 401, "{auth}: {b}");
        assert!(b["error"].as_str().unwrap_or("").contains("Bearer"), "{b}");
    }

    let ana = connect(server.pg_port, "user=ana password=pw-ana")
        .await
        .expect("ana");
    let own = server.pg().await;
    let wrong = connect(server.pg_port, "user=ana password=timberline").await;
    assert_eq!(
        sqlstate(&wrong.err().expect("ana's password only")),
        "28P01"
    );
    // pg_roles lists a user's own role and the administrator, never another tenant's users;
    // the administrator sees every user.
    let bob = Command::new(bin())
        .args(["user", "add", "bob", "--tenant", "other", "--data-dir"])
        .arg(data)
        .env("TIMBERLINE_NEW_PASSWORD", "pw-bob")
        .output()
        .expect("user add");
    assert!(bob.status.success(), "{}", text(&bob.stderr));
    async fn logins(c: &tokio_postgres::Client) -> Vec<String> {
        c.query(
            "SELECT rolname::text FROM pg_roles WHERE rolcanlogin ORDER BY 1",
            &[],
        )
        .await
        .expect("pg_roles")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
    }
    assert_eq!(logins(&ana).await, ["ana", "timberline"]);
    assert_eq!(logins(&own).await, ["ana", "bob", "timberline"]);
    for phase in ["hot", "flushed"] {
        assert_eq!(
            count(&ana).await,
            (5, 1, "acme".into(), "acme-svc".into()),
            "{phase}"
        );
        assert_eq!(
            count(&own).await,
            (7, 1, "default".into(), "default-svc".into()),
            "{phase}"
        );
        // count(*) answered from the segments' count tables (once flushed) sees only the
        // session's tenant too.
        for (c, n) in [(&ana, 5i64), (&own, 7)] {
            let row = c
                .query_one("SELECT count(*) FROM logs WHERE level = 'INFO'", &[])
                .await
                .expect("count");
            assert_eq!(row.get::<_, i64>(0), n, "{phase}");
        }
        // nearest() searches only the session's tenant.
        let near = ana
            .query(
                "SELECT service FROM logs WHERE nearest(ts, '2024-01-15T10:00:03Z', 20)",
                &[],
            )
            .await
            .expect("nearest");
        assert_eq!(near.len(), 5, "{phase}");
        assert!(near.iter().all(|r| r.get::<_, String>(0) == "acme-svc"));
        let (s, b) = server
            .post_raw(
                "/query",
                &[ct, ("authorization", &bearer)],
                br#"{"timestamp":"2024-01-15T10:00:03Z","count":50}"#.to_vec(),
            )
            .await;
        assert_eq!(
            (s, b["entries"].as_array().map(Vec::len)),
            (200, Some(5)),
            "{phase}: {b}"
        );
        if phase == "hot" {
            server.flush().await;
        }
    }
    let segs = ana
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE tenant <> 'acme') FROM segments",
            &[],
        )
        .await
        .expect("segments");
    assert_eq!((segs.get::<_, i64>(0), segs.get::<_, i64>(1)), (1, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_are_per_session() {
    let server = TestServer::start();
    let a = server.pg().await;
    let b = server.pg().await;
    a.batch_execute("SET application_name = 'grafana'; SET TIME ZONE 'Europe/Paris'; SET search_path TO public, \"$user\"")
        .await
        .expect("set");
    assert_eq!(show(&a, "SHOW application_name").await, "grafana");
    assert_eq!(show(&a, "SHOW timezone").await, "Europe/Paris");
    assert_eq!(show(&a, "SHOW search_path").await, "public, \"$user\"");
    assert_eq!(
        show(&a, "SELECT current_setting('application_name')").await,
        "grafana"
    );
    assert_eq!(
        show(&b, "SHOW application_name").await,
        "",
        "another session is untouched"
    );
    assert_eq!(show(&b, "SELECT current_setting('TimeZone')").await, "UTC");
    assert_eq!(
        show(&a, "SHOW transaction isolation level").await,
        "read committed"
    );
    assert_eq!(
        show(&a, "SELECT current_setting('no.such', true) IS NULL").await,
        "t"
    );
    // SHOW's column is PostgreSQL's spelling of the name.
    let cols = a.simple_query("SHOW timezone").await.expect("show");
    let name = cols.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::RowDescription(d) => Some(d[0].name().to_string()),
        _ => None,
    });
    assert_eq!(name.as_deref(), Some("TimeZone"));
    let all = a.simple_query("SHOW ALL").await.expect("show all");
    assert!(all.len() > 20);
    a.batch_execute("RESET ALL").await.expect("reset");
    assert_eq!(show(&a, "SHOW application_name").await, "");
    a.batch_execute("SET application_name = 'x'; DISCARD ALL")
        .await
        .expect("discard");
    assert_eq!(show(&a, "SHOW application_name").await, "");
    // Errors PostgreSQL gives, with the connection still usable.
    for (sql, code) in [
        ("SET server_version = '1'", "55P02"),
        ("SET statement_timeout = 'soon'", "22023"),
        ("SET ROLE admin", "0A000"),
        ("SHOW no_such_setting", "42704"),
        ("SELECT set_config('search_path', 'x', false)", "XX000"),
    ] {
        let e = a.batch_execute(sql).await.err().expect(sql);
        if code != "XX000" {
            assert_eq!(sqlstate(&e), code, "{sql}: {e}");
        }
    }
    // Statements a read-only database answers.
    a.batch_execute(
        "BEGIN; SET TRANSACTION ISOLATION LEVEL READ COMMITTED; \
         SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; COMMIT; \
         CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all()",
    )
    .await
    .expect("session statements");

    // An unknown setting is a WARNING, not silent success, and its value is kept.
    let out = psql(
        &format!("host=127.0.0.1 port={} user=timberline", server.pg_port),
        "timberline",
        "SET no_such_thing = 'on'; SHOW no_such_thing",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("WARNING:  unrecognized configuration parameter \"no_such_thing\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).lines().last(), Some("on"));
}

#[tokio::test(flavor = "multi_thread")]
async fn statement_timeout_and_cancel_stop_a_query_with_57014() {
    let server = TestServer::start();
    let pg = server.pg().await;
    pg.batch_execute("SET statement_timeout = '300ms'")
        .await
        .expect("set");
    let e = pg.query(SLOW, &[]).await.err().expect("timed out");
    assert_eq!(sqlstate(&e), "57014");
    assert!(message(&e).contains("statement timeout"), "{e:?}");
    pg.batch_execute("RESET statement_timeout")
        .await
        .expect("reset");
    let one: i64 = pg
        .query_one("SELECT 1::bigint", &[])
        .await
        .expect("usable")
        .get(0);
    assert_eq!(one, 1);

    // A CancelRequest from another socket stops the running query.
    let token = pg.cancel_token();
    let running = tokio::spawn(async move {
        let r = pg.simple_query(SLOW).await;
        (r.err(), pg)
    });
    // The cancel only lands once the query runs: repeat it until the query has ended.
    let mut sent = 0;
    while !running.is_finished() && sent < 600 {
        token.cancel_query(NoTls).await.expect("cancel request");
        sent += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (err, pg) = running.await.expect("query task");
    let err = err.expect("the query was cancelled, not completed");
    assert_eq!(sqlstate(&err), "57014");
    assert!(message(&err).contains("user request"), "{err:?}");
    let n: i64 = pg
        .query_one("SELECT 2::bigint", &[])
        .await
        .expect("usable")
        .get(0);
    assert_eq!(n, 2);
}

/// A self-signed certificate for 127.0.0.1 made with the openssl CLI.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", text(&out.stderr));
    (cert, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_configured_certificate_and_require_tls() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(certs.path());
    let (cert_s, key_s) = (
        cert.to_string_lossy().to_string(),
        key.to_string_lossy().to_string(),
    );
    let server = TestServer::start_with(&[
        "--tls-cert",
        &cert_s,
        "--tls-key",
        &key_s,
        "--require-tls",
        "true",
    ]);
    let base = format!("host=127.0.0.1 port={} user=timberline", server.pg_port);
    // verify-full: the client checks the chain and the name against our certificate.
    let out = psql(
        &format!("{base} sslmode=verify-full sslrootcert={cert_s}"),
        "timberline",
        "SELECT true",
    );
    assert!(out.status.success(), "verify-full: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "t");
    let out = psql(&format!("{base} sslmode=require"), "timberline", "SELECT 1");
    assert!(out.status.success(), "require: {}", text(&out.stderr));
    // Plaintext is refused with a reason.
    let out = psql(&format!("{base} sslmode=disable"), "timberline", "SELECT 1");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("only TLS connections"),
        "{}",
        text(&out.stderr)
    );
    // A server started with half a TLS configuration says what is missing.
    let half = Command::new(bin())
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--pg-addr",
            "127.0.0.1:0",
            "--tls-cert",
            &cert_s,
            "--data-dir",
        ])
        .arg(certs.path().join("data"))
        .output()
        .expect("serve");
    assert!(!half.status.success());
    assert!(
        text(&half.stderr).contains("--tls-key"),
        "{}",
        text(&half.stderr)
    );
}
