//! Bad input: each gets a clear 4xx with a JSON reason or is stored flagged, and the server keeps
//! serving.

use std::io::Write;

use serde_json::json;

use crate::support::{count, rows, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_4xx_with_json_reasons_and_nothing_is_lost() {
    let server = TestServer::start();
    let json_ct = [("content-type", "application/json")];

    let (s, b) = server
        .post_raw("/v1/ingest", &json_ct, b"{\"logs\": [".to_vec())
        .await;
    assert_eq!(s, 400);
    assert!(
        b["error"].as_str().unwrap().contains("not a JSON batch"),
        "{b}"
    );

    let (s, b) = server
        .post_raw("/v1/ingest", &json_ct, b"[1,2,3]".to_vec())
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = server
        .post_raw("/v1/ingest", &json_ct, br#"{"logs": "nope"}"#.to_vec())
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"].as_str().unwrap().contains("array"));

    // Oversized batch: 10,001 events.
    let logs: Vec<_> = (0..10_001).map(|i| json!({"msg": i.to_string()})).collect();
    let (s, b) = server.ingest(&json!({"logs": logs})).await;
    assert_eq!(s, 413, "{b}");
    assert!(b["error"].as_str().unwrap().contains("10000"));

    // Unknown Content-Encoding and Content-Type.
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[
                ("content-encoding", "br"),
                ("content-type", "application/json"),
            ],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(s, 415, "{b}");
    assert!(b["error"].as_str().unwrap().contains("Content-Encoding"));
    let (s, _) = server
        .post_raw(
            "/v1/ingest",
            &[("content-type", "text/csv")],
            b"a,b".to_vec(),
        )
        .await;
    assert_eq!(s, 415);
    // Corrupt gzip.
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[
                ("content-encoding", "gzip"),
                ("content-type", "application/json"),
            ],
            b"notgzip".to_vec(),
        )
        .await;
    assert_eq!(s, 400, "{b}");

    // None of that stored anything, and the server still serves.
    let pg = server.pg().await;
    assert_eq!(count(&pg, "").await, 0);
    let (s, _) = server
        .ingest(&json!({"logs": [{"msg": "still alive"}]}))
        .await;
    assert_eq!(s, 202);
    assert_eq!(count(&pg, "").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_events_are_stored_flagged_never_dropped() {
    let server = TestServer::start();
    let big = "x".repeat(5 * 1024 * 1024);
    let body = json!({"source": {"service": "odd"}, "logs": [
        {"ts": "yesterday-ish", "msg": "bad ts"},
        {"ts": 1705314645123i64, "level": 3, "msg": {"nested": true}},
        {"msg": big},
        "just a string",
        {"ts": "2024-01-15T10:30:45Z", "msg": "fine", "meta": "not an object"},
    ]});
    let (s, b) = server.ingest(&body).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["accepted"], 5);
    assert_eq!(b["failed"], 0);
    let pg = server.pg().await;
    let all = rows(&pg, "WHERE service = 'odd'").await;
    assert_eq!(all.len(), 5);
    let bad_ts = all.iter().find(|r| r.msg == "bad ts").unwrap();
    assert!(bad_ts.parse_failed);
    assert!(bad_ts.attrs.contains("yesterday-ish"));
    let coerced = all.iter().find(|r| r.msg.contains("nested")).unwrap();
    assert_eq!(coerced.level, "3");
    assert!(!coerced.parse_failed);
    let truncated = all
        .iter()
        .find(|r| r.truncated)
        .expect("5 MB line stored truncated");
    assert_eq!(truncated.msg.len(), 64 * 1024);
    let raw = all
        .iter()
        .find(|r| r.msg.contains("just a string"))
        .unwrap();
    assert!(raw.parse_failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_utf8_is_replaced_and_kept_and_compressed_bodies_work() {
    let server = TestServer::start();
    let mut body = br#"{"source":{"service":"utf"},"logs":[{"msg":"caf"#.to_vec();
    body.extend_from_slice(&[0xC3, 0x28]); // invalid UTF-8
    body.extend_from_slice(br#" ok"}]}"#);
    let (s, b) = server
        .post_raw("/v1/ingest", &[("content-type", "application/json")], body)
        .await;
    assert_eq!(s, 202, "{b}");

    let ndjson = b"{\"msg\":\"nd one\",\"service\":\"utf\"}\nnot json at all\n{\"msg\":\"nd two\",\"service\":\"utf\"}\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(ndjson).unwrap();
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[
                ("content-type", "application/x-ndjson"),
                ("content-encoding", "gzip"),
            ],
            gz.finish().unwrap(),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["accepted"], 3);
    let zst = zstd::encode_all(
        &br#"{"source":{"service":"utf"},"logs":[{"msg":"zstd body"}]}"#[..],
        3,
    )
    .unwrap();
    let (s, _) = server
        .post_raw(
            "/v1/ingest",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "zstd"),
            ],
            zst,
        )
        .await;
    assert_eq!(s, 202);

    let pg = server.pg().await;
    let got = rows(&pg, "WHERE service = 'utf' OR parse_failed").await;
    let msgs: Vec<&str> = got.iter().map(|r| r.msg.as_str()).collect();
    assert!(msgs.contains(&"caf\u{FFFD}( ok"), "{msgs:?}");
    assert!(msgs.contains(&"nd one") && msgs.contains(&"nd two") && msgs.contains(&"zstd body"));
    let raw = got
        .iter()
        .find(|r| r.msg == "not json at all")
        .expect("raw NDJSON line kept");
    assert!(raw.parse_failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn zstd_bomb_is_refused_with_413() {
    let server = TestServer::start_with(&["--max-body-bytes", "1000000"]);
    let huge = vec![b' '; 50_000_000];
    let bomb = zstd::encode_all(&huge[..], 19).unwrap();
    assert!(bomb.len() < 1_000_000);
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "zstd"),
            ],
            bomb,
        )
        .await;
    assert_eq!(s, 413, "{b}");
    // A body over the limit before decompression too.
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[("content-type", "application/json")],
            vec![b' '; 2_000_000],
        )
        .await;
    assert_eq!(s, 413, "{b}");
    assert!(b["error"].is_string());
}
