//! Top-k by time (`ORDER BY ts DESC LIMIT k`, the logs panel, `search_logs`): the scan reads the
//! newest segments first and the TopK's threshold rules the older ones out unopened — and the
//! answers stay exactly those of a full sort: random filters, both directions, ties broken by a
//! second key, over segments whose time ranges overlap (late data) and the hot buffer.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio_postgres::Client;

use crate::support::{explain, parsed_first, plan_metric, TestServer};

const SEGMENTS: usize = 12;
const PER_SEGMENT: usize = 150;
const SERVICES: [&str; 3] = ["payments", "checkout", "auth"];
const LEVELS: [&str; 3] = ["INFO", "WARN", "ERROR"];
const WORDS: [&str; 6] = ["timeout", "reset", "peer", "declined", "cache", "retry"];

struct Event {
    n: usize,
    /// Milliseconds after 2024-01-15T00:00:00Z.
    ms: u64,
    service: &'static str,
    level: &'static str,
    msg: String,
}

fn ts(ms: u64) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    format!(
        "2024-01-15T{h:02}:{:02}:{:02}.{:03}Z",
        rest / 60_000,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Segment `s` holds minutes `s*10 .. s*10+10` (in order, one event per distinct millisecond),
/// except every 10th event of a segment, which is late: its time falls in the previous segment's
/// range. The hot buffer holds a last chunk, new and late alike.
fn events(rng: &mut StdRng) -> Vec<Vec<Event>> {
    let mut n = 0;
    (0..=SEGMENTS)
        .map(|s| {
            (0..PER_SEGMENT)
                .map(|i| {
                    let base = s as u64 * 600_000;
                    // Even milliseconds in order, odd ones late (each in a window of its own).
                    let ms = if i % 10 == 9 && s > 0 {
                        base - 600_000 + (i / 10) as u64 * 40_000 + 1 + 2 * rng.gen_range(0..1000)
                    } else {
                        base + i as u64 * 3_000 + 2 * rng.gen_range(0..1000)
                    };
                    n += 1;
                    let words: Vec<&str> = (0..rng.gen_range(1..4))
                        .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
                        .collect();
                    Event {
                        n,
                        ms,
                        service: SERVICES[rng.gen_range(0..SERVICES.len())],
                        level: LEVELS[rng.gen_range(0..LEVELS.len())],
                        msg: words.join(" "),
                    }
                })
                .collect()
        })
        .collect()
}

async fn load(server: &TestServer, chunks: &[Vec<Event>]) {
    for (i, chunk) in chunks.iter().enumerate() {
        server
            .ingest_ndjson(chunk.iter().map(|e| {
                json!({"ts": ts(e.ms), "service": e.service, "host": "h", "level": e.level,
                       "msg": e.msg, "meta": {"n": e.n}})
            }))
            .await;
        if i < SEGMENTS {
            server.flush().await;
        }
    }
}

type Keep = Box<dyn Fn(&Event) -> bool>;

fn random_filter(rng: &mut StdRng) -> (String, Keep) {
    match rng.gen_range(0..6) {
        0 => (String::new(), Box::new(|_| true)),
        1 => {
            let s = SERVICES[rng.gen_range(0..SERVICES.len())];
            (
                format!("WHERE service = '{s}'"),
                Box::new(move |e| e.service == s),
            )
        }
        2 => {
            let (s, l) = (
                SERVICES[rng.gen_range(0..SERVICES.len())],
                LEVELS[rng.gen_range(0..LEVELS.len())],
            );
            (
                format!("WHERE service = '{s}' AND level = '{l}'"),
                Box::new(move |e| e.service == s && e.level == l),
            )
        }
        3 => {
            let w = WORDS[rng.gen_range(0..WORDS.len())];
            (
                format!("WHERE match(msg, '{w}')"),
                Box::new(move |e| e.msg.split(' ').any(|x| x == w)),
            )
        }
        4 => {
            let (a, b) = (
                WORDS[rng.gen_range(0..WORDS.len())],
                WORDS[rng.gen_range(0..WORDS.len())],
            );
            let phrase = format!("{a} {b}");
            (
                format!("WHERE msg LIKE '%{phrase}%'"),
                Box::new(move |e| e.msg.contains(&phrase)),
            )
        }
        _ => {
            let since = rng.gen_range(0..SEGMENTS as u64 * 600_000);
            (
                format!("WHERE ts >= '{}' AND level <> 'INFO'", ts(since)),
                Box::new(move |e| e.ms >= since && e.level != "INFO"),
            )
        }
    }
}

async fn ns(client: &Client, sql: &str) -> Vec<i64> {
    parsed_first(client, sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn top_k_by_time_reads_newest_first_and_answers_as_a_full_sort() {
    let server = TestServer::start_with(&["--flush-interval-secs", "86400"]);
    let mut rng = StdRng::seed_from_u64(33);
    let chunks = events(&mut rng);
    load(&server, &chunks).await;
    let all: Vec<&Event> = chunks.iter().flatten().collect();
    let client = server.pg().await;

    for i in 0..60 {
        let (filter, keep) = random_filter(&mut rng);
        let k = [1, 7, 50, 400, 5000][rng.gen_range(0..5)];
        let desc = rng.gen_bool(0.6);
        let mut want: Vec<&Event> = all.iter().copied().filter(|e| keep(e)).collect();
        // A second key: rows of one millisecond (none here but by chance) still have one order.
        let sql = match rng.gen_range(0..3) {
            0 => format!(
                "SELECT attrs->>'n' FROM logs {filter} ORDER BY ts {} LIMIT {k}",
                if desc { "DESC" } else { "ASC" }
            ),
            1 => format!(
                "SELECT n FROM (SELECT attrs->>'n' AS n, ts, msg FROM logs {filter}) t \
                 ORDER BY ts {}, n LIMIT {k}",
                if desc { "DESC" } else { "ASC" }
            ),
            _ => format!(
                "SELECT attrs->>'n' FROM logs {filter} ORDER BY ts {} LIMIT {k} OFFSET 3",
                if desc { "DESC" } else { "ASC" }
            ),
        };
        want.sort_by_key(|e| (e.ms, e.n));
        if desc {
            want.sort_by_key(|e| (std::cmp::Reverse(e.ms), e.n));
        }
        let skip = if sql.contains("OFFSET 3") { 3 } else { 0 };
        let want: Vec<i64> = want.iter().skip(skip).take(k).map(|e| e.n as i64).collect();
        assert_eq!(ns(&client, &sql).await, want, "query {i}: {sql}");
    }

    // The newest 10 rows before the last segment's start (in segment 10, and late rows of
    // segment 11), and the oldest 10, leave most segments unopened: the first segments read set
    // the TopK's threshold and the rest are ruled out by their time range. (The hot buffer's
    // rows are filtered out or later, so it cannot set the threshold alone.)
    let before_last = ts((SEGMENTS as u64 - 1) * 600_000);
    for (dir, sql) in [
        (
            "desc",
            format!(
                "SELECT ts, msg FROM logs WHERE ts < '{before_last}' ORDER BY ts DESC LIMIT 10"
            ),
        ),
        (
            "asc",
            "SELECT ts, msg FROM logs WHERE service <> 'nobody' ORDER BY ts LIMIT 10".to_string(),
        ),
    ] {
        let plan = explain(&client, &sql).await;
        let total = plan_metric(&plan, "files_ranges_pruned_statistics")
            .unwrap_or_else(|| panic!("{dir}: no file pruning metric in {plan}"));
        let matched: u64 = plan
            .split("files_ranges_pruned_statistics=")
            .nth(1)
            .and_then(|s| s.split('→').nth(1))
            .and_then(|s| s.trim().split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{dir}: {plan}"));
        assert!(total >= SEGMENTS as u64, "{dir}: {total} files in {plan}");
        assert!(
            matched <= 4,
            "{dir}: {matched} of {total} segments read for the top 10: {plan}"
        );
    }
}
