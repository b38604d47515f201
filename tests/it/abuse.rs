//! The abuse suite: every attack the security probe found, replayed against a real server with
//! bounded sizes. After each, the server must still answer `/health` and a good login, and stay
//! within its memory budget.

use std::net::IpAddr;
use std::process::Command;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::NoTls;

use crate::support::{bin, http, pg_login as login, TestServer, API_KEY};
use crate::wire::{cstr, execute, msg, parse, query, startup, sync, tcp_from, Msg, Wire, PATIENCE};

/// Idle connections on every listener.
#[path = "abuse_idle.rs"]
mod idle;

const OTHER: [u8; 4] = [127, 0, 0, 2];

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// The server answers `/health` and a good login runs a query.
pub(crate) async fn still_serving(server: &TestServer) {
    let health = http()
        .get(format!("{}/health", server.http))
        .send()
        .await
        .expect("/health");
    assert_eq!(health.status(), 200);
    let pg = server.pg().await;
    let one: i64 = pg
        .query_one("SELECT 1::bigint", &[])
        .await
        .expect("SELECT 1")
        .get(0);
    assert_eq!(one, 1);
}

/// The server's peak resident memory, from /proc.
fn peak_rss_mib(server: &TestServer) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024
}

fn http_port(server: &TestServer) -> u16 {
    server
        .http
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("http port")
}

/// Sends raw bytes on a fresh HTTP connection and reads the reply's status line (or "" when
/// the server closes without one).
async fn http_raw(port: u16, from: IpAddr, bytes: &[u8]) -> (String, String) {
    let mut s = tcp_from(from, port).await;
    s.write_all(bytes).await.expect("write");
    let text = tokio::time::timeout(PATIENCE, http_answer(&mut s))
        .await
        .expect("no answer and no close");
    let status = text.lines().next().unwrap_or("").to_string();
    (status, text)
}

/// What the server answers on `s` (a JSON body), up to the end of it or of the stream.
async fn http_answer(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_login_ends_its_connection_and_nothing_sent_after_it_runs() {
    let server = TestServer::start_with(&[
        "--pg-auth",
        "md5",
        "--pg-max-connections",
        "3",
        "--max-connections-per-address",
        "3",
        "--auth-delay",
        "0",
    ]);
    let mut held = Vec::new();
    for _ in 0..6 {
        let mut w = Wire::connect(server.pg_port).await;
        w.send(&startup("timberline")).await;
        let asked = w.recv().await.expect("authentication request");
        assert_eq!(
            asked.auth_code(),
            Some(5),
            "md5 password request: {asked:?}"
        );
        // A wrong password, with a query pipelined behind it.
        let wrong = msg(b'p', &cstr("md50123456789abcdef0123456789abcdef"));
        w.send(&[wrong, query("SELECT count(*) FROM logs")].concat())
            .await;
        let got = w.until_closed().await;
        assert_eq!(
            got.len(),
            1,
            "the FATAL, then the close, nothing else: {got:?}"
        );
        assert_eq!((got[0].tag, got[0].sqlstate()), (b'E', "28P01".into()));
        assert_eq!(got[0].field(b'S').as_deref(), Some("FATAL"));
        held.push(w); // the client keeps its end open
    }
    // Six failed logins' sockets are still open on the client's side, and only three
    // connections are allowed: the server ended them all, so a good login gets in.
    still_serving(&server).await;

    // A query sent before the exchange finishes ends the connection too.
    let mut w = Wire::connect(server.pg_port).await;
    w.send(&[startup("timberline"), query("SELECT 1")].concat())
        .await;
    let got = w.until_closed().await;
    let last = got.last().expect("an answer");
    assert_eq!(last.tag, b'E', "{got:?}");
    assert_eq!(last.field(b'S').as_deref(), Some("FATAL"), "{got:?}");
    assert!(
        !got.iter().any(|m| m.tag == b'T' || m.tag == b'D'),
        "{got:?}"
    );
}

/// The SCRAM server-first message for `user` (after a client-first with an empty name, as
/// libpq sends).
async fn server_first(port: u16, user: &str) -> String {
    let mut w = Wire::connect(port).await;
    w.send(&startup(user)).await;
    let asked = w.recv().await.expect("authentication request");
    assert_eq!(
        asked.auth_code(),
        Some(10),
        "{user}: SASL expected: {asked:?}"
    );
    let client_first = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO";
    let body = [
        cstr("SCRAM-SHA-256"),
        (client_first.len() as i32).to_be_bytes().to_vec(),
        client_first.to_vec(),
    ]
    .concat();
    w.send(&msg(b'p', &body)).await;
    let reply = w.recv().await.expect("server-first");
    assert_eq!(
        reply.auth_code(),
        Some(11),
        "{user}: SASLContinue expected: {reply:?}"
    );
    String::from_utf8_lossy(&reply.body[4..]).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_users_get_the_same_exchange_and_refusal_as_known_ones() {
    let server = TestServer::start_with(&["--auth-delay", "0"]);
    let salt = |first: &str| {
        first
            .split(',')
            .find_map(|p| p.strip_prefix("s="))
            .expect("a salt")
            .to_string()
    };
    let known = server_first(server.pg_port, "timberline").await;
    let unknown = server_first(server.pg_port, "nobody").await;
    let again = server_first(server.pg_port, "nobody").await;
    for first in [&known, &unknown] {
        assert!(
            first.contains("r=rOprNGfwEbeRWgbNEkqO") && first.contains(",i=4096"),
            "{first}"
        );
    }
    assert_eq!(
        salt(&unknown).len(),
        salt(&known).len(),
        "{unknown} / {known}"
    );
    assert_eq!(
        salt(&unknown),
        salt(&again),
        "an unknown user's salt must not change"
    );

    let wrong = login(server.pg_port, "timberline", "wrong")
        .await
        .err()
        .expect("refused");
    let nobody = login(server.pg_port, "nobody", "wrong")
        .await
        .err()
        .expect("refused");
    assert_eq!(
        (sqlstate(&wrong), sqlstate(&nobody)),
        ("28P01".into(), "28P01".into())
    );
    let text = |e: &tokio_postgres::Error| e.as_db_error().map(|d| d.message().to_string());
    assert_eq!(
        text(&wrong).as_deref(),
        Some("password authentication failed for user \"timberline\"")
    );
    assert_eq!(
        text(&nobody).as_deref(),
        Some("password authentication failed for user \"nobody\"")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_from_one_address_are_answered_ever_later() {
    let server = TestServer::start_with(&["--auth-delay", "100ms"]);
    let started = std::time::Instant::now();
    for _ in 0..4 {
        let e = login(server.pg_port, "timberline", "guess")
            .await
            .err()
            .expect("refused");
        assert_eq!(sqlstate(&e), "28P01");
    }
    // 100 + 200 + 400 + 800 ms at the least: a guesser from one address gets a few a second.
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(1500), "{took:?}");
    // A right password is not delayed by them.
    still_serving(&server).await;
    // Guesses in parallel (from another address, with no failures yet) are answered one
    // after another: the fourth waits 100 + 200 + 400 + 800 ms, not 800 ms.
    let started = std::time::Instant::now();
    let guesses = (0..4).map(|_| login_from(OTHER.into(), server.pg_port, "guess"));
    let refused = futures::future::join_all(guesses).await;
    assert!(refused.iter().all(|r| r.is_err()));
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(1500), "{took:?}");
}

/// A login as `timberline` from a chosen loopback address.
async fn login_from(
    local: IpAddr,
    port: u16,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let tcp = tcp_from(local, port).await;
    let config: tokio_postgres::Config =
        format!("user=timberline password={password} dbname=timberline")
            .parse()
            .expect("config");
    let (client, conn) = config.connect_raw(tcp, NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_sasl_messages_get_a_protocol_error_not_a_dropped_socket() {
    let server = TestServer::start_with(&["--auth-delay", "0"]);
    let method = cstr("SCRAM-SHA-256");
    for (what, bytes) in [
        ("empty", msg(b'p', &[])),
        ("no length", msg(b'p', &method)),
        (
            "length past the end",
            msg(
                b'p',
                &[
                    method.clone(),
                    100i32.to_be_bytes().to_vec(),
                    b"n,,".to_vec(),
                ]
                .concat(),
            ),
        ),
        (
            "negative length",
            msg(
                b'p',
                &[method.clone(), (-7i32).to_be_bytes().to_vec()].concat(),
            ),
        ),
        ("frame length below 4", vec![b'p', 0, 0, 0, 2, 1, 2, 3]),
    ] {
        let mut w = Wire::connect(server.pg_port).await;
        w.send(&startup("timberline")).await;
        assert_eq!(w.recv().await.and_then(|m| m.auth_code()), Some(10));
        w.send(&bytes).await;
        let got = w.until_closed().await;
        let err = got
            .iter()
            .find(|m| m.tag == b'E')
            .unwrap_or_else(|| panic!("{what}: no ErrorResponse: {got:?}"));
        assert_eq!(err.sqlstate(), "08P01", "{what}: {err:?}");
        assert!(
            !got.iter().any(|m| m.auth_code() == Some(0)),
            "{what}: authenticated: {got:?}"
        );
    }
    still_serving(&server).await;
}

fn bind(params: &[&[u8]], claimed: u16, param_formats: &[i16], raw_len: Option<i32>) -> Vec<u8> {
    let mut body = [cstr(""), cstr("")].concat();
    body.extend_from_slice(&(param_formats.len() as u16).to_be_bytes());
    for f in param_formats {
        body.extend_from_slice(&f.to_be_bytes());
    }
    body.extend_from_slice(&claimed.to_be_bytes());
    for p in params {
        let len = raw_len.unwrap_or(p.len() as i32);
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(p);
    }
    body.extend_from_slice(&0u16.to_be_bytes());
    msg(b'B', &body)
}

fn tags(got: &[Msg]) -> String {
    got.iter().map(|m| m.tag as char).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_protocol_messages_get_errors_and_the_server_lives() {
    let server = TestServer::start_with(&["--pg-auth", "trust"]);
    let port = server.pg_port;

    // A Bind whose parameter claims more bytes than the message holds, and one that claims
    // more parameters than it sends: the connection ends with 08P01.
    for (what, b) in [
        (
            "parameter longer than its message",
            bind(&[b"abc"], 1, &[], Some(100_000)),
        ),
        ("more parameters than sent", bind(&[b"abc"], 3, &[], None)),
    ] {
        let mut w = Wire::trusted(port).await;
        w.send(&[parse("SELECT $1::text"), b, sync()].concat())
            .await;
        let got = w.until_closed().await;
        let err = got
            .iter()
            .find(|m| m.tag == b'E')
            .unwrap_or_else(|| panic!("{what}: {}", tags(&got)));
        assert_eq!(err.sqlstate(), "08P01", "{what}: {err:?}");
    }

    let mut w = Wire::trusted(port).await;
    // Two parameter formats for one parameter: refused, and the connection goes on.
    let err = w
        .error_of(
            &[
                parse("SELECT $1::text"),
                bind(&[b"abc"], 1, &[0, 0], None),
                execute(0),
                sync(),
            ]
            .concat(),
        )
        .await;
    assert_eq!(err.sqlstate(), "08P01", "{err:?}");
    // Execute with max_rows −1 means "all rows", as in PostgreSQL.
    w.send(
        &[
            parse("SELECT 41 + 1 AS answer"),
            bind(&[], 0, &[], None),
            execute(-1),
            sync(),
        ]
        .concat(),
    )
    .await;
    let got = w.until(b'Z').await;
    assert!(
        tags(&got).contains("D") && tags(&got).contains("C"),
        "{}: {got:?}",
        tags(&got)
    );
    // A placeholder number nothing can be sized by.
    let err = w
        .error_of(
            &[
                parse("SELECT $4000000000::int"),
                msg(b'D', &[b'S', 0]),
                sync(),
            ]
            .concat(),
        )
        .await;
    assert_eq!(err.sqlstate(), "42P02", "{err:?}");
    // SET with a multibyte value.
    w.send(&query("SET a.b = 'üü'")).await;
    let got = w.until(b'Z').await;
    assert!(!got.iter().any(|m| m.tag == b'E'), "{got:?}");
    w.send(&query("SELECT current_setting('a.b')")).await;
    let got = w.until(b'Z').await;
    assert!(
        got.iter()
            .any(|m| m.tag == b'D' && String::from_utf8_lossy(&m.body).contains("üü")),
        "{got:?}"
    );
    w.send(&query(
        "SET application_name = 'ü ü'; SET SESSION x.y TO 'ééé'",
    ))
    .await;
    let got = w.until(b'Z').await;
    assert!(!got.iter().any(|m| m.tag == b'E'), "{got:?}");
    drop(w);
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn frames_that_break_the_protocol_layout_end_the_connection_before_they_are_decoded() {
    let server = TestServer::start_with(&["--pg-auth", "trust", "--pg-max-message", "1MiB"]);
    let smuggled = [&b"SELECT 'first'\0"[..], &query("SELECT 'smuggled'")].concat();
    for (what, frame) in [
        // Found by the pg_session fuzzer: a type count running past the frame made pgwire's
        // decoder read beyond it and panic.
        (
            "parse count past its frame",
            msg(b'P', b"\0SELECTc\0\0D\0\0\0\x06P\0E\0\0\0"),
        ),
        // Bytes after a Query's string were decoded as a next message.
        ("query with a second one inside", msg(b'Q', &smuggled)),
        (
            "negative bind parameter length",
            bind(&[b""], 1, &[], Some(-7)),
        ),
        ("function call", msg(b'F', &[0; 8])),
        ("sync with a body", msg(b'S', b"x")),
        // Refused from its header: the 2 MiB are never waited for.
        (
            "message past --pg-max-message",
            [&b"Q"[..], &(2u32 << 20).to_be_bytes(), b"SELECT"].concat(),
        ),
    ] {
        let mut w = Wire::trusted(server.pg_port).await;
        w.send(&[query("SELECT 'before'"), frame].concat()).await;
        let got = w.until_closed().await;
        let text: Vec<String> = got
            .iter()
            .filter(|m| m.tag == b'D')
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .collect();
        assert!(
            text.iter().any(|t| t.contains("before")),
            "{what}: the query before it was not answered: {got:?}"
        );
        assert!(
            !text
                .iter()
                .any(|t| t.contains("smuggled") || t.contains("first")),
            "{what}: a malformed frame ran: {got:?}"
        );
        let err = got
            .iter()
            .find(|m| m.tag == b'E')
            .unwrap_or_else(|| panic!("{what}: no error: {}", tags(&got)));
        assert_eq!(err.sqlstate(), "08P01", "{what}: {err:?}");
        assert_eq!(err.field(b'S').as_deref(), Some("FATAL"), "{what}: {err:?}");
    }
    still_serving(&server).await;
}

/// The start of a POST to /v1/ingest with `headers`, and no body yet.
fn post_head(headers: &str, length: usize) -> Vec<u8> {
    format!(
        "POST /v1/ingest HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n{headers}\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn http_checks_the_key_before_the_body_and_bounds_slow_clients() {
    let server =
        TestServer::start_with(&["--http-header-timeout", "1s", "--http-body-timeout", "1s"]);
    let port = http_port(&server);
    let me: IpAddr = [127, 0, 0, 1].into();
    // 59 MiB announced, not a byte sent: no key means 401 at once.
    let (status, text) = http_raw(port, me, &post_head("", 59 << 20)).await;
    assert!(status.contains("401"), "{text}");
    assert!(text.contains("\"error\""), "{text}");
    // A key, but more than the limit announced: 413 at once.
    let auth = format!("authorization: Bearer {API_KEY}\r\n");
    let (status, text) = http_raw(port, me, &post_head(&auth, 100 << 20)).await;
    assert!(status.contains("413"), "{text}");
    // A body that stops coming: 408 once its time is up.
    let (status, text) = http_raw(
        port,
        me,
        &[post_head(&auth, 1000), b"{\"logs\":".to_vec()].concat(),
    )
    .await;
    assert!(status.contains("408"), "{text}");
    // Headers that never finish: the connection is closed.
    let (status, text) = http_raw(port, me, b"POST /v1/ingest HTTP/1.1\r\nhost: t\r\n").await;
    assert!(!status.contains("200") && !status.contains("202"), "{text}");
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_take_every_connection() {
    let server = TestServer::start_with(&[
        "--max-connections-per-address",
        "4",
        "--http-header-timeout",
        "60s",
        "--http-body-timeout",
        "60s",
    ]);
    let port = http_port(&server);
    // Four connections each busy with a request (a body still coming, its 100 Continue
    // read): an idle one would be closed to make room, a busy one is not.
    let auth = format!("authorization: Bearer {API_KEY}\r\nexpect: 100-continue\r\n");
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tcp_from([127, 0, 0, 1].into(), port).await;
        s.write_all(&post_head(&auth, 1000)).await.expect("write");
        let mut answer = [0u8; 25];
        tokio::time::timeout(PATIENCE, s.read_exact(&mut answer))
            .await
            .expect("100 Continue in time")
            .expect("read");
        assert!(answer.starts_with(b"HTTP/1.1 100"), "{answer:?}");
        s.write_all(b"{\"logs\":").await.expect("write");
        held.push(s);
    }
    // The server counts a connection when it accepts it; retry until the fifth is refused.
    let mut refused = None;
    for _ in 0..100 {
        let (status, text) = http_raw(
            port,
            [127, 0, 0, 1].into(),
            b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n",
        )
        .await;
        if status.contains("503") {
            refused = Some(text);
            break;
        }
    }
    let text = refused.expect("the fifth connection from one address was never refused");
    assert!(
        text.contains("too many connections from this address"),
        "{text}"
    );
    // Another address is served.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from(OTHER))
        .build()
        .expect("client");
    let health = other
        .get(format!("{}/health", server.http))
        .send()
        .await
        .expect("/health");
    assert_eq!(health.status(), 200);

    // The same on the pg port for logged-in sessions: FATAL 53300 for the fifth, a login
    // from elsewhere works.
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let session = login_from([127, 0, 0, 1].into(), server.pg_port, "timberline").await;
        sessions.push(session.expect("login"));
    }
    let e = login_from([127, 0, 0, 1].into(), server.pg_port, "timberline")
        .await
        .err()
        .expect("the fifth pg session was admitted");
    assert_eq!(sqlstate(&e), "53300", "{e}");
    let client = login_from(IpAddr::from(OTHER), server.pg_port, "timberline")
        .await
        .expect("login from 127.0.0.2");
    let one: i64 = client
        .query_one("SELECT 1::bigint", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_in_flight_are_bounded_across_requests() {
    let server = TestServer::start_with(&[
        "--max-inflight-body-bytes",
        "1MiB",
        "--http-body-timeout",
        "60s",
    ]);
    let port = http_port(&server);
    // Two uploads that stop part way hold 600 KB each: together more than the 1 MiB budget,
    // so whichever reaches past it first is refused (503, retry) while the other waits.
    let auth = format!("authorization: Bearer {API_KEY}\r\n");
    let mut uploads = Vec::new();
    for _ in 0..2 {
        let mut slow = tcp_from([127, 0, 0, 1].into(), port).await;
        slow.write_all(&post_head(&auth, 2_000_000))
            .await
            .expect("head");
        slow.write_all(&vec![b' '; 600_000]).await.expect("body");
        uploads.push(slow);
    }
    let (first, second) = uploads.split_at_mut(1);
    let answer = tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            a = http_answer(&mut first[0]) => a,
            b = http_answer(&mut second[0]) => b,
        }
    })
    .await
    .expect("neither upload was refused while 1.2 MB of a 1 MiB budget were sent");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry"), "{answer}");
    drop(uploads);
    // The refused bytes went back to the budget: a request fits again.
    let event = json!({"logs": [{"msg": "x".repeat(300_000)}]})
        .to_string()
        .into_bytes();
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (s, b) = server
            .post_raw(
                "/v1/ingest",
                &[("content-type", "application/json")],
                event.clone(),
            )
            .await;
        if s == 202 {
            break;
        }
        assert_eq!(s, 503, "{b}");
        assert!(
            std::time::Instant::now() < deadline,
            "the budget never came back: {b}"
        );
    }
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_sized_before_it_is_built_and_labels_are_capped() {
    let server =
        TestServer::start_with(&["--max-buffer-bytes", "4194304", "--max-label-bytes", "1024"]);
    // 100 KB of source attributes copied into 10,000 events would be 1 GB.
    let logs: Vec<Value> = (0..10_000).map(|i| json!({"msg": i})).collect();
    let amplified =
        json!({"source": {"service": "s", "region": "r".repeat(100_000)}, "logs": logs});
    let (s, b) = server.ingest(&amplified).await;
    assert_eq!(s, 413, "{b}");
    assert!(b["error"].as_str().unwrap_or("").contains("source"), "{b}");
    // One event with a 2 MB service name: stored, the name cut and the row flagged.
    let (s, b) = server
        .ingest(&json!({"logs": [{"service": "s".repeat(2_000_000), "msg": "long label"}]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let pg = server.pg().await;
    let row = pg
        .query_one(
            "SELECT length(service), truncated FROM logs WHERE msg = 'long label'",
            &[],
        )
        .await
        .expect("query");
    assert_eq!((row.get::<_, i32>(0), row.get::<_, bool>(1)), (1024, true));
    // A batch larger than the whole hot buffer: 413, not an early flush of a buffer it overruns.
    let logs: Vec<Value> = (0..10_000)
        .map(|i| json!({"msg": format!("{i} {}", "m".repeat(600))}))
        .collect();
    let (s, b) = server.ingest(&json!({"logs": logs})).await;
    assert_eq!(s, 413, "{b}");
    assert!(
        b["error"].as_str().unwrap_or("").contains("hot buffer"),
        "{b}"
    );
    still_serving(&server).await;
    let peak = peak_rss_mib(&server);
    assert!(peak < 700, "peak RSS {peak} MiB");
}

/// 5,000 rows with ~600 bytes of attributes each.
async fn load_rows(server: &TestServer) {
    let logs: Vec<Value> = (0..5_000)
        .map(|i| json!({"timestamp": 1_705_312_800 + i, "level": "INFO", "msg": format!("message number {i}"), "meta": {"blob": "b".repeat(600)}}))
        .collect();
    let (s, b) = server.ingest(&json!({"logs": logs})).await;
    assert_eq!(s, 202, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_query_runs_within_a_memory_budget() {
    let server =
        TestServer::start_with(&["--query-memory", "32MiB", "--query-memory-total", "128MiB"]);
    load_rows(&server).await;
    server.flush().await;
    load_rows(&server).await;
    let pg = server.pg().await;
    crate::support::refused_with(
        &pg,
        &[
            // 80,000 × 620 bytes accumulated: the aggregate's reservation is refused by the pool.
            (
                "SELECT length(string_agg(l.attrs, ',')) FROM logs l, generate_series(1, 8)",
                "53200",
            ),
            // 10,000 × 12 KB from one function: refused before it runs.
            (
                "SELECT length(string_agg(repeat(attrs, 20), ',')) FROM logs",
                "53200",
            ),
            ("SELECT length(lpad(msg, 2147483647)) FROM logs", "54000"),
            // Past an eighth of the budget in one value: refused as too long.
            ("SELECT length(repeat(msg, 10000000)) FROM logs", "54000"),
            ("SELECT length(lpad(msg, 300000000)) FROM logs", "54000"),
            (
                "SELECT lpad(msg, 2000000) AS m FROM logs ORDER BY random() LIMIT 1",
                "53200",
            ),
            ("SELECT length(repeat('x', 2000000000))", "54000"),
            ("SELECT cardinality(range(1, 10000000000))", "54000"),
            ("SELECT cardinality(array_repeat(1, 2000000000))", "54000"),
            // Sized by their elements, not a fixed guess per element.
            (
                "SELECT cardinality(array_repeat(repeat('x', 1000000), 2000))",
                "54000",
            ),
            (
                "SELECT cardinality(array_repeat(array_repeat(1, 50000), 50000))",
                "54000",
            ),
            (
                "SELECT length(replace(repeat('a', 1048576), 'a', repeat('b', 1048576)))",
                "54000",
            ),
            (
                "SELECT length(regexp_replace(msg, '', repeat('y', 1000000), 'g')) FROM logs",
                "54000",
            ),
            // A 10 MB pattern over every row: its text is bounded before it is built.
            (
                "SELECT length(to_char(ts, repeat('Month', 2000000))) FROM logs",
                "54000",
            ),
            // One argument referenced 2,048 times: bounded before the result is built.
            (
                "SELECT length(format(repeat('%1$s', 2048), repeat('x', 1048576)))",
                "54000",
            ),
        ],
    )
    .await;
    // Within the budget, the same shapes answer.
    let n: i64 = pg
        .query_one(
            "SELECT count(*) FROM (SELECT lpad(msg, 100) AS m FROM logs ORDER BY random()) t",
            &[],
        )
        .await
        .expect("small sort")
        .get(0);
    assert_eq!(n, 10_000);
    still_serving(&server).await;
    let peak = peak_rss_mib(&server);
    assert!(peak < 1024, "peak RSS {peak} MiB");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_start_with_the_server_statement_timeout() {
    let server = TestServer::start_with(&["--statement-timeout", "300ms"]);
    let pg = server.pg().await;
    let shown: String = pg
        .query_one("SHOW statement_timeout", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(shown, "300ms");
    let e = pg
        .query(
            "SELECT sum(generate_series) FROM generate_series(1, 1000000000000)",
            &[],
        )
        .await
        .err()
        .expect("cancelled");
    assert_eq!(sqlstate(&e), "57014", "{e:?}");
    // A session may lift it, as in PostgreSQL.
    pg.batch_execute("SET statement_timeout = 0")
        .await
        .expect("set");
    let n: i64 = pg
        .query_one("SELECT count(*) FROM generate_series(1, 1000)", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_and_flushes_tell_nothing_of_other_tenants() {
    let server = TestServer::start();
    let key = Command::new(bin())
        .args(["key", "add", "--tenant", "acme", "--data-dir"])
        .arg(server.dir.path())
        .output()
        .expect("key add");
    assert!(key.status.success());
    let acme = format!("Bearer {}", String::from_utf8_lossy(&key.stdout).trim());
    let ct = ("content-type", "application/json");
    let batch = |n: usize| {
        let logs: Vec<Value> = (0..n).map(|i| json!({"msg": format!("m{i}")})).collect();
        serde_json::to_vec(&json!({"logs": logs})).expect("json")
    };
    let (s, _) = server.post_raw("/v1/ingest", &[ct], batch(7)).await;
    assert_eq!(s, 202);
    let (s, _) = server
        .post_raw("/v1/ingest", &[ct, ("authorization", &acme)], batch(3))
        .await;
    assert_eq!(s, 202);
    // /ready, without a key, says only that the server is ready.
    let ready: Value = reqwest::Client::new()
        .get(format!("{}/ready", server.http))
        .send()
        .await
        .expect("/ready")
        .json()
        .await
        .expect("json");
    assert_eq!(ready, json!({"status": "ready"}));
    // acme's flush reports acme's rows only.
    let (s, b) = server
        .post_raw("/v1/flush", &[("authorization", &acme)], Vec::new())
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["rows"], 3, "{b}");
    // Segment ids and file names carry no global sequence: between two of a tenant's segments,
    // the count of other tenants' segments cannot be read off.
    for _ in 0..3 {
        let (s, _) = server.post_raw("/v1/ingest", &[ct], batch(2)).await;
        assert_eq!(s, 202);
        server.flush().await;
    }
    let pg = server.pg().await;
    let shown = crate::support::text_rows(
        &pg,
        "SELECT segment_id || ' ' || path FROM segments WHERE tenant = 'default'",
    )
    .await;
    assert_eq!(shown.len(), 4, "{shown:?}");
    for row in &shown {
        let (id, path) = row.split_once(' ').expect("id and path");
        let id: i64 = id.parse().expect("id");
        assert!(id > 1 << 20, "a sequence number shows: {row}");
        assert!(path.ends_with(&format!("seg-{id:016x}.parquet")), "{row}");
    }
    // EXPLAIN names segments inside the data directory, not where it is on disk.
    let dir = std::fs::canonicalize(server.dir.path()).expect("data dir");
    for explain in ["EXPLAIN", "EXPLAIN VERBOSE", "EXPLAIN ANALYZE"] {
        let plan: Vec<String> = pg
            .simple_query(&format!("{explain} SELECT msg FROM logs"))
            .await
            .expect("explain")
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
                _ => None,
            })
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("tenant=default"), "{explain}: {plan}");
        for absolute in [dir.to_string_lossy().as_ref(), "file://", "/tmp/"] {
            assert!(
                !plan.contains(absolute),
                "{explain} shows {absolute}: {plan}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segment_without_its_data_file_fails_every_query_that_needs_it_alike() {
    let server = TestServer::start();
    load_rows(&server).await;
    server.flush().await;
    let pg = server.pg().await;
    let n: i64 = pg
        .query_one("SELECT count(*) FROM logs", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 5_000);
    // The count comes from the segment's count table, without reading the segment.
    let plan = crate::support::explain(&pg, "SELECT count(*) FROM logs").await;
    let counted = crate::support::plan_metric(&plan, "segments_counted");
    assert!(counted.is_some_and(|n| n >= 1), "{plan}");
    let parquet = walk(server.dir.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a segment");
    std::fs::remove_file(&parquet).expect("remove");
    for sql in [
        "SELECT count(*) FROM logs",
        "SELECT count(*) FROM logs WHERE level = 'INFO'",
        "SELECT msg FROM logs LIMIT 1",
    ] {
        let e = pg
            .query(sql, &[])
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} answered"));
        assert_eq!(sqlstate(&e), "58P01", "{sql}: {e:?}");
        let text = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert!(text.contains("lost its data file"), "{sql}: {text}");
    }
    still_serving(&server).await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn correlated_subqueries_answer_rightly_or_are_refused_never_null() {
    let server = TestServer::start();
    let logs: Vec<Value> = ["a", "b", "b", "c"]
        .iter()
        .map(|m| json!({"msg": m}))
        .collect();
    let (s, _) = server.ingest(&json!({"logs": logs})).await;
    assert_eq!(s, 202);
    let pg = server.pg().await;
    // By equality: decorrelated, and a group with no match counts 0 (not NULL).
    let rows = pg
        .query(
            "SELECT msg, (SELECT count(*) FROM logs l2 WHERE l2.msg = l1.msg AND l2.msg <> 'c') AS n \
             FROM logs l1 ORDER BY msg",
            &[],
        )
        .await
        .expect("equality correlation");
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let want = [("a", 1), ("b", 2), ("b", 2), ("c", 0)].map(|(m, n)| (m.to_string(), n));
    assert_eq!(got, want);
    // The same inside a derived table (as Metabase and Superset wrap a question), a UNION
    // branch, and with a parameter: never blanked to NULL.
    for sql in [
        "SELECT n FROM (SELECT msg, (SELECT count(*) FROM logs l2 WHERE l2.msg = l1.msg) AS n FROM logs l1) t WHERE msg = 'b' LIMIT 1",
        "SELECT 0 AS n WHERE false UNION ALL SELECT (SELECT count(*) FROM logs l2 WHERE l2.msg = l1.msg) FROM logs l1 WHERE msg = 'b' LIMIT 1",
    ] {
        let n: i64 = pg.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")).get(0);
        assert_eq!(n, 2, "{sql}");
    }
    let n: i64 = pg
        .query_one("SELECT (SELECT count(*) FROM logs WHERE msg = $1)", &[&"b"])
        .await
        .expect("parameter in a subquery")
        .get(0);
    assert_eq!(n, 2);
    // An uncorrelated subquery of several rows is an error, as in PostgreSQL (not its first row).
    let e = pg
        .query("SELECT (SELECT msg FROM logs)", &[])
        .await
        .err()
        .expect("more than one row");
    assert_ne!(sqlstate(&e), "", "{e:?}");
    // By inequality: DataFusion cannot run it; the answer is an error, never a NULL.
    let e = pg
        .query(
            "SELECT (SELECT count(*) FROM logs l2 WHERE l2.tenant <> l1.tenant) FROM logs l1 LIMIT 1",
            &[],
        )
        .await
        .err()
        .expect("refused");
    assert_eq!(sqlstate(&e), "0A000", "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn before_login_only_small_password_messages_are_read() {
    let server = TestServer::start_with(&["--auth-delay", "0", "--pg-max-pending-logins", "8"]);
    // A 1 GiB Query frame announced while authenticating is refused from its header.
    let mut w = Wire::connect(server.pg_port).await;
    w.send(&startup("timberline")).await;
    assert_eq!(w.recv().await.and_then(|m| m.auth_code()), Some(10));
    w.send(&[&b"Q"[..], &(1u32 << 30).to_be_bytes(), &[b'x'; 4096]].concat())
        .await;
    let got = w.until_closed().await;
    assert_eq!(
        got.first().map(|m| m.sqlstate()),
        Some("08P01".into()),
        "{got:?}"
    );
    // At most a quarter of the pending-login places (2 of 8) go to one address: a third
    // login from it closes the one of them that has waited longest (FATAL 53300).
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut w = Wire::connect(server.pg_port).await;
        w.send(&startup("timberline")).await;
        assert_eq!(w.recv().await.and_then(|m| m.auth_code()), Some(10));
        waiting.push(w);
    }
    let mut third = Wire::connect(server.pg_port).await;
    third.send(&startup("timberline")).await;
    assert_eq!(third.recv().await.and_then(|m| m.auth_code()), Some(10));
    let oldest = waiting[0].until_closed().await;
    assert_eq!(
        oldest.first().map(|m| m.sqlstate()),
        Some("53300".into()),
        "{oldest:?}"
    );
    waiting.push(third);
    // Logged-in connections do not count against it: once the waiting ones go, a login works.
    drop(waiting);
    let mut done = None;
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if let Ok(c) = login(server.pg_port, "timberline", "timberline").await {
            done = Some(c);
            break;
        }
    }
    let pg = done.expect("no login once the waiting connections left");
    // Two logged-in connections from this address (the cap of pending ones is 2).
    let more = login(server.pg_port, "timberline", "timberline")
        .await
        .expect("second");
    let third = login(server.pg_port, "timberline", "timberline")
        .await
        .expect("third");
    for c in [&pg, &more, &third] {
        c.simple_query("SELECT 1").await.expect("query");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_while_answering_is_an_error_on_that_connection_only() {
    let server = TestServer::start();
    let pg = server.pg().await;
    // `timberline_panic()` exists in debug builds only, to prove the containment.
    let e = pg
        .query("SELECT timberline_panic()", &[])
        .await
        .err()
        .expect("an error");
    assert_eq!(sqlstate(&e), "XX000", "{e:?}");
    let one: i64 = pg
        .query_one("SELECT 1::bigint", &[])
        .await
        .expect("same connection")
        .get(0);
    assert_eq!(one, 1);
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_runs_only_for_the_admin_key() {
    let server = TestServer::start_with(&["--maintenance-interval", "0"]);
    let key = Command::new(bin())
        .args(["key", "add", "--tenant", "acme", "--data-dir"])
        .arg(server.dir.path())
        .output()
        .expect("key add");
    assert!(key.status.success());
    let acme = format!("Bearer {}", String::from_utf8_lossy(&key.stdout).trim());
    // Two flushes of one closed hour: a pass would merge them.
    for prefix in ["a", "b"] {
        let (s, _) = server.ingest(&crate::support::batch(prefix, 50)).await;
        assert_eq!(s, 202);
        server.flush().await;
    }
    let pg = server.pg().await;
    let segments = || async {
        crate::support::text_rows(&pg, "SELECT segment_id, tier FROM segments ORDER BY 1").await
    };
    let before = segments().await;
    assert_eq!(before.len(), 2, "{before:?}");
    let port = http_port(&server);
    let me: IpAddr = [127, 0, 0, 1].into();
    for auth in [
        String::new(),
        format!("authorization: {acme}\r\n"),
        "authorization: Bearer timberlinf\r\n".to_string(),
        "authorization: Basic !!!\r\n".to_string(),
    ] {
        // A tenant's key, a wrong one, garbage or none, even announcing 59 MiB: 401 at once.
        let head = format!(
            "POST /v1/maintenance HTTP/1.1\r\nhost: t\r\n{auth}content-length: {}\r\n\r\n",
            59 << 20
        );
        let (status, text) = http_raw(port, me, head.as_bytes()).await;
        assert!(status.contains("401"), "{auth}: {text}");
        assert!(text.contains("admin key"), "{text}");
    }
    assert_eq!(segments().await, before, "a refused pass changed segments");
    let (s, report) = server
        .post_raw(
            "/v1/maintenance",
            &[("authorization", &format!("Bearer {API_KEY}"))],
            Vec::new(),
        )
        .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["compacted_segments"], 2, "{report}");
    still_serving(&server).await;
}

/// Rollup view DDL: only the administrator may run it, and hostile or malformed definitions
/// are refused with a SQLSTATE while the server keeps serving and no view is left behind.
#[tokio::test(flavor = "multi_thread")]
async fn rollup_ddl_is_for_the_administrator_and_hostile_definitions_are_refused() {
    let server = TestServer::start();
    let admin = server.pg().await;
    let add = std::process::Command::new(crate::support::bin())
        .args(["user", "add", "eve", "--tenant", "evil", "--data-dir"])
        .arg(server.dir.path())
        .env("TIMBERLINE_NEW_PASSWORD", "pw-eve")
        .output()
        .expect("user add");
    assert!(add.status.success());
    let eve = crate::support::pg_login(server.pg_port, "eve", "pw-eve")
        .await
        .expect("eve");
    let fine = "CREATE MATERIALIZED VIEW v AS SELECT date_trunc('hour', ts), count(*) FROM logs GROUP BY 1";
    for sql in [
        fine,
        "DROP MATERIALIZED VIEW logs_per_minute",
        "REFRESH MATERIALIZED VIEW logs_per_minute",
    ] {
        let e = eve.batch_execute(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
    }
    let long = format!(
        "CREATE MATERIALIZED VIEW {} AS SELECT date_trunc('hour', ts), count(*) FROM logs GROUP BY 1",
        "v".repeat(100_000)
    );
    let nested = format!(
        "CREATE MATERIALIZED VIEW n AS SELECT date_trunc('hour', ts), sum({}1{}) FROM logs GROUP BY 1",
        "(".repeat(5_000),
        ")".repeat(5_000)
    );
    for (sql, code) in [
        (long.as_str(), "42622"),
        (nested.as_str(), "54001"),
        ("CREATE MATERIALIZED VIEW j AS SELECT date_trunc('hour', a.ts), count(*) FROM logs a, logs b GROUP BY 1", "0A000"),
        ("CREATE MATERIALIZED VIEW s AS SELECT date_trunc('hour', ts), count(*) FROM logs WHERE service IN (SELECT service FROM logs) GROUP BY 1", "0A000"),
        ("CREATE MATERIALIZED VIEW other.x AS SELECT date_trunc('hour', ts), count(*) FROM logs GROUP BY 1", "0A000"),
        ("CREATE OR REPLACE MATERIALIZED VIEW x AS SELECT date_trunc('hour', ts), count(*) FROM logs GROUP BY 1", "0A000"),
        ("CREATE MATERIALIZED VIEW y AS SELECT 1", "0A000"),
        ("DROP MATERIALIZED VIEW logs_per_minute", "0A000"),
    ] {
        let e = admin.batch_execute(sql).await.expect_err(&sql[..60.min(sql.len())]);
        assert_eq!(sqlstate(&e), code, "{}: {e:?}", &sql[..60.min(sql.len())]);
    }
    let left: i64 = admin
        .query_one("SELECT count(*) FROM rollups", &[])
        .await
        .expect("rollups")
        .get(0);
    assert_eq!(left, 0);
    admin
        .batch_execute(fine)
        .await
        .expect("the administrator creates a view");
    let saved = std::fs::read_to_string(server.dir.path().join("rollups.json")).expect("saved");
    assert!(saved.contains("\"name\": \"v\""), "{saved}");
}

/// Address space the server may map in the ingest bomb tests: enough for its runtime and
/// budgets, far below what a decoded bomb takes, so a regression fails an allocation (and the
/// test) rather than the machine.
const BOMB_ADDRESS_SPACE: u64 = 6 << 30;

/// Most the server's peak RSS may grow under the ingest bombs: the decompressed bodies (64 MiB
/// each, two at a time) and their measuring, not their decoding.
const BOMB_RSS_GROWTH_MIB: u64 = 320;

/// A protobuf message of `n` empty records (field `record_tag`, 2 bytes each), wrapped in
/// one message per tag of `outer` (outermost first), built without copying the records.
fn empty_records(outer: &[u8], record_tag: u8, n: usize) -> Vec<u8> {
    fn varint(mut v: usize, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut len = 2 * n;
    let mut prefixes = Vec::new();
    for &tag in outer.iter().rev() {
        let mut p = vec![tag];
        varint(len, &mut p);
        len += p.len();
        prefixes.push(p);
    }
    let mut out = Vec::with_capacity(len);
    for p in prefixes.iter().rev() {
        out.extend_from_slice(p);
    }
    for _ in 0..n {
        out.extend_from_slice(&[record_tag, 0]);
    }
    out
}

/// `ExportLogsServiceRequest { resource_logs: [{ scope_logs: [{ log_records: [{}; n] }] }] }`.
pub(crate) fn otlp_empty_records(n: usize) -> Vec<u8> {
    empty_records(&[0x0a, 0x12], 0x12, n)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

/// One unary OTLP/gRPC `Export` of `message` over a fresh HTTP/2 connection (gzip-compressed
/// if asked); the call's `grpc-status` and `grpc-message`.
pub(crate) async fn grpc_export(
    addr: &str,
    key: Option<&str>,
    message: &[u8],
    gzipped: bool,
) -> (String, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("h2 ready");
    let mut req = axum::http::Request::post(format!(
        "http://{addr}/opentelemetry.proto.collector.logs.v1.LogsService/Export"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers");
    if gzipped {
        req = req.header("grpc-encoding", "gzip");
    }
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let payload = if gzipped {
        gzip(message)
    } else {
        message.to_vec()
    };
    let mut frame = vec![u8::from(gzipped)];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    let (response, mut send) = client
        .send_request(req.body(()).expect("request"), false)
        .expect("send request");
    // The server may answer before it reads the message (no key): the send then just stops.
    let _ = send.send_data(frame.into(), true);
    let call = async {
        let response = response.await.expect("response");
        let field = |h: &axum::http::HeaderMap, k: &str| {
            h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        if let Some(status) = field(response.headers(), "grpc-status") {
            let message = field(response.headers(), "grpc-message").unwrap_or_default();
            return (status, message);
        }
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.expect("response data");
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        let trailers = body.trailers().await.expect("trailers").unwrap_or_default();
        (
            field(&trailers, "grpc-status").unwrap_or_default(),
            field(&trailers, "grpc-message").unwrap_or_default(),
        )
    };
    tokio::time::timeout(PATIENCE, call)
        .await
        .expect("no gRPC answer")
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_export_reads_nothing_before_the_key_and_measures_before_decoding() {
    let server = TestServer::start_capped(&["--otlp-grpc-addr", "127.0.0.1:0"], BOMB_ADDRESS_SPACE);
    let addr = server
        .listener("otlp-grpc")
        .expect("otlp-grpc in the ready line");
    // A good export, plain and gzipped, is stored.
    {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        use prost::Message;
        let request = |msg: &str| {
            ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord {
                            body: Some(AnyValue {
                                value: Some(any_value::Value::StringValue(msg.into())),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }
            .encode_to_vec()
        };
        for (msg, gzipped) in [("grpc plain", false), ("grpc gzip", true)] {
            let got = grpc_export(&addr, Some(API_KEY), &request(msg), gzipped).await;
            assert_eq!(got.0, "0", "{got:?}");
        }
        let pg = server.pg().await;
        let n: i64 = pg
            .query_one("SELECT count(*) FROM logs WHERE msg LIKE 'grpc %'", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 2);
    }
    let idle = peak_rss_mib(&server);
    // 30M empty records: 60 MB decoded into ~6 GB of structs, sent as a small gzip body.
    let bomb = otlp_empty_records(30_000_000);
    let bomb = &bomb;
    let (a, b) = tokio::join!(
        grpc_export(&addr, None, bomb, true),
        grpc_export(&addr, Some("not-a-key"), bomb, true)
    );
    for got in [a, b] {
        assert_eq!(got.0, "16", "UNAUTHENTICATED: {got:?}");
    }
    let (a, b) = tokio::join!(
        grpc_export(&addr, Some(API_KEY), bomb, true),
        grpc_export(&addr, Some(API_KEY), bomb, true)
    );
    for got in [a, b] {
        assert_eq!(got.0, "8", "RESOURCE_EXHAUSTED: {got:?}");
        assert!(got.1.contains("records"), "{got:?}");
    }
    let peak = peak_rss_mib(&server);
    eprintln!("OTLP/gRPC bombs: peak RSS {peak} MiB, idle {idle} MiB");
    assert!(
        peak < idle + BOMB_RSS_GROWTH_MIB,
        "peak RSS {peak} MiB, idle {idle} MiB"
    );
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_body_limit_bounds_the_message_not_its_frame() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;
    let server = TestServer::start_with(&[
        "--otlp-grpc-addr",
        "127.0.0.1:0",
        "--max-body-bytes",
        "4096",
    ]);
    let addr = server
        .listener("otlp-grpc")
        .expect("otlp-grpc in the ready line");
    // A message of exactly `size` bytes: one record whose body pads it.
    let sized = |size: usize| {
        (0..size)
            .map(|pad| {
                ExportLogsServiceRequest {
                    resource_logs: vec![ResourceLogs {
                        scope_logs: vec![ScopeLogs {
                            log_records: vec![LogRecord {
                                body: Some(AnyValue {
                                    value: Some(any_value::Value::StringValue("x".repeat(pad))),
                                }),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                }
                .encode_to_vec()
            })
            .find(|m| m.len() == size)
            .expect("a message of that size")
    };
    let fits = grpc_export(&addr, Some(API_KEY), &sized(4096), false).await;
    assert_eq!(fits.0, "0", "a message of --max-body-bytes: {fits:?}");
    let over = grpc_export(&addr, Some(API_KEY), &sized(4097), false).await;
    assert_eq!(over.0, "8", "RESOURCE_EXHAUSTED: {over:?}");
    assert!(over.1.contains("4096"), "{over:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shipper_bodies_are_measured_before_anything_is_built() {
    // Request bodies (compressed, decompressed, and the copy that replaces invalid UTF-8) may
    // hold 256 MiB at once.
    let server =
        TestServer::start_capped(&["--max-inflight-body-bytes", "256MiB"], BOMB_ADDRESS_SPACE);
    let idle = peak_rss_mib(&server);
    let n = 20_000_000;
    let items = |item: &str| {
        let mut s = String::with_capacity(n * (item.len() + 1));
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            s.push_str(item);
        }
        s
    };
    let snappy = |raw: &[u8]| snap::raw::Encoder::new().compress_vec(raw).expect("snappy");
    let otlp_pb = gzip(&otlp_empty_records(30_000_000));
    let loki_pb = snappy(&empty_records(&[0x0a], 0x12, 30_000_000));
    let otlp_json = gzip(
        format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
            items("{}")
        )
        .as_bytes(),
    );
    let loki_json = gzip(
        format!(
            r#"{{"streams":[{{"stream":{{}},"values":[{}]}}]}}"#,
            items("[]")
        )
        .as_bytes(),
    );
    let ingest_source = gzip(format!(r#"{{"source":[{}],"logs":[]}}"#, items("[]")).as_bytes());
    let ingest_event = gzip(format!(r#"{{"logs":[{{"msg":[{}]}}]}}"#, items("[]")).as_bytes());
    let ingest_logs = gzip(format!(r#"{{"logs":[{}]}}"#, items("{}")).as_bytes());
    let bulk = gzip(format!("{{\"index\":{{}}}}\n[{}]\n", items("[]")).as_bytes());
    // 60 MB of bytes that are not UTF-8: 180 MB once each is replaced by U+FFFD.
    let not_utf8 = gzip(&vec![0xff; 60_000_000]);
    let (json, protobuf, ndjson) = (
        "application/json",
        "application/x-protobuf",
        "application/x-ndjson",
    );
    let refused: &[u16] = &[413];
    let cases: [Bomb; 9] = [
        ("/v1/logs", protobuf, Some("gzip"), &otlp_pb, refused),
        ("/v1/logs", json, Some("gzip"), &otlp_json, refused),
        ("/loki/api/v1/push", protobuf, None, &loki_pb, refused),
        ("/loki/api/v1/push", json, Some("gzip"), &loki_json, refused),
        ("/v1/ingest", json, Some("gzip"), &ingest_source, refused),
        ("/v1/ingest", json, Some("gzip"), &ingest_event, refused),
        ("/v1/ingest", json, Some("gzip"), &ingest_logs, refused),
        ("/_bulk", ndjson, Some("gzip"), &bulk, refused),
        // Stored (one line, cut to 64 KiB) while the budget holds its copy, else "retry".
        ("/v1/ingest", ndjson, Some("gzip"), &not_utf8, &[202, 503]),
    ];
    let target = &server;
    for (path, content_type, encoding, body, expected) in cases {
        let send = || {
            let mut headers = vec![("content-type", content_type)];
            if let Some(e) = encoding {
                headers.push(("content-encoding", e));
            }
            let body = body.to_vec();
            async move { target.post_raw(path, &headers, body).await }
        };
        // Two at once: each is refused while it is measured, before its records are built.
        let (a, b) = tokio::join!(send(), send());
        for (status, answer) in [a, b] {
            assert!(
                expected.contains(&status),
                "{path} {content_type}: {status} {answer}"
            );
        }
        let peak = peak_rss_mib(target);
        eprintln!(
            "{path} {content_type} ({} bytes sent): peak RSS {peak} MiB, idle {idle} MiB",
            body.len()
        );
        assert!(
            peak < idle + BOMB_RSS_GROWTH_MIB,
            "{path} {content_type}: peak RSS {peak} MiB, idle {idle} MiB"
        );
    }
    still_serving(&server).await;
}

/// An ingest bomb: path, content type, content encoding, body, and the answers it may get.
type Bomb<'a> = (&'a str, &'a str, Option<&'a str>, &'a [u8], &'a [u16]);

/// The SHA-256 of an API key, as the keys file stores it.
fn key_hash(key: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()))
}

/// Sends one small batch with `key` from each of `keys` at once; the statuses.
async fn first_requests(server: &TestServer, keys: &[String]) -> Vec<u16> {
    let client = reqwest::Client::new();
    let sends = keys.iter().map(|key| {
        let req = client
            .post(format!("{}/v1/ingest", server.http))
            .header("authorization", format!("Bearer {key}"))
            .json(&json!({"logs": [{"msg": "first request"}]}));
        async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    });
    futures::future::join_all(sends).await
}

#[tokio::test(flavor = "multi_thread")]
async fn no_key_in_the_keys_file_is_ever_answered_unknown() {
    let server = TestServer::start_with(&["--max-connections-per-address", "256"]);
    // 200k keys written while the server runs, in the file's own format (hash → tenant).
    let keys: Vec<String> = (0..200_000).map(|i| format!("tl_key_{i}")).collect();
    let all: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| (key_hash(k), Value::String("acme".into())))
        .collect();
    let path = server.dir.path().join("api_keys.json");
    let tmp = server.dir.path().join("api_keys.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&all).expect("json")).expect("write keys");
    std::fs::rename(&tmp, &path).expect("rename keys");
    // 32 first requests at once, while one of them reads the 200k keys: none is refused.
    let statuses = first_requests(&server, &keys[..32]).await;
    assert!(statuses.iter().all(|&s| s == 202), "{statuses:?}");
    // After a restart the keys are read before the listeners serve.
    let server = server.restart();
    let statuses = first_requests(&server, &keys[1000..1032]).await;
    assert!(
        statuses.iter().all(|&s| s == 202),
        "after a restart: {statuses:?}"
    );
    // Unknown keys are still refused, quickly (the unchanged file is not read again).
    let started = std::time::Instant::now();
    let guesses: Vec<String> = (0..64).map(|i| format!("guess-{i}")).collect();
    let statuses = first_requests(&server, &guesses).await;
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A JSON-RPC `tools/call` of `tool` with `arguments` on `/mcp`: the tool's answer (`isError`,
/// and its text).
async fn mcp_call(server: &TestServer, tool: &str, arguments: Value) -> (bool, String) {
    let resp = http()
        .post(format!("{}/mcp", server.http))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}}))
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(resp.status(), 200, "{tool}");
    let body: Value = resp.json().await.expect("a JSON-RPC answer");
    let result = &body["result"];
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    (result["isError"] == true, text.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_triage_endpoints_read_nothing_before_the_key_and_refuse_hostile_input() {
    let server = TestServer::start();
    let port = http_port(&server);
    let me: IpAddr = [127, 0, 0, 1].into();
    // No key: 401 with a reason, before a body of any announced size is read.
    for (method, path) in [
        ("POST", "/mcp"),
        ("POST", "/v1/alerts"),
        ("GET", "/v1/alerts"),
        ("DELETE", "/v1/alerts/x"),
        ("POST", "/v1/alerts/x/mute"),
        ("GET", "/v1/tail"),
    ] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            59 << 20
        );
        let (status, text) = http_raw(port, me, head.as_bytes()).await;
        assert!(status.contains("401"), "{method} {path}: {text}");
        assert!(text.contains("\"error\""), "{method} {path}: {text}");
    }

    // Alert rules: every malformed or out-of-range body is a 400 with a JSON reason.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let long_name =
        json!({"name": "x".repeat(100_000), "sql": "SELECT count(*) FROM logs", "above": 1})
            .to_string();
    for body in [
        "{\"name\":".to_string(),
        deep,
        long_name,
        r#"{"name":"a","sql":"SELECT count(*) FROM logs","above":1,"every":"99999999999999999999h"}"#.into(),
        r#"{"name":"a","sql":"SELECT count(*) FROM logs","above":1e400}"#.into(),
        r#"{"name":"a","sql":"DROP TABLE logs","above":1}"#.into(),
    ] {
        let resp = http()
            .post(format!("{}/v1/alerts", server.http))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("POST /v1/alerts");
        assert_eq!(resp.status(), 400, "{}", &body[..body.len().min(80)]);
        let reason: Value = resp.json().await.expect("a JSON reason");
        assert!(reason["error"].is_string(), "{reason}");
    }

    // Live tail: numbers past their type and a query nested past reason are 400s.
    for query in [
        "limit=99999999999999999999".to_string(),
        format!("q={}", "(a".repeat(5000)),
    ] {
        let resp = http()
            .get(format!("{}/v1/tail?{query}", server.http))
            .send()
            .await
            .expect("GET /v1/tail");
        assert_eq!(resp.status(), 400, "{}", &query[..query.len().min(80)]);
    }

    // MCP: hostile arguments are tool errors in a session that goes on; a statement of a
    // trillion rows answers one capped page.
    for (tool, arguments) in [
        ("search_logs", json!({"limit": 1e18})),
        ("search_logs", json!({"offset": u64::MAX})),
        ("log_volume", json!({"since": "100000d"})),
        ("nearest", json!({"ts": "yesterday-ish"})),
        ("run_sql", json!({"sql": "DELETE FROM logs"})),
    ] {
        let (error, text) = mcp_call(&server, tool, arguments.clone()).await;
        assert!(error, "{tool} {arguments}: {text}");
    }
    let (error, text) = mcp_call(
        &server,
        "run_sql",
        json!({"sql": "SELECT * FROM generate_series(1, 1000000000000)"}),
    )
    .await;
    assert!(!error, "{text}");
    let page: Value = serde_json::from_str(&text).expect("the page");
    let rows = page["rows"].as_array().map_or(0, Vec::len);
    assert!((1..=1000).contains(&rows), "{rows} rows");
    assert!(page["next_offset"].is_number(), "{page}");

    still_serving(&server).await;
    assert!(
        peak_rss_mib(&server) < 1024,
        "{} MiB",
        peak_rss_mib(&server)
    );
}
