//! `timberline ingest`: loads files through a running server; unmatched lines are stored raw.

use std::process::Command;

use crate::support::{bin, count, repo_path, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn hdfs_sample_and_a_garbage_line_all_arrive() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    // A line before the first time joins nothing: stored flagged. One after a record joins it.
    let mut text = "a first line without a time\n".to_string();
    text.push_str(
        &std::fs::read_to_string(repo_path("tests/data/loghub/HDFS/HDFS_2k.log")).unwrap(),
    );
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
        // Its own checkpoints: a checkpoint of an earlier run, in the working directory, of a
        // file with the same content and a reused inode would say it was loaded already.
        .arg("--data-dir")
        .arg(dir.path())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ingested 2002 lines"), "{stdout}");
    let pg = server.pg().await;
    assert_eq!(count(&pg, "WHERE service = 'hdfs'").await, 2001);
    assert_eq!(
        count(
            &pg,
            "WHERE service = 'hdfs' AND parse_failed AND msg = 'a first line without a time'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pg,
            "WHERE msg LIKE '%\nthis line matches no format at all' AND NOT parse_failed"
        )
        .await,
        1,
        "the last line joined the record before it"
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

/// Runs `timberline ingest` with `args` against `server`; (success, stdout, stderr).
pub(crate) fn ingest(
    server: &TestServer,
    args: &[&str],
    files: &[&std::path::Path],
    data_dir: &std::path::Path,
) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(["ingest", "--quiet", "--server", &server.http, "--data-dir"])
        .arg(data_dir)
        .args(args)
        .args(files)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn ts_range(pg: &tokio_postgres::Client, filter: &str) -> (i64, i64) {
    let row = pg
        .query_one(
            &format!("SELECT CAST(extract(epoch from min(ts)) * 1000000 AS bigint), CAST(extract(epoch from max(ts)) * 1000000 AS bigint) FROM logs {filter}"),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// All 16 loghub samples, auto-detected with no flags: every line a row with its own timestamp
/// (the range the parsers give, which tests/it/parsers.rs checks against loghub's CSVs), none
/// stored raw, none in the future.
#[tokio::test(flavor = "multi_thread")]
async fn every_loghub_sample_lands_with_its_timestamps() {
    use timberline::model::format::{Clock, LineFormat, LOGHUB_SYSTEMS};
    let server = TestServer::start();
    let pg = server.pg().await;
    let state = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    for sys in LOGHUB_SYSTEMS.iter() {
        let path = repo_path(&format!("tests/data/loghub/{0}/{0}_2k.log", sys.name));
        let (ok, stdout, stderr) = ingest(&server, &[], &[&path], state.path());
        assert!(ok, "{}: {stderr}", sys.name);
        assert!(
            stdout.contains("ingested 2000 lines"),
            "{}: {stdout}",
            sys.name
        );
        // Syslog files (loghub's Linux, Mac and OpenSSH) are stored under each line's program
        // and found here by their hosts; the others under the file's name.
        let text = std::fs::read_to_string(&path).unwrap();
        let clock = Clock::new(now);
        let syslog = matches!(sys.name, "Linux" | "Mac" | "OpenSSH");
        let (format, service) = if syslog {
            let mut hosts: Vec<String> = text
                .lines()
                .filter_map(|l| LineFormat::Syslog.parse(l, &clock)?.host)
                .map(|h| format!("'{h}'"))
                .collect();
            hosts.sort();
            hosts.dedup();
            let filter = format!("WHERE host IN ({})", hosts.join(", "));
            (LineFormat::Syslog, filter)
        } else {
            let filter = format!("WHERE service = '{}_2k'", sys.name);
            (LineFormat::Loghub(sys), filter)
        };
        assert!(
            stderr.contains(&format!("format {}", format.name())),
            "{}: {stderr}",
            sys.name
        );
        assert!(!stderr.contains("WARNING"), "{}: {stderr}", sys.name);
        assert_eq!(count(&pg, &service).await, 2000, "{}", sys.name);
        assert_eq!(
            count(&pg, &format!("{service} AND parse_failed")).await,
            0,
            "{}",
            sys.name
        );
        // The range the parser gives for the file with the year the loader infers.
        let stamps: Vec<i64> = text
            .lines()
            .map(|l| format.parse(l, &clock).unwrap().ts)
            .collect();
        let want = (*stamps.iter().min().unwrap(), *stamps.iter().max().unwrap());
        assert_eq!(ts_range(&pg, &service).await, want, "{}", sys.name);
        assert!(
            want.1 <= now + 86_400_000_000,
            "{}: year-less lines not in the future",
            sys.name
        );
    }
}

/// A Latin-1 byte, gzip and zstd copies, a re-run, an appended line: every line stored once.
#[tokio::test(flavor = "multi_thread")]
async fn awkward_files_load_whole_and_once() {
    use std::io::Write;
    let server = TestServer::start();
    let pg = server.pg().await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for i in 0..500 {
        writeln!(
            text,
            "2024-01-15T10:{:02}:{:02}Z INFO request {i} done",
            i / 60,
            i % 60
        )
        .unwrap();
        if i == 250 {
            text.extend_from_slice(b"2024-01-15T10:04:10Z WARN caf\xe9 latin-1 byte\n");
        }
    }
    let plain = dir.path().join("app.log");
    std::fs::write(&plain, &text).unwrap();
    let gz = dir.path().join("gz-app.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&text).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let zst = dir.path().join("zst-app.log.zst");
    std::fs::write(&zst, zstd::encode_all(&text[..], 3).unwrap()).unwrap();
    let state = dir.path().join("state");

    let (ok, _, stderr) = ingest(&server, &["--batch", "100"], &[&plain, &gz, &zst], &state);
    assert!(ok, "{stderr}");
    for service in ["app", "gz-app", "zst-app"] {
        assert_eq!(
            count(&pg, &format!("WHERE service = '{service}'")).await,
            501,
            "{service}"
        );
        assert_eq!(
            count(
                &pg,
                &format!("WHERE service = '{service}' AND parse_failed")
            )
            .await,
            0
        );
        assert_eq!(
            count(
                &pg,
                &format!("WHERE service = '{service}' AND msg = 'caf\u{fffd} latin-1 byte'")
            )
            .await,
            1
        );
    }
    // Again: nothing new, nothing twice.
    let (ok, stdout, stderr) = ingest(&server, &[], &[&plain, &gz, &zst], &state);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ingested 0 lines"), "{stdout}");
    assert!(stderr.contains("resumed after byte"), "{stderr}");
    assert_eq!(count(&pg, "").await, 3 * 501);
    // An appended line is all a third run sends.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&plain)
        .unwrap()
        .write_all(b"2024-01-15T11:00:00Z ERROR appended\n")
        .unwrap();
    let (ok, stdout, _) = ingest(&server, &[], &[&plain], &state);
    assert!(ok);
    assert!(stdout.contains("ingested 1 lines"), "{stdout}");
    assert_eq!(count(&pg, "WHERE service = 'app'").await, 502);
    // --from-start loads it all again, on purpose.
    let (ok, _, _) = ingest(
        &server,
        &["--from-start", "--service", "again"],
        &[&plain],
        &state,
    );
    assert!(ok);
    assert_eq!(count(&pg, "WHERE service = 'again'").await, 502);
}

/// The shapes people have: JSON lines with ECS keys, logfmt, CRI with partial lines, an nginx
/// access log, a Java service log with stack traces, glog, and `--service`/`--host` on all.
#[tokio::test(flavor = "multi_thread")]
async fn files_in_the_shapes_people_have() {
    let server = TestServer::start();
    let pg = server.pg().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let state = dir.path().join("state");
    let files = [
        write("ecs.json", concat!(
            r#"{"@timestamp":"2024-01-15T10:30:45.123Z","log":{"level":"error"},"message":"card declined","service":{"name":"pay"},"host":{"name":"p-1"},"trace":{"id":"t-1"},"user":{"id":7}}"#, "\n",
            r#"{"time":"2024-01-15T10:30:46Z","level":"info","msg":"ok"}"#, "\n",
            r#"{"ts":"2024-01-15T10:30:47.5Z","level":"warn","msg":"own shape","meta":{"trace_id":"t-own","user_id":"u1"}}"#, "\n",
        )),
        write("fmt.log", "ts=2024-01-15T10:30:47Z level=warn msg=\"slow query\" dur=1.2s\nts=2024-01-15T10:30:48Z level=info msg=done\n"),
        write("cri.log", "2024-01-15T10:30:49.123456789Z stdout P first half \n2024-01-15T10:30:49.2Z stdout F second half\n2024-01-15T10:30:50Z stderr F ERROR crashed\n"),
        write("access.log", "10.0.0.1 - - [15/Jan/2024:10:30:51 +0000] \"GET /cart HTTP/1.1\" 502 157 \"-\" \"curl/8\"\n10.0.0.2 - bob [15/Jan/2024:10:30:52 +0000] \"POST /pay HTTP/1.1\" 200 12 \"-\" \"ua\"\n"),
        write("java.log", concat!(
            "2024-01-15 10:30:53,001 ERROR [main] c.s.Pay - charge failed\n",
            "java.lang.IllegalStateException: gateway timeout\n",
            "\tat com.shop.Pay.charge(Pay.java:42)\n",
            "Caused by: java.net.SocketTimeoutException: read timed out\n",
            "\t... 3 more\n",
            "2024-01-15 10:30:54,002 INFO [main] c.s.Pay - retried\n",
        )),
        write("glog.log", "E0115 10:30:55.000001  12 pay.go:10] refund failed\nI0115 10:30:56.000002  12 pay.go:11] refund ok\n"),
    ];
    let paths: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let (ok, _, stderr) = ingest(&server, &["--year", "2024"], &paths, &state);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
    let one = |sql: &'static str| {
        let pg = &pg;
        async move {
            pg.query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };
    let r = one("SELECT service, host, level, trace_id, attrs->'user'->>'id', ts::text FROM logs WHERE msg = 'card declined'").await;
    assert_eq!(
        (
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2),
            r.get::<_, String>(3),
            r.get::<_, String>(4)
        ),
        (
            "pay".into(),
            "p-1".into(),
            "ERROR".into(),
            "t-1".into(),
            "7".into()
        )
    );
    assert_eq!(r.get::<_, String>(5), "2024-01-15 10:30:45.123+00");
    let r = one("SELECT service, level FROM logs WHERE msg = 'slow query'").await;
    assert_eq!(
        (r.get::<_, String>(0), r.get::<_, String>(1)),
        ("fmt".into(), "WARN".into())
    );
    let r = one("SELECT ts::text, attrs->>'stream' FROM logs WHERE msg = 'first half second half'")
        .await;
    assert_eq!(
        (r.get::<_, String>(0), r.get::<_, String>(1)),
        ("2024-01-15 10:30:49.123456+00".into(), "stdout".into())
    );
    assert_eq!(
        count(&pg, "WHERE service = 'cri'").await,
        2,
        "partial lines joined"
    );
    let r = one("SELECT level, attrs->>'status', attrs->>'path' FROM logs WHERE service = 'access' AND attrs->>'method' = 'GET'").await;
    assert_eq!(
        (
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2)
        ),
        ("ERROR".into(), "502".into(), "/cart".into())
    );
    assert_eq!(
        count(&pg, "WHERE service = 'java'").await,
        2,
        "the stack trace is one row"
    );
    let r = one("SELECT level, msg FROM logs WHERE service = 'java' AND level = 'ERROR'").await;
    let msg: String = r.get(1);
    assert!(
        msg.contains("charge failed\njava.lang.IllegalStateException")
            && msg.ends_with("... 3 more"),
        "{msg:?}"
    );
    let r = one(
        "SELECT level, ts::text FROM logs WHERE service = 'glog' AND msg LIKE '%refund failed'",
    )
    .await;
    assert_eq!(
        (r.get::<_, String>(0), r.get::<_, String>(1)),
        ("ERROR".into(), "2024-01-15 10:30:55.000001+00".into())
    );
    assert_eq!(count(&pg, "WHERE parse_failed").await, 0);

    // --service and --host apply to every format, JSON included.
    let (ok, _, stderr) = ingest(
        &server,
        &["--service", "forced", "--host", "h9"],
        &[&files[0], &files[2]],
        &dir.path().join("s2"),
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        count(&pg, "WHERE service = 'forced' AND host = 'h9'").await,
        5
    );
    // Timberline's own event shape (`meta` holding the attributes) keeps its trace id.
    assert_eq!(
        count(
            &pg,
            "WHERE trace_id = 't-own' AND attrs->>'user_id' = 'u1' AND level = 'WARN'"
        )
        .await,
        2
    );
}

/// A format nobody knows is loud (count, samples, how to pick another) and `--pattern` reads it.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_shapes_are_loud_and_pattern_reads_them() {
    let server = TestServer::start();
    let pg = server.pg().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odd.log");
    std::fs::write(
        &file,
        "@@ day 15.01.24 at 10h30m45s | red | kaput\n@@ day 15.01.24 at 10h31m00s | green | fine\n",
    )
    .unwrap();
    let (ok, _, stderr) = ingest(&server, &[], &[&file], &dir.path().join("a"));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("WARNING: 2 of 2 lines matched no format"),
        "{stderr}"
    );
    assert!(stderr.contains("line 1: @@ day 15.01.24"), "{stderr}");
    assert!(stderr.contains("--pattern"), "{stderr}");
    // A format that reads few lines is named weak, with the lines it could not read; those
    // lines join the record before them.
    let weak = dir.path().join("weak.log");
    std::fs::write(
        &weak,
        "2024-01-15 10:30:45 ERROR boom\nalpha beta\ngamma delta\nepsilon zeta\neta theta\n2024-01-15 10:30:46 INFO ok\niota kappa\n",
    )
    .unwrap();
    let (ok, _, stderr) = ingest(&server, &[], &[&weak], &dir.path().join("w"));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("is a weak match: 5 of the first 7 lines")
            && stderr.contains("(lines 2, 3, 4, 5, 7)"),
        "{stderr}"
    );
    assert_eq!(count(&pg, "WHERE service = 'weak'").await, 2);
    assert_eq!(
        count(
            &pg,
            "WHERE service = 'weak' AND level = 'ERROR' AND msg LIKE '%\neta theta'"
        )
        .await,
        1
    );
    assert_eq!(count(&pg, "WHERE parse_failed").await, 2);
    let pattern = r"^@@ day (?P<d>\d+)\.(?P<m>\d+)\.(?P<y>\d+) at (?P<ts>\S+) \| (?P<color>\w+) \| (?P<msg>.*)$";
    let (ok, _, stderr) = ingest(
        &server,
        &["--pattern", pattern, "--service", "odd2"],
        &[&file],
        &dir.path().join("b"),
    );
    // `10h30m45s` alone is no timestamp: the pattern must say where one is. A bad one says why.
    assert!(!ok || stderr.contains("WARNING"), "{stderr}");
    let pattern = r"^@@ day (?P<ts>\S+ at \S+) \| (?P<color>\w+) \| (?P<msg>.*)$";
    let (ok, _, stderr) = ingest(
        &server,
        &["--pattern", "(unclosed"],
        &[&file],
        &dir.path().join("c"),
    );
    assert!(
        !ok && stderr.contains("--pattern is not a valid regex"),
        "{stderr}"
    );
    let _ = pattern;
    let iso = dir.path().join("iso.log");
    std::fs::write(&iso, "@@ 2024-01-15 10:30:45 | red | kaput\n").unwrap();
    let (ok, _, stderr) = ingest(
        &server,
        &[
            "--pattern",
            r"^@@ (?P<ts>\S+ \S+) \| (?P<color>\w+) \| (?P<msg>.*)$",
            "--service",
            "odd3",
            "--tz",
            "Europe/Berlin",
        ],
        &[&iso],
        &dir.path().join("d"),
    );
    assert!(ok, "{stderr}");
    let r = pg
        .query_one(
            "SELECT ts::text, msg, attrs->>'color' FROM logs WHERE service = 'odd3'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2)
        ),
        (
            "2024-01-15 09:30:45+00".into(),
            "kaput".into(),
            "red".into()
        ),
        "--tz reads zone-less stamps as Berlin time"
    );
}

/// Errors say what to do: a server address without `http://` works, a stopped one says so.
#[tokio::test(flavor = "multi_thread")]
async fn server_addresses_as_people_write_them() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.log");
    std::fs::write(&file, "2024-01-15T10:30:45Z INFO hello\n").unwrap();
    let bare = server.http.trim_start_matches("http://").to_string();
    let out = Command::new(bin())
        .args(["ingest", "--quiet", "--server", &bare, "--data-dir"])
        .arg(dir.path())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = Command::new(bin())
        .args([
            "ingest",
            "--quiet",
            "--from-start",
            "--server",
            &closed.to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach the Timberline server") && stderr.contains("--server"),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "the cause is named: {stderr}");
    // A re-run whose checkpoint says nothing is new still asks the server, and fails alike.
    let rerun = |server: &str, key: &str| {
        let out = Command::new(bin())
            .args([
                "ingest",
                "--quiet",
                "--server",
                server,
                "--api-key",
                key,
                "--data-dir",
            ])
            .arg(dir.path())
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, again) = rerun(&closed.to_string(), "timberline");
    assert!(!ok, "{again}");
    assert_eq!(
        again.lines().last(),
        stderr.lines().last(),
        "the same message as a first run"
    );
    let (ok, wrong_key) = rerun(&server.http, "not-the-key");
    assert!(!ok && wrong_key.contains("401"), "{wrong_key}");
    let (ok, fine) = rerun(&server.http, "timberline");
    assert!(ok && fine.contains("0 lines -> 0 rows"), "{fine}");
}

/// `--follow` tails a growing file through rotation and truncation, and a restarted follower
/// resumes with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn follow_tails_rotation_and_resumes() {
    follow_scenario(&[]).await;
}

/// The same with the polling fallback (`--poll`, for filesystems without local file events).
#[tokio::test(flavor = "multi_thread")]
async fn follow_by_polling_tails_rotation_and_resumes() {
    follow_scenario(&["--poll"]).await;
}

async fn follow_scenario(flags: &[&str]) {
    use std::io::Write;
    let server = TestServer::start();
    let pg = server.pg().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.log");
    let state = dir.path().join("state");
    let append = |text: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    };
    append("2024-01-15T10:00:00Z INFO line 1\n");
    let follow = || {
        Command::new(bin())
            .args([
                "ingest",
                "--quiet",
                "--follow",
                "--server",
                &server.http,
                "--data-dir",
            ])
            .arg(&state)
            .args(flags)
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait = |n: i64| {
        let pg = &pg;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let got = count(pg, "WHERE service = 'live'").await;
                if got >= n {
                    return got;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{got} of {n} lines arrived"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    let mut child = follow();
    assert_eq!(wait(1).await, 1);
    append("2024-01-15T10:00:01Z INFO line 2\n2024-01-15T10:00:02Z INFO line 3\n");
    assert_eq!(wait(3).await, 3);
    // Rotation: the file is renamed, the app writes one more line to it, then a new one starts.
    let old = dir.path().join("live.log.1");
    std::fs::rename(&file, &old).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&old)
        .unwrap()
        .write_all(b"2024-01-15T10:00:02.5Z INFO line 3b\n")
        .unwrap();
    append("2024-01-15T10:00:03Z INFO line 4\n");
    assert_eq!(wait(5).await, 5);
    // The follower stops; lines written meanwhile arrive when it is back, once.
    child.kill().unwrap();
    child.wait().unwrap();
    append("2024-01-15T10:00:04Z INFO line 5\n");
    let mut child = follow();
    assert_eq!(wait(6).await, 6);
    // Truncation: the file starts over.
    std::fs::write(&file, "").unwrap();
    append("2024-01-15T10:00:05Z INFO line 6\n");
    assert_eq!(wait(7).await, 7);
    // A half-written line waits for its end (the pause lets the follower see the half).
    append("2024-01-15T10:00:06Z INFO li");
    std::thread::sleep(std::time::Duration::from_millis(400));
    append("ne 7\n");
    assert_eq!(wait(8).await, 8);
    child.kill().unwrap();
    child.wait().unwrap();
    let msgs: Vec<String> = pg
        .query(
            "SELECT msg FROM logs WHERE service = 'live' ORDER BY ts",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<String> = ["1", "2", "3", "3b", "4", "5", "6", "7"]
        .iter()
        .map(|i| format!("line {i}"))
        .collect();
    assert_eq!(msgs, want);
}

/// A batch larger than the server takes (413) is split and sent in parts: every line arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_too_big_for_the_server_is_sent_in_parts() {
    let server = TestServer::start_with(&["--max-body-bytes", "1048576"]);
    let pg = server.pg().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.log");
    let text: String = (0..60)
        .map(|i| {
            format!(
                "2024-01-15T10:00:{i:02}Z INFO row {i} {}\n",
                "y".repeat(40_000)
            )
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let (ok, _, stderr) = ingest(&server, &[], &[&file], &dir.path().join("s"));
    assert!(ok, "{stderr}");
    assert_eq!(count(&pg, "WHERE service = 'big'").await, 60);
}
