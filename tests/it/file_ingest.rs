//! `timberline ingest`: loads files through a running server; unmatched lines are stored raw.

use std::process::Command;

use crate::support::{bin, count, repo_path, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn hdfs_sample_and_a_garbage_line_all_arrive() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut text =
        std::fs::read_to_string(repo_path("tests/data/loghub/HDFS/HDFS_2k.log")).unwrap();
    text.push_str("\nthis line matches no format at all\n");
    let file = dir.path().join("hdfs.log");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(bin())
        .args([
            "ingest",
            "--quiet",
            "--format",
            "loghub:HDFS",
            "--batch",
            "300",
            "--server",
            &server.http,
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ingested 2001 lines"), "{stdout}");
    let pg = server.pg().await;
    assert_eq!(count(&pg, "WHERE service = 'hdfs'").await, 2001);
    assert_eq!(
        count(&pg, "WHERE service = 'hdfs' AND parse_failed").await,
        1
    );
    let row = pg
        .query_one(
            "SELECT level, attrs->>'component', attrs->>'pid' FROM logs WHERE msg = 'PacketResponder 1 for block blk_38865049064139660 terminating'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "INFO");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("dfs.DataNode$PacketResponder")
    );
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("148"));
    let earliest: std::time::SystemTime = pg
        .query_one(
            "SELECT min(ts) FROM logs WHERE service = 'hdfs' AND NOT parse_failed",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let secs = earliest
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(secs, 1_226_262_975, "2008-11-09T20:36:15Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_detects_triage_format_from_stdin() {
    let server = TestServer::start();
    let mut child = Command::new(bin())
        .args(["ingest", "--quiet", "--server", &server.http, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "2024-01-15T10:30:45.123Z [ERROR] card declined").unwrap();
        writeln!(stdin, "2024-01-15T10:30:46.000Z [INFO] retry ok").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let pg = server.pg().await;
    assert_eq!(
        count(&pg, "WHERE level = 'ERROR' AND msg = 'card declined'").await,
        1
    );
}
