//! The abuse suite's idle-connection attacks: sockets that authenticate nothing, held open by
//! the hundred or thousand from several addresses, must neither lock out a real client of the
//! pg, OTLP/gRPC, syslog TCP or HTTP listener nor outlive the login timeout; pg BackendKeyData
//! names each connection apart and CancelRequest still finds it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{http_port, login_from, still_serving};
use crate::support::{count, http, TestServer, API_KEY};
use crate::wire::{query, tcp_from, Msg, Wire, PATIENCE};

/// The login timeout the tests give the server: short, so closing idle sockets is quick to see.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(2);

/// `127.0.0.<n>`.
fn addr(n: u8) -> IpAddr {
    [127, 0, 0, n].into()
}

/// Lets this process hold the thousands of sockets an attack opens.
fn raise_open_files() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

/// `count` idle TCP connections to `port`, spread over `addresses` in turn.
async fn idle_sockets(port: u16, addresses: &[IpAddr], count: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        held.push(tcp_from(addresses[i % addresses.len()], port).await);
    }
    held
}

/// Whether the server closes every one of `sockets` within `within` (what it sends first,
/// such as a FATAL error, is read and ignored).
async fn all_closed(sockets: Vec<TcpStream>, within: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    let closed = sockets.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    });
    let results = futures::future::join_all(closed).await;
    let open = results.iter().filter(|closed| !**closed).count();
    if open == 0 {
        Ok(())
    } else {
        Err(format!("{open} of {} sockets still open", results.len()))
    }
}

/// The figures `/ready` gives the admin for the listener `name`.
async fn listener_stats(server: &TestServer, name: &str) -> Value {
    let ready: Value = http()
        .get(format!("{}/ready", server.http))
        .bearer_auth(API_KEY)
        .send()
        .await
        .expect("/ready")
        .json()
        .await
        .expect("/ready JSON");
    ready["connections"][name].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_pg_sockets_neither_lock_out_a_login_nor_outlive_the_login_timeout() {
    raise_open_files();
    let server = TestServer::start_with(&["--login-timeout", "2s"]);
    // 200 sockets that never send a byte: 40 from 127.0.0.10 (past its share of the logins
    // in progress) and 4 from each of 40 other addresses (together past every cap).
    let crowded = addr(10);
    let mut held = idle_sockets(server.pg_port, &[crowded], 40).await;
    let others: Vec<IpAddr> = (11..51).map(addr).collect();
    held.extend(idle_sockets(server.pg_port, &others, 160).await);
    let attack_opened = Instant::now();
    // A real login succeeds at once, from a fresh address and from the crowded one.
    for from in [addr(99), crowded] {
        let started = Instant::now();
        let client = login_from(from, server.pg_port, "timberline")
            .await
            .unwrap_or_else(|e| panic!("login from {from} during the attack: {e}"));
        let took = started.elapsed();
        eprintln!("pg login from {from} with 200 idle sockets open: {took:?}");
        assert!(took < LOGIN_TIMEOUT / 4, "login took {took:?}");
        let one: i64 = client
            .query_one("SELECT 1::bigint", &[])
            .await
            .expect("query")
            .get(0);
        assert_eq!(one, 1);
    }
    // Every idle socket is closed by the login timeout (the oldest earlier, to make room).
    all_closed(held, LOGIN_TIMEOUT + Duration::from_secs(3))
        .await
        .expect("idle pg sockets closed after the login timeout");
    assert!(
        attack_opened.elapsed() < LOGIN_TIMEOUT + Duration::from_secs(3),
        "closed late: {:?}",
        attack_opened.elapsed()
    );
    let logins = listener_stats(&server, "pg login").await;
    assert!(logins["evicted"].as_u64() > Some(0), "{logins}");
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pg_socket_that_dribbles_its_login_is_closed_at_the_login_timeout() {
    let server = TestServer::start_with(&["--login-timeout", "2s"]);
    // A StartupMessage, then a password message announced at 100 bytes and sent a byte every
    // 300 ms: the deadline counts from the connection, not from the last byte.
    let mut w = Wire::connect(server.pg_port).await;
    w.send(&crate::wire::startup("timberline")).await;
    w.send(&[b'p', 0, 0, 0, 104]).await;
    let started = Instant::now();
    let dribble = async {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if w.stream.write_all(b"x").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LOGIN_TIMEOUT + Duration::from_secs(5), dribble).await;
    let took = started.elapsed();
    assert!(
        took < LOGIN_TIMEOUT + Duration::from_secs(2),
        "the dribbling socket was open {took:?}"
    );
}

/// BackendKeyData's process id and secret key.
fn backend_key(got: &[Msg]) -> (i32, i32) {
    let k = got
        .iter()
        .find(|m| m.tag == b'K')
        .unwrap_or_else(|| panic!("no BackendKeyData in {got:?}"));
    let int = |at: usize| {
        i32::from_be_bytes([k.body[at], k.body[at + 1], k.body[at + 2], k.body[at + 3]])
    };
    (int(0), int(4))
}

/// A CancelRequest for (pid, secret).
fn cancel_request(pid: i32, secret: i32) -> Vec<u8> {
    let mut out = 16u32.to_be_bytes().to_vec();
    out.extend_from_slice(&80_877_102u32.to_be_bytes());
    out.extend_from_slice(&pid.to_be_bytes());
    out.extend_from_slice(&secret.to_be_bytes());
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn each_pg_connection_has_its_own_backend_key_and_cancel_finds_it() {
    let server = TestServer::start_with(&["--pg-auth", "trust"]);
    let mut keys = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut w = Wire::connect(server.pg_port).await;
        w.send(&crate::wire::startup("timberline")).await;
        let got = w.until(b'Z').await;
        keys.push(backend_key(&got));
        conns.push(w);
    }
    let pids: std::collections::BTreeSet<i32> = keys.iter().map(|k| k.0).collect();
    assert_eq!(pids.len(), 3, "process ids repeat: {keys:?}");
    assert!(keys.iter().all(|k| k.0 > 0), "{keys:?}");
    let secrets: std::collections::BTreeSet<i32> = keys.iter().map(|k| k.1).collect();
    assert_eq!(secrets.len(), 3, "secret keys repeat: {keys:?}");

    // A CancelRequest naming the second connection's key stops its query, and only its.
    let slow = "SELECT count(*) FROM generate_series(1, 100000000000) AS t(i) WHERE i % 7 = 3";
    let (pid, secret) = keys[1];
    let mut target = conns.remove(1);
    target.send(&query(slow)).await;
    let started = Instant::now();
    let answer = async {
        let mut got = Vec::new();
        loop {
            let m = target.recv().await.expect("the connection stays open");
            let done = m.tag == b'Z';
            got.push(m);
            if done {
                return got;
            }
        }
    };
    tokio::pin!(answer);
    let got = loop {
        // The cancel lands only once the query runs: repeat it until the answer comes.
        let mut canceller = Wire::connect(server.pg_port).await;
        canceller.send(&cancel_request(pid, secret)).await;
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(300), &mut answer).await {
            break got;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the query was never cancelled"
        );
    };
    let error = got.iter().find(|m| m.tag == b'E').expect("an error");
    assert_eq!(error.sqlstate(), "57014", "{error:?}");
    // A wrong secret cancels nothing: the first connection's query runs to its end.
    let mut first = conns.remove(0);
    let mut canceller = Wire::connect(server.pg_port).await;
    canceller
        .send(&cancel_request(keys[0].0, keys[0].1.wrapping_add(1)))
        .await;
    first
        .send(&query("SELECT count(*) FROM generate_series(1, 3000000)"))
        .await;
    let got = first.until(b'Z').await;
    assert!(got.iter().all(|m| m.tag != b'E'), "{got:?}");
}

/// An OTLP/gRPC Export of one record whose body is `body`, sent over a fresh HTTP/2
/// connection from `from`; `Ok` once the server answers grpc-status 0.
async fn grpc_export(from: IpAddr, port: u16, body: &str) -> Result<(), String> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let record = LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        ..Default::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let encoded = request.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);

    let tcp = tcp_from(from, port).await;
    let e = |what: &str| {
        let what = what.to_string();
        move |e: h2::Error| format!("{what}: {e}")
    };
    let (client, conn) = h2::client::handshake(tcp).await.map_err(e("handshake"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.map_err(e("ready"))?;
    let head = axum::http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://127.0.0.1:{port}/opentelemetry.proto.collector.logs.v1.LogsService/Export"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {API_KEY}"))
        .body(())
        .map_err(|e| e.to_string())?;
    let (response, mut send) = client.send_request(head, false).map_err(e("send"))?;
    send.send_data(framed.into(), true)
        .map_err(e("send body"))?;
    let response = response.await.map_err(e("response"))?;
    let (head, mut body) = response.into_parts();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(e("body"))?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await.map_err(e("trailers"))?;
    let status = trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| head.headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    if status == "0" {
        Ok(())
    } else {
        Err(format!("grpc-status {status}: {trailers:?}"))
    }
}

/// Polls until `filter` matches `want` rows (the row is searchable once acked).
async fn rows_arrive(server: &TestServer, filter: &str, want: i64) {
    let pg = server.pg().await;
    let started = Instant::now();
    loop {
        let got = count(&pg, filter).await;
        if got == want {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{filter}: {got} rows, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_grpc_connections_block_no_export_and_close_at_the_login_timeout() {
    raise_open_files();
    let server =
        TestServer::start_with(&["--otlp-grpc-addr", "127.0.0.1:0", "--login-timeout", "2s"]);
    let grpc = server.listener("otlp-grpc").expect("otlp-grpc listener");
    let port: u16 = grpc
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    // 1,100 connections that never send a byte: 300 from 127.0.0.1, 100 from each of eight
    // others (past the per-address and the total cap).
    let mut addresses = vec![addr(1); 3];
    addresses.extend((20..28).map(addr));
    let held = idle_sockets(port, &addresses, 1_100).await;
    for (i, from) in [addr(1), addr(20), addr(99)].into_iter().enumerate() {
        let body = format!("export during the idle attack {i}");
        let started = Instant::now();
        grpc_export(from, port, &body)
            .await
            .unwrap_or_else(|e| panic!("Export from {from} during the attack: {e}"));
        eprintln!(
            "OTLP/gRPC Export from {from} with 1,100 idle connections: {:?}",
            started.elapsed()
        );
        rows_arrive(&server, &format!("WHERE msg = '{body}'"), 1).await;
    }
    all_closed(held, LOGIN_TIMEOUT + Duration::from_secs(5))
        .await
        .expect("idle gRPC connections closed after the login timeout");
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_syslog_connections_never_swallow_a_message() {
    raise_open_files();
    let server = TestServer::start_with(&["--syslog-addr", "127.0.0.1:0", "--login-timeout", "2s"]);
    let syslog = server.listener("syslog").expect("syslog listener");
    let port: u16 = syslog
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    // 3,000 connections that never send a byte, from 127.0.0.1 and 29 other addresses.
    let mut addresses = vec![addr(1)];
    addresses.extend((30..59).map(addr));
    let held = idle_sockets(port, &addresses, 3_000).await;
    for (i, from) in [addr(1), addr(30), addr(99)].into_iter().enumerate() {
        let text = format!("legit line {i} during the idle attack");
        let mut s = tcp_from(from, port).await;
        s.write_all(format!("<14>1 2024-01-15T10:00:00Z web-1 app - - - {text}\n").as_bytes())
            .await
            .expect("write");
        s.shutdown().await.expect("shutdown");
        rows_arrive(&server, &format!("WHERE msg = '{text}'"), 1).await;
    }
    let stats = listener_stats(&server, "syslog TCP").await;
    assert!(
        stats["evicted"].as_u64() > Some(0),
        "evictions are counted: {stats}"
    );
    all_closed(held, LOGIN_TIMEOUT + Duration::from_secs(5))
        .await
        .expect("idle syslog connections closed after the login timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_http_connections_lock_out_no_request() {
    let server = TestServer::start_with(&["--http-max-connections", "64"]);
    let port = http_port(&server);
    // 100 connections that never send a byte, from four addresses: past the total cap.
    let held = idle_sockets(port, &[addr(40), addr(41), addr(42), addr(43)], 100).await;
    for from in [addr(40), addr(99)] {
        let client = reqwest::Client::builder()
            .local_address(from)
            .build()
            .expect("client");
        let started = Instant::now();
        let health = client
            .get(format!("{}/health", server.http))
            .send()
            .await
            .expect("/health");
        assert_eq!(health.status(), 200, "from {from}");
        eprintln!(
            "HTTP /health from {from} with 100 idle connections: {:?}",
            started.elapsed()
        );
    }
    let stats = listener_stats(&server, "HTTP").await;
    assert!(stats["evicted"].as_u64() > Some(0), "{stats}");
    drop(held);
}
