//! End to end: POST a batch, read it back over pgwire before and after flush and after a restart.

use crate::support::{batch, count, rows, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn rows_survive_flush_and_restart_without_duplicates() {
    let server = TestServer::start();
    let (status, body) = server.ingest(&batch("e2e", 500)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 500);
    assert_eq!(body["failed"], 0);
    assert_eq!(body["lag_hint"], "normal");

    // Visible the moment the request is acknowledged, from the hot buffer.
    let pg = server.pg().await;
    let before = rows(&pg, "").await;
    assert_eq!(before.len(), 500);
    let r = before.iter().find(|r| r.msg == "e2e-6").expect("row e2e-6");
    assert_eq!(
        (r.service.as_str(), r.host.as_str(), r.level.as_str()),
        ("payments", "pay-1", "WARN")
    );
    assert_eq!(r.trace_id.as_deref(), Some("trace-e2e-2"));
    let attrs: serde_json::Value = serde_json::from_str(&r.attrs).unwrap();
    assert_eq!(attrs["region"], "eu-west-1");
    assert_eq!(attrs["user_id"], 6);

    // Flush: same rows, now from a segment.
    let report = server.flush().await;
    assert_eq!(report["rows"], 500);
    assert_eq!(rows(&pg, "").await, before);
    let segs: i64 = pg
        .query_one("SELECT count(*) FROM segments", &[])
        .await
        .unwrap()
        .get(0);
    assert!(segs >= 1);

    // More rows stay hot; a query unions both.
    let (status, _) = server.ingest(&batch("hot", 100)).await;
    assert_eq!(status, 202);
    assert_eq!(count(&pg, "").await, 600);
    let all = rows(&pg, "").await;

    // Restart (SIGKILL): the hot rows come back from the WAL, the flushed ones from segments.
    drop(pg);
    let server = server.restart();
    let pg = server.pg().await;
    assert_eq!(rows(&pg, "").await, all, "same rows after restart");
    // And again, after flushing what was replayed: no double count.
    server.flush().await;
    let server = server.restart();
    let pg = server.pg().await;
    assert_eq!(
        rows(&pg, "").await,
        all,
        "same rows after replay-flush-restart"
    );
    let dupes: i64 = pg
        .query_one(
            "SELECT count(*) FROM (SELECT msg FROM logs GROUP BY msg HAVING count(*) > 1)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dupes, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn time_filters_prune_segments_and_explain_analyze_reports_it() {
    let server = TestServer::start();
    // Two hours of data → at least two segments.
    let mk = |hour: u32| {
        let logs: Vec<_> = (0..50)
            .map(|i| serde_json::json!({"ts": format!("2024-01-15T{hour:02}:{:02}:00Z", i % 60), "msg": format!("h{hour}-{i}")}))
            .collect();
        serde_json::json!({"source": {"service": "s"}, "logs": logs})
    };
    assert_eq!(server.ingest(&mk(10)).await.0, 202);
    assert_eq!(server.ingest(&mk(12)).await.0, 202);
    server.flush().await;
    let pg = server.pg().await;
    assert_eq!(count(&pg, "WHERE ts >= '2024-01-15T12:00:00Z'").await, 50);
    let plan: Vec<String> = pg
        .simple_query(
            "EXPLAIN ANALYZE SELECT count(*) FROM logs WHERE ts >= '2024-01-15T12:00:00Z'",
        )
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
            _ => None,
        })
        .collect();
    let text = plan.join("\n");
    assert!(text.contains("segments_total=2"), "{text}");
    assert!(text.contains("segments_pruned_time=1"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn buffer_cap_forces_an_early_flush() {
    // A 1 MiB cap (and a 30 s age limit) must flush long before 30 s.
    let server = TestServer::start_with(&[
        "--max-buffer-bytes",
        "1048576",
        "--flush-interval-secs",
        "3600",
    ]);
    let pg = server.pg().await;
    for i in 0..20 {
        let (status, _) = server.ingest(&batch(&format!("cap{i}"), 500)).await;
        assert!(status == 202 || status == 503, "status {status}");
    }
    // Wait for the flusher by polling the catalog (it is woken by the cap, not by a timer).
    let mut segs = 0i64;
    for _ in 0..200 {
        segs = pg
            .query_one("SELECT count(*) FROM segments", &[])
            .await
            .unwrap()
            .get(0);
        if segs > 0 {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        segs > 0,
        "no segment was flushed although the buffer passed its cap"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segment_left_by_a_crash_before_cataloging_is_removed_and_rows_come_from_the_wal() {
    let server = TestServer::start();
    assert_eq!(server.ingest(&batch("orphan", 40)).await.0, 202);
    // What a crash between writing a segment and cataloging it leaves: a Parquet file no catalog
    // entry names, while the rows are still in the WAL.
    let dir = server
        .dir
        .path()
        .join("segments/tenant=default/date=2024-01-15/hour=10");
    std::fs::create_dir_all(&dir).unwrap();
    let orphan = dir.join("seg-000000000999.parquet");
    std::fs::write(&orphan, b"PAR1 not really").unwrap();
    let server = server.restart();
    assert!(!orphan.exists(), "orphan segment removed at startup");
    let pg = server.pg().await;
    assert_eq!(count(&pg, "").await, 40);
    server.flush().await;
    assert_eq!(count(&pg, "").await, 40);
    let wal_files = std::fs::read_dir(server.dir.path().join("wal"))
        .unwrap()
        .count();
    let server = server.restart();
    let pg = server.pg().await;
    assert_eq!(
        count(&pg, "").await,
        40,
        "after flush + restart ({wal_files} WAL files before)"
    );
}
