//! The sidecar index never changes an answer: random `match()` queries (terms, phrases,
//! prefixes, wildcards, `field:value`, AND/OR/NOT, groups) with random field filters over data spread across
//! indexed segments, a segment whose sidecar is corrupt, one whose sidecar is missing, and the
//! hot buffer, each equal to a brute-force evaluation over the events as generated. And it does
//! prune: a rare token opens only the segments that hold it (or cannot say).

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use timberline_udfs::text::Query;
use tokio_postgres::Client;

use crate::support::{explain, parsed_first, plan_metric, sidecars, TestServer};

const WORDS: [&str; 14] = [
    "alpha", "beta", "gamma", "delta", "timeout", "card", "declined", "cache", "miss", "retry",
    "bank", "login", "disk", "error",
];
const SERVICES: [&str; 3] = ["payments", "checkout", "auth"];
const LEVELS: [&str; 3] = ["INFO", "WARN", "ERROR"];
const REGIONS: [&str; 3] = ["eu", "us", "ap"];
const CHUNKS: usize = 8;
const FLUSHED: usize = 6;

struct Event {
    n: usize,
    service: &'static str,
    level: &'static str,
    trace: Option<String>,
    region: &'static str,
    msg: String,
}

fn word(rng: &mut StdRng) -> &'static str {
    // Skewed: early words are common, late ones rare.
    let i = (rng.gen::<f64>().powi(2) * WORDS.len() as f64) as usize;
    WORDS[i.min(WORDS.len() - 1)]
}

fn events(rng: &mut StdRng) -> Vec<Event> {
    (0..2_400)
        .map(|n| {
            let mut parts: Vec<String> = (0..rng.gen_range(2..7))
                .map(|_| word(rng).to_string())
                .collect();
            match rng.gen_range(0..10) {
                0 => parts.push(format!("blk_-{}", rng.gen_range(0..50))),
                1 => parts.push(format!(
                    "from 10.0.{}.{}:80",
                    rng.gen_range(0..3),
                    rng.gen_range(0..9)
                )),
                2 => parts.push(format!("code={}", rng.gen_range(0..5))),
                3 => parts[0] = parts[0].to_uppercase(),
                // Text the index must treat with care: non-ASCII, and a token past 64 bytes.
                4 if n % 7 == 0 => parts.push("ÜBERweisung".into()),
                5 if n % 5 == 0 => {
                    parts.push(format!("{}{}", "x".repeat(70), WORDS[n % WORDS.len()]))
                }
                _ => {}
            }
            if n == 5 {
                parts.push("zebra".into());
            }
            Event {
                n,
                service: SERVICES[rng.gen_range(0..SERVICES.len())],
                level: LEVELS[rng.gen_range(0..LEVELS.len())],
                trace: rng
                    .gen_bool(0.6)
                    .then(|| format!("t{}", rng.gen_range(0..40))),
                region: REGIONS[rng.gen_range(0..REGIONS.len())],
                msg: parts.join(" "),
            }
        })
        .collect()
}

/// Eight chunks; the first six flushed as six indexed segments, the last two hot.
async fn load(server: &TestServer, evs: &[Event]) {
    for (i, chunk) in evs.chunks(evs.len() / CHUNKS).enumerate() {
        server
            .ingest_ndjson(chunk.iter().map(|e| {
                let mut meta = json!({"n": e.n, "region": e.region});
                if let Some(t) = &e.trace {
                    meta["trace_id"] = json!(t);
                }
                json!({"ts": format!("2024-01-15T10:{:02}:{:02}Z", e.n / 60 % 60, e.n % 60),
                       "service": e.service, "host": "h", "level": e.level, "msg": e.msg, "meta": meta})
            }))
            .await;
        if i < FLUSHED {
            server.flush().await;
        }
    }
}

fn random_query(rng: &mut StdRng, depth: u32) -> String {
    let w = word(rng);
    match rng.gen_range(0..if depth > 1 { 6 } else { 10 }) {
        0 | 1 => w.to_string(),
        2 => w.to_uppercase(),
        3 => format!("\"{} {}\"", w, word(rng)),
        4 => format!("{}*", &w[..rng.gen_range(1..4)]),
        5 => match rng.gen_range(0..6) {
            0 => format!("*{}*", &w[1..3]),
            1 => format!("{}?{}", &w[..1], &w[2..]),
            2 => format!("blk_-{}*", rng.gen_range(0..6)),
            3 => match rng.gen_range(0..3) {
                0 => format!("service:{}", SERVICES[rng.gen_range(0..3)]),
                1 => format!("level:{}", LEVELS[rng.gen_range(0..3)].to_lowercase()),
                _ => format!("trace_id:\"t{}\"", rng.gen_range(0..40)),
            },
            _ => ["10.0.1.*", "code=3", "10.0.2.4", "80"][rng.gen_range(0..4)].to_string(),
        },
        6 => format!(
            "{}{}",
            ["NOT ", "-"][rng.gen_range(0..2)],
            random_query(rng, depth + 1)
        ),
        7 => format!(
            "({} OR {})",
            random_query(rng, depth + 1),
            random_query(rng, depth + 1)
        ),
        8 => format!(
            "{} AND {}",
            random_query(rng, depth + 1),
            random_query(rng, depth + 1)
        ),
        _ => format!(
            "{} {}",
            random_query(rng, depth + 1),
            random_query(rng, depth + 1)
        ),
    }
}

/// The brute-force truth of a `match()` query on one event, `field:value` terms included.
fn brute(q: &Query, e: &Event) -> bool {
    match q {
        Query::Field { field, value } => match field.as_str() {
            "service" => e.service == value,
            "level" => e.level == value,
            "host" => value == "h",
            _ => e.trace.as_deref() == Some(value.as_str()),
        },
        Query::And(qs) => qs.iter().all(|q| brute(q, e)),
        Query::Or(qs) => qs.iter().any(|q| brute(q, e)),
        Query::Not(q) => !brute(q, e),
        leaf => leaf.matches_text(&e.msg),
    }
}

/// A fragment for `LIKE '%…%'`: part of a word, or the end of one word and the start of the next.
fn random_like(rng: &mut StdRng) -> (String, bool) {
    let (a, b) = (word(rng), word(rng));
    let pattern = match rng.gen_range(0..5) {
        0 => a[1..a.len() - 1].to_string(),
        1 => format!("{} {}", &a[2..], &b[..2]),
        2 => format!("{a} {b}"),
        3 => {
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_string()
                + &a[..2]
        }
        _ => ["ber", "BER", "ÜBER", "1 ", "blk", "10.0.1", "zebr"][rng.gen_range(0..7)].to_string(),
    };
    let pattern = if rng.gen_bool(0.3) {
        pattern.to_uppercase()
    } else {
        pattern
    };
    (pattern, rng.gen_bool(0.5))
}

fn like(text: &str, fragment: &str, insensitive: bool) -> bool {
    if insensitive {
        text.to_lowercase().contains(&fragment.to_lowercase())
    } else {
        text.contains(fragment)
    }
}

/// A random extra condition: SQL text and its brute-force test.
fn random_filter(rng: &mut StdRng) -> (String, Box<dyn Fn(&Event) -> bool>) {
    match rng.gen_range(0..6) {
        0 => {
            let s = SERVICES[rng.gen_range(0..3)];
            (
                format!(" AND service = '{s}'"),
                Box::new(move |e: &Event| e.service == s),
            )
        }
        1 => {
            let (a, b) = (LEVELS[rng.gen_range(0..3)], LEVELS[rng.gen_range(0..3)]);
            (
                format!(" AND level IN ('{a}', '{b}')"),
                Box::new(move |e: &Event| e.level == a || e.level == b),
            )
        }
        2 => {
            let t = format!("t{}", rng.gen_range(0..40));
            (
                format!(" AND trace_id = '{t}'"),
                Box::new(move |e: &Event| e.trace.as_deref() == Some(t.as_str())),
            )
        }
        3 => {
            let r = REGIONS[rng.gen_range(0..3)];
            (
                format!(" AND attrs->>'region' = '{r}'"),
                Box::new(move |e: &Event| e.region == r),
            )
        }
        4 => {
            let s = SERVICES[rng.gen_range(0..3)];
            (
                format!(" AND (service = '{s}' OR match(msg, 'bank'))"),
                Box::new(move |e: &Event| {
                    e.service == s || Query::parse("bank").is_ok_and(|q| q.matches_text(&e.msg))
                }),
            )
        }
        _ => (String::new(), Box::new(|_: &Event| true)),
    }
}

async fn ns(client: &Client, sql: &str) -> BTreeSet<usize> {
    parsed_first(client, sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn index_driven_answers_equal_brute_force() {
    // Small index blocks, so that 300-row segments are narrowed to row selections; what is not
    // flushed stays hot however long the test takes.
    let server =
        TestServer::start_with(&["--index-block-rows", "16", "--flush-interval-secs", "86400"]);
    let mut rng = StdRng::seed_from_u64(11);
    let evs = events(&mut rng);
    load(&server, &evs).await;
    let files = sidecars(&server);
    assert_eq!(files.len(), FLUSHED, "one sidecar per flushed segment");
    // Segment 2's sidecar is corrupt, segment 3's is gone: both must be scanned, not trusted.
    let mut bytes = std::fs::read(&files[1]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&files[1], bytes).unwrap();
    std::fs::remove_file(&files[2]).unwrap();
    let client = server.pg().await;

    // Fixed cases first: negated phrases (the index only has a superset of a phrase's rows, so
    // it must not subtract it), then random ones.
    let fixed = [
        "NOT \"alpha beta\"",
        "-\"alpha alpha\" beta",
        "NOT (gamma AND \"alpha beta\")",
        "-a*",
        "NOT *ph*",
    ];
    let mut nonempty = 0;
    for i in 0..300 {
        let q = fixed
            .get(i)
            .map_or_else(|| random_query(&mut rng, 0), |q| q.to_string());
        let (extra, keep) = if i < fixed.len() {
            (
                String::new(),
                Box::new(|_: &Event| true) as Box<dyn Fn(&Event) -> bool>,
            )
        } else {
            random_filter(&mut rng)
        };
        let sql = format!("SELECT attrs->>'n' FROM logs WHERE match(msg, '{q}'){extra}");
        match Query::parse(&q) {
            Ok(parsed) => {
                let want: BTreeSet<usize> = evs
                    .iter()
                    .filter(|e| brute(&parsed, e) && keep(e))
                    .map(|e| e.n)
                    .collect();
                let got = ns(&client, &sql).await;
                assert_eq!(got, want, "query {i}: {sql}");
                nonempty += usize::from(!want.is_empty());
            }
            Err(e) => {
                let err = client.query(&sql, &[]).await.expect_err(&sql);
                let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: {err}"));
                assert_eq!(db.code().code(), "22023", "{sql}: {e}");
            }
        }
    }
    assert!(nonempty > 100, "only {nonempty} queries matched anything");

    // LIKE / ILIKE '%…%' are served by the index too, with their own semantics (substrings).
    for i in 0..150 {
        let (pattern, insensitive) = random_like(&mut rng);
        let op = if insensitive { "ILIKE" } else { "LIKE" };
        let sql = format!("SELECT attrs->>'n' FROM logs WHERE msg {op} '%{pattern}%'");
        let want: BTreeSet<usize> = evs
            .iter()
            .filter(|e| like(&e.msg, &pattern, insensitive))
            .map(|e| e.n)
            .collect();
        assert_eq!(ns(&client, &sql).await, want, "like {i}: {sql}");
    }
    // Two or more words are looked up in the index (one word could hide inside any token).
    let plan = explain(
        &client,
        "SELECT count(*) FROM logs WHERE msg LIKE '%alpha beta%'",
    )
    .await;
    assert!(plan.contains("index_fallbacks=2"), "{plan}");

    // A token only event 5 holds (in segment 1): segments 4-6 are never opened, 2 and 3 fall
    // back to a scan, segment 1 decodes a selection.
    let sql = "SELECT attrs->>'n' FROM logs WHERE match(msg, 'zebra')";
    assert_eq!(ns(&client, sql).await, BTreeSet::from([5]));
    let plan = explain(&client, sql).await;
    for want in [
        "segments_total=6",
        "segments_pruned_index=3",
        "index_fallbacks=2",
        "segments_scanned=3",
    ] {
        assert!(plan.contains(want), "{want} in {plan}");
    }
    // Segment 1 offers one 16-row block; 2 and 3 every row (300 each).
    assert!(plan.contains("rows_selected=616"), "{plan}");
    // Equality on an indexed label prunes too: every segment with a readable index.
    let plan = explain(
        &client,
        "SELECT count(*) FROM logs WHERE trace_id = 'no-such-trace'",
    )
    .await;
    assert_eq!(
        metric(&plan, "segments_pruned_bloom") + metric(&plan, "segments_pruned_index"),
        6,
        "{plan}"
    );
}

/// The value of `name=N` in an EXPLAIN ANALYZE text.
fn metric(plan: &str, name: &str) -> u64 {
    plan_metric(plan, name).unwrap_or_else(|| panic!("no {name} in {plan}"))
}

/// Segment blooms rule out segments for `trace_id` and `attrs` values before their index is
/// opened — also for keys too varied to be indexed (a request id per row) — and a corrupt bloom
/// file only stops that segment from being ruled out.
#[tokio::test(flavor = "multi_thread")]
async fn blooms_rule_out_segments_without_opening_their_index() {
    const SEGMENTS: usize = 5;
    const ROWS: usize = 600;
    let server = TestServer::start();
    for seg in 0..SEGMENTS {
        server
            .ingest_ndjson((0..ROWS).map(|r| {
                let n = seg * ROWS + r;
                json!({"ts": format!("2024-01-15T10:{:02}:{:02}Z", n / 60 % 60, n % 60),
                       "service": "api", "host": "h", "level": "INFO", "msg": format!("event {n}"),
                       "meta": {"n": n, "trace_id": format!("trace-{seg}-{}", r / 4),
                                "request_id": format!("req-{seg}-{r}"), "region": "eu"}})
            }))
            .await;
        server.flush().await;
    }
    let client = server.pg().await;
    let check = |sql: &'static str, want: Vec<usize>, pruned_bloom: u64| {
        let client = &client;
        async move {
            let got = ns(client, sql).await;
            assert_eq!(got, want.into_iter().collect::<BTreeSet<_>>(), "{sql}");
            let plan = explain(client, sql).await;
            assert_eq!(
                metric(&plan, "segments_pruned_bloom"),
                pruned_bloom,
                "{sql}: {plan}"
            );
            plan
        }
    };
    check(
        "SELECT attrs->>'n' FROM logs WHERE trace_id = 'trace-2-7'",
        (2 * ROWS + 28..2 * ROWS + 32).collect(),
        4,
    )
    .await;
    // request_id has a value per row: the index leaves that key out, the bloom does not.
    let plan = check(
        "SELECT attrs->>'n' FROM logs WHERE attrs->>'request_id' = 'req-3-15'",
        vec![3 * ROWS + 15],
        4,
    )
    .await;
    assert!(
        plan.contains("rows_selected=600"),
        "the index cannot narrow it: {plan}"
    );
    check(
        "SELECT attrs->>'n' FROM logs WHERE trace_id IN ('trace-1-1', 'trace-4-0')",
        vec![
            ROWS + 4,
            ROWS + 5,
            ROWS + 6,
            ROWS + 7,
            4 * ROWS,
            4 * ROWS + 1,
            4 * ROWS + 2,
            4 * ROWS + 3,
        ],
        3,
    )
    .await;
    // An OR with a condition the bloom knows nothing of rules nothing out; AND does.
    check(
        "SELECT attrs->>'n' FROM logs WHERE trace_id = 'trace-0-0' OR level = 'DEBUG'",
        (0..4).collect(),
        0,
    )
    .await;
    check(
        "SELECT attrs->>'n' FROM logs WHERE trace_id = 'trace-0-0' AND attrs->>'region' = 'eu'",
        (0..4).collect(),
        4,
    )
    .await;

    // Segment 0's bloom file, corrupted, is not trusted: its index answers instead.
    let bloom = sidecars(&server)[0].with_extension("bloom");
    let mut bytes = std::fs::read(&bloom).unwrap();
    let last = bytes.len() - 9;
    bytes[last] ^= 0xff;
    std::fs::write(&bloom, bytes).unwrap();
    let restarted = server.restart();
    let client = restarted.pg().await;
    let sql = "SELECT attrs->>'n' FROM logs WHERE trace_id = 'trace-2-7'";
    assert_eq!(
        ns(&client, sql).await,
        (2 * ROWS + 28..2 * ROWS + 32).collect()
    );
    let plan = explain(&client, sql).await;
    assert_eq!(metric(&plan, "segments_pruned_bloom"), 3, "{plan}");
    assert_eq!(metric(&plan, "segments_pruned_index"), 1, "{plan}");
}

/// True if the index's blocks for `q` are exactly the blocks with a matching row: terms,
/// prefixes, wildcards and OR of them. AND and phrases give the blocks holding every part
/// (somewhere, not necessarily in one row), and NOT cannot narrow: supersets.
fn block_exact(q: &Query) -> bool {
    match q {
        Query::Phrase(_) | Query::Not(_) | Query::And(_) => false,
        Query::Or(qs) => qs.iter().all(block_exact),
        _ => true,
    }
}

/// Directly on one segment's index: the candidates of every random query and filter hold every
/// matching row, and exactly those when the query has no phrase (phrases are re-checked).
#[test]
fn candidates_hold_every_matching_row() {
    use datafusion::prelude::{col, lit};
    use timberline::index::{build_index_with_blocks, candidates, IndexFilter, SegmentIndex};
    const BLOCK: u32 = 16;
    use timberline::model::{records_to_batch, LogRecord};

    let mut rng = StdRng::seed_from_u64(5);
    let evs = events(&mut rng);
    let records: Vec<LogRecord> = evs
        .iter()
        .map(|e| LogRecord {
            ts: e.n as i64,
            ingest_ts: 0,
            tenant: "default".into(),
            service: e.service.into(),
            host: "h".into(),
            level: e.level.into(),
            msg: e.msg.clone(),
            trace_id: e.trace.clone(),
            attrs: json!({"n": e.n, "region": e.region}).to_string(),
            parse_failed: false,
            truncated: false,
        })
        .collect();
    let batch = records_to_batch(&records).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg.idx");
    std::fs::write(&path, build_index_with_blocks(&batch, BLOCK).unwrap()).unwrap();
    let index = SegmentIndex::open(&path).unwrap();
    assert_eq!(index.rows() as usize, evs.len());
    assert_eq!(index.blocks() as usize, evs.len().div_ceil(BLOCK as usize));

    let match_udf = timberline_udfs::text::match_udf();
    for _ in 0..400 {
        let q = random_query(&mut rng, 0);
        let Ok(parsed) = Query::parse(&q) else {
            continue;
        };
        let s = SERVICES[rng.gen_range(0..3)];
        let with_service = rng.gen_bool(0.3);
        let mut filters =
            vec![
                IndexFilter::from_expr(&match_udf.call(vec![col("msg"), lit(q.clone())])).unwrap(),
            ];
        if with_service {
            filters.push(IndexFilter::from_expr(&col("service").eq(lit(s))).unwrap());
        }
        let want: BTreeSet<u32> = evs
            .iter()
            .filter(|e| brute(&parsed, e) && (!with_service || e.service == s))
            .map(|e| e.n as u32)
            .collect();
        let blocks: BTreeSet<u32> = candidates(&index, &filters)
            .map(|b| b.iter().collect())
            .unwrap_or_else(|| (0..evs.len() as u32).map(|n| n / BLOCK).collect());
        let want_blocks: BTreeSet<u32> = want.iter().map(|n| n / BLOCK).collect();
        let missed: Vec<_> = want_blocks.difference(&blocks).collect();
        assert!(missed.is_empty(), "{q}: misses blocks {missed:?}");
        if block_exact(&parsed) && !with_service {
            assert_eq!(
                blocks, want_blocks,
                "{q}: blocks of terms, prefixes, wildcards are exact"
            );
        }
    }
    for _ in 0..300 {
        let (pattern, insensitive) = random_like(&mut rng);
        let pat = lit(format!("%{pattern}%"));
        let expr = if insensitive {
            col("msg").ilike(pat)
        } else {
            col("msg").like(pat)
        };
        let want: BTreeSet<u32> = evs
            .iter()
            .filter(|e| like(&e.msg, &pattern, insensitive))
            .map(|e| e.n as u32)
            .collect();
        let blocks: BTreeSet<u32> = IndexFilter::from_expr(&expr)
            .and_then(|f| candidates(&index, &[f]))
            .map(|b| b.iter().collect())
            .unwrap_or_else(|| (0..evs.len() as u32).map(|n| n / BLOCK).collect());
        let want_blocks: BTreeSet<u32> = want.iter().map(|n| n / BLOCK).collect();
        let missed: Vec<_> = want_blocks.difference(&blocks).collect();
        assert!(missed.is_empty(), "{pattern}: misses blocks {missed:?}");
    }
    // A corrupt byte anywhere in a section is caught when the index opens.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert!(SegmentIndex::open(&path).is_err());
}

/// Every hour of a flush gets a new directory, and a one-row hour's index is done long before
/// its Parquet file: the index writer must not depend on the Parquet writer having made the
/// directory (a flush used to fail with "No such file or directory" when it lost that race).
#[test]
fn segments_and_indexes_land_in_fresh_hour_directories() {
    use timberline::index::{write_index, SegmentIndex};
    use timberline::model::{records_to_batch, LogRecord};
    use timberline::segment::{write_segments, HOURS_KEPT_APART};
    use timberline::storage::layout::index_path;
    const HOUR: i64 = 3_600_000_000;

    let record = |ts: i64| LogRecord {
        ts,
        ingest_ts: 0,
        tenant: "default".into(),
        service: "api".into(),
        host: "h".into(),
        level: "INFO".into(),
        msg: format!("event at {ts}"),
        trace_id: None,
        attrs: "{}".into(),
        parse_failed: false,
        truncated: false,
    };
    // One row in each of as many hours as a flush keeps apart: as many new directories, as
    // many races the old code could lose.
    let hours = HOURS_KEPT_APART as i64;
    let records: Vec<LogRecord> = (0..hours)
        .map(|h| record(1_705_000_000_000_000 + h * HOUR))
        .collect();
    let batch = records_to_batch(&records).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let segments = write_segments(dir.path(), &[batch.clone()], 1, Some(16)).unwrap();
    assert_eq!(segments.len(), HOURS_KEPT_APART);
    for s in &segments {
        let parquet = dir.path().join(&s.location.key);
        assert!(parquet.exists(), "{} missing", parquet.display());
        let index = SegmentIndex::open(&index_path(&parquet)).unwrap();
        assert_eq!(index.rows(), 1);
    }

    // On its own, the index writer makes the directory it needs.
    let lone = dir.path().join("not/yet/made/seg.parquet");
    write_index(&lone, &batch, 16).unwrap();
    assert_eq!(
        SegmentIndex::open(&index_path(&lone)).unwrap().rows(),
        hours as u32
    );
}
