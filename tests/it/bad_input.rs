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

/// One instant, or one that cannot be placed, through every way in: `/v1/ingest` JSON and
/// NDJSON, `_bulk`, OTLP/HTTP, Loki JSON and protobuf, syslog, and `timberline ingest`'s
/// `json` and `text` formats. Each is read by the one rule (the unit by magnitude, or the
/// protocol's fixed nanoseconds): year 9999 in seconds is not 1978, `-5` is before 1970, and
/// what cannot be placed keeps its line, flagged, at the receive time.
#[tokio::test(flavor = "multi_thread")]
async fn every_protocol_reads_a_timestamp_the_same_way() {
    use prost::Message;
    use timberline::ingest::loki::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};

    const Y9999: &str = "9999-12-31 23:59:59+00";
    const MINUS_5S: &str = "1969-12-31 23:59:55+00";
    const T_MS: &str = "2024-01-15 10:30:45.123+00";
    const T_US: &str = "2024-01-15 10:30:45.123456+00";
    let server = TestServer::start_with(&["--syslog-addr", "127.0.0.1:0"]);
    let mut want: Vec<(&str, &str)> = Vec::new();

    // /v1/ingest: a JSON batch, then NDJSON.
    let events = [
        ("json 9999 s", json!(253_402_300_799i64), Y9999),
        ("json 9999 s text", json!("253402300799"), Y9999),
        ("json -5", json!(-5), MINUS_5S),
        ("json s.ms", json!(1_705_314_645.123), T_MS),
        ("json ms", json!(1_705_314_645_123i64), T_MS),
        ("json us", json!(1_705_314_645_123_456i64), T_US),
        ("json ns", json!(1_705_314_645_123_456_789i64), T_US),
        ("json rfc 9999", json!("9999-12-31T23:59:59Z"), Y9999),
        ("json bad number", json!(1e22), "flag"),
        ("json bad digits", json!("253402300800000000000"), "flag"),
        ("json bad year 0", json!("0000-06-01T00:00:00Z"), "flag"),
    ];
    let logs: Vec<_> = events
        .iter()
        .map(|(m, ts, _)| json!({"ts": ts, "msg": m}))
        .collect();
    let (s, b) = server.ingest(&json!({"logs": logs})).await;
    assert_eq!((s, &b["failed"]), (202, &json!(0)), "{b}");
    want.extend(events.iter().map(|(m, _, w)| (*m, *w)));
    server
        .ingest_ndjson([
            json!({"ts": 253_402_300_799i64, "msg": "ndjson 9999 s"}),
            json!({"ts": -5, "msg": "ndjson -5"}),
            json!({"ts": "-5", "msg": "ndjson -5 text"}),
        ])
        .await;
    want.extend([
        ("ndjson 9999 s", Y9999),
        ("ndjson -5", MINUS_5S),
        ("ndjson -5 text", MINUS_5S),
    ]);

    // Elasticsearch _bulk.
    let bulk = [
        (json!(253_402_300_799i64), "bulk 9999 s", Y9999),
        (json!(-5), "bulk -5", MINUS_5S),
        (json!(1_705_314_645_123i64), "bulk ms", T_MS),
    ];
    let mut body = String::new();
    for (ts, m, w) in &bulk {
        body.push_str("{\"index\":{}}\n");
        body.push_str(&json!({"@timestamp": ts, "message": m}).to_string());
        body.push('\n');
        want.push((m, w));
    }
    let (s, b) = server
        .post_raw(
            "/_bulk",
            &[("content-type", "application/x-ndjson")],
            body.into_bytes(),
        )
        .await;
    assert_eq!((s, &b["errors"]), (200, &json!(false)), "{b}");

    // OTLP/HTTP JSON: nanoseconds, as the spec fixes them.
    let otlp = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1705314645123456789", "body": {"stringValue": "otlp ns"}}
    ]}]}]});
    let (s, b) = server
        .post_raw(
            "/v1/logs",
            &[("content-type", "application/json")],
            otlp.to_string().into_bytes(),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    want.push(("otlp ns", T_US));

    // Loki JSON and protobuf: nanoseconds too, through the same range check.
    let loki = json!({"streams": [{"stream": {"app": "loki"}, "values": [
        ["253402300799000000000", "loki 9999"],
        ["-5", "loki -5 ns"],
        ["-5000000000", "loki -5 s"],
        ["99999999999999999999999", "loki bad"],
    ]}]});
    let (s, b) = server
        .post_raw(
            "/loki/api/v1/push",
            &[("content-type", "application/json")],
            loki.to_string().into_bytes(),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    want.extend([
        ("loki 9999", Y9999),
        ("loki -5 ns", "1969-12-31 23:59:59.999999+00"),
        ("loki -5 s", MINUS_5S),
        ("loki bad", "flag"),
    ]);
    let entry = |seconds, line: &str| EntryAdapter {
        timestamp: Some(Timestamp { seconds, nanos: 0 }),
        line: line.as_bytes().to_vec(),
        structured_metadata: Vec::new(),
    };
    let push = PushRequest {
        streams: vec![StreamAdapter {
            labels: "{app=\"loki\"}".into(),
            entries: vec![
                entry(253_402_300_799, "loki proto 9999"),
                entry(i64::MAX, "loki proto bad"),
            ],
            hash: 0,
        }],
    };
    let packed = snap::raw::Encoder::new()
        .compress_vec(&push.encode_to_vec())
        .expect("snappy");
    let (s, b) = server
        .post_raw(
            "/loki/api/v1/push",
            &[("content-type", "application/x-protobuf")],
            packed,
        )
        .await;
    assert_eq!(s, 204, "{b}");
    want.extend([("loki proto 9999", Y9999), ("loki proto bad", "flag")]);

    // syslog (RFC 5424 over UDP).
    let addr = server.listener("syslog").expect("syslog in the ready line");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    for line in [
        "<14>1 9999-12-31T23:59:59Z h app - - - syslog 9999",
        "<14>1 0000-06-01T00:00:00Z h app - - - syslog year 0",
    ] {
        udp.send_to(line.as_bytes(), &addr).expect("send");
    }
    want.extend([("syslog 9999", Y9999), ("syslog year 0", "flag")]);

    // `timberline ingest`, the json and text formats.
    let dir = tempfile::tempdir().expect("tempdir");
    let json_file = dir.path().join("events.json");
    std::fs::write(
        &json_file,
        "{\"ts\":253402300799,\"msg\":\"file json 9999\"}\n{\"ts\":-5,\"msg\":\"file json -5\"}\n",
    )
    .expect("write");
    let text_file = dir.path().join("events.log");
    std::fs::write(
        &text_file,
        "1705314645.123 file text s\n1705314645123 file text ms\n",
    )
    .expect("write");
    for (format, file) in [("json", &json_file), ("text", &text_file)] {
        let out = std::process::Command::new(crate::support::bin())
            .args([
                "ingest",
                "--quiet",
                "--server",
                &server.http,
                "--format",
                format,
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .arg(file)
            .output()
            .expect("ingest");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    want.extend([
        ("file json 9999", Y9999),
        ("file json -5", MINUS_5S),
        ("file text s", T_MS),
        ("file text ms", T_MS),
    ]);

    let pg = server.pg().await;
    want.sort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(&pg, "").await < want.len() as i64 {
        assert!(std::time::Instant::now() < deadline, "syslog never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = crate::support::text_rows(
        &pg,
        "SELECT msg, ts, parse_failed, ts = ingest_ts, attrs->>'_invalid_ts' IS NOT NULL \
         FROM logs ORDER BY msg",
    )
    .await;
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (row, (msg, ts)) in got.iter().zip(&want) {
        let expected = if *ts == "flag" {
            // Kept, flagged, at the receive time, the value sent in attrs.
            format!("{msg}|t|t|t")
        } else {
            format!("{msg}|{ts}|f|f|f")
        };
        let row = if *ts == "flag" {
            // The receive time itself varies: drop it.
            let parts: Vec<&str> = row.split('|').collect();
            format!("{}|{}|{}|{}", parts[0], parts[2], parts[3], parts[4])
        } else {
            row.clone()
        };
        assert_eq!(row, expected);
    }
}
