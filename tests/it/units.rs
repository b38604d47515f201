//! Small pure functions: level normalisation, the triage format, the JSON batch decoder, the
//! generator's determinism, PostgreSQL settings.

use serde_json::Value;
use timberline::generate::Generator;
use timberline::ingest::decode::{decode_batch, decode_ndjson, DecodeError};
use timberline::model::level::normalize;

#[test]
fn levels_normalise() {
    for (given, want) in [
        ("warning", "WARN"),
        ("E", "ERROR"),
        ("notice", "INFO"),
        ("crit", "FATAL"),
        ("trace", "TRACE"),
        (" debug ", "DEBUG"),
        ("audit", "audit"),
    ] {
        assert_eq!(normalize(given), want, "{given}");
    }
}

#[test]
fn batch_maps_source_meta_and_trace() {
    let body = br#"{"source":{"service":"payments","host":"h1","region":"eu","environment":"prod"},
        "logs":[{"ts":"2024-01-15T10:30:45.123Z","level":"warning","msg":"x","meta":{"trace_id":"t1","user_id":7}}]}"#;
    let d = decode_batch(body, 5).unwrap();
    let r = &d.records[0];
    assert_eq!(
        (r.service.as_str(), r.host.as_str(), r.level.as_str()),
        ("payments", "h1", "WARN")
    );
    assert_eq!(r.trace_id.as_deref(), Some("t1"));
    assert_eq!(r.ts, 1_705_314_645_123_000);
    assert_eq!(r.ingest_ts, 5);
    let attrs: Value = serde_json::from_str(&r.attrs).unwrap();
    assert_eq!(attrs["region"], "eu");
    assert_eq!(attrs["environment"], "prod");
    assert_eq!(attrs["user_id"], 7);
    assert!(attrs.get("trace_id").is_none());
}

#[test]
fn ndjson_limits_and_raw_lines() {
    let body = "{\"msg\":\"a\"}\n\n[1]\n{\"msg\":\"b\"}\r\n";
    let d = decode_ndjson(body.as_bytes(), 1).unwrap();
    assert_eq!(d.records.len(), 3);
    assert!(d.records[1].parse_failed);
    assert_eq!(d.records[1].msg, "[1]");
    let many = "{}\n".repeat(10_001);
    assert!(matches!(
        decode_ndjson(many.as_bytes(), 1),
        Err(DecodeError::TooManyEvents(_))
    ));
}

#[test]
fn generator_is_deterministic_and_realistic() {
    let a: Vec<_> = {
        let mut g = Generator::new(9, 0, 1000);
        (0..500).map(|_| g.next_record()).collect()
    };
    let b: Vec<_> = {
        let mut g = Generator::new(9, 0, 1000);
        (0..500).map(|_| g.next_record()).collect()
    };
    assert_eq!(a, b);
    let services: std::collections::HashSet<_> = a.iter().map(|r| r.service.as_str()).collect();
    assert!(services.len() > 10, "{}", services.len());
    let errors = a.iter().filter(|r| r.level == "ERROR").count();
    assert!((10..70).contains(&errors), "{errors} errors in 500");
    assert!(a.iter().all(|r| !r.msg.contains("<*>")));
    let traced = a.iter().filter(|r| r.trace_id.is_some()).count();
    assert!(traced > 250);
}

/// The distributions the benchmark driver relies on (README, "timberline generate").
#[test]
fn generator_matches_the_advertised_distributions() {
    use std::collections::{HashMap, HashSet};
    use timberline::generate::NEEDLE_TOKEN;
    const N: usize = 50_000;
    let mut g = Generator::new(1, 0, 10_000);
    let events: Vec<Value> = (0..N).map(|_| g.next_event()).collect();
    let mut g = Generator::new(1, 0, 10_000);
    let recs: Vec<_> = (0..N).map(|_| g.next_record()).collect();

    for (level, per_mille) in [
        ("DEBUG", 300),
        ("INFO", 500),
        ("WARN", 120),
        ("ERROR", 70),
        ("FATAL", 10),
    ] {
        let got = recs.iter().filter(|r| r.level == level).count() * 1000 / N;
        assert!(
            got.abs_diff(per_mille) <= 15,
            "{level}: {got}‰, want {per_mille}‰"
        );
    }
    let mut by_service: HashMap<&str, usize> = HashMap::new();
    for r in &recs {
        *by_service.entry(r.service.as_str()).or_default() += 1;
    }
    assert_eq!(by_service.len(), 50);
    let mut volumes: Vec<usize> = by_service.values().copied().collect();
    volumes.sort_unstable_by(|a, b| b.cmp(a));
    assert!(
        volumes[0] > N / 10 && volumes[49] < N / 200,
        "Zipf-skewed: {volumes:?}"
    );
    let hosts: HashSet<&str> = recs.iter().map(|r| r.host.as_str()).collect();
    assert!((400..=500).contains(&hosts.len()), "{} hosts", hosts.len());

    // Each trace id is carried by 3-8 consecutive traced events (the last may be cut short).
    let mut spans: Vec<(String, usize, HashSet<String>)> = Vec::new();
    for r in recs.iter().filter(|r| r.trace_id.is_some()) {
        let id = r.trace_id.clone().unwrap_or_default();
        match spans.last_mut() {
            Some((last, n, services)) if *last == id => {
                *n += 1;
                services.insert(r.service.clone());
            }
            _ => spans.push((id, 1, HashSet::from([r.service.clone()]))),
        }
    }
    let complete = &spans[..spans.len() - 1];
    assert!(complete.iter().all(|(_, n, _)| (3..=8).contains(n)));
    let ids: HashSet<&String> = spans.iter().map(|(id, _, _)| id).collect();
    assert_eq!(ids.len(), spans.len(), "a trace id is never reused");
    assert!(complete.iter().filter(|(_, _, s)| s.len() >= 2).count() > complete.len() * 3 / 4);

    let users: HashSet<String> = recs
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.attrs).unwrap()["user_id"].to_string())
        .collect();
    assert!(users.len() > 5_000, "{} user ids", users.len());

    // ~1% late by at most 10 s; otherwise increasing.
    let mut newest = i64::MIN;
    let mut late = 0;
    for r in &recs {
        if r.ts < newest {
            late += 1;
            assert!(
                newest - r.ts <= 10_000_000 + 20_000,
                "{} µs late",
                newest - r.ts
            );
        }
        newest = newest.max(r.ts);
    }
    assert!((N / 200..N / 50).contains(&late), "{late} late of {N}");

    let bytes: usize = events.iter().map(|e| e.to_string().len() + 1).sum();
    assert!(
        (400..600).contains(&(bytes / N)),
        "{} bytes per event",
        bytes / N
    );
    let needles: Vec<usize> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.msg.contains(NEEDLE_TOKEN))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(needles, vec![4_999], "one needle per million rows");
}

#[test]
fn pg_settings_match_postgres() {
    use timberline_udfs::pg_compat::{default_setting, version_string};
    assert_eq!(default_setting("server_version_num"), Some("160006"));
    assert_eq!(default_setting("TimeZone"), Some("UTC"));
    assert_eq!(default_setting("no.such"), None);
    assert!(version_string().starts_with("PostgreSQL 16.6 (Timberline "));
}

#[test]
fn fast_path_and_reference_decoder_store_the_same_rows() {
    use timberline::ingest::decode::decode_batch_reference;
    let events = [
        r#"{"ts":"2024-01-15T10:30:45.123Z","level":"warning","msg":"a","meta":{"trace_id":"t1","user_id":7,"z":{"n":[1,2]}}}"#,
        r#"{"ts":1705314645123,"msg":"b \"quoted\" \u00e9","service":"other","host":"h9"}"#,
        r#"{"msg":"no ts, no level","meta":{"region":"us","traceId":"t2"}}"#,
        r#"{"ts":null,"level":null,"msg":null,"meta":null}"#,
        r#"{"ts":"2024-01-15 10:30:45","level":"E","msg":"c","meta":{"region":"override"}}"#,
    ];
    for e in events {
        let body = format!(
            r#"{{"source":{{"service":"s","host":"h","region":"eu","environment":"prod"}},"logs":[{e}]}}"#
        );
        let fast = decode_batch(body.as_bytes(), 42).unwrap().records;
        let reference = decode_batch_reference(&body, 42).unwrap().records;
        assert_eq!(fast.len(), 1);
        let (mut f, r) = (fast[0].clone(), reference[0].clone());
        // attrs must be the same JSON object (text may differ in whitespace only).
        let fa: Value = serde_json::from_str(&f.attrs).unwrap();
        let ra: Value = serde_json::from_str(&r.attrs).unwrap();
        assert_eq!(fa, ra, "{e}");
        f.attrs = r.attrs.clone();
        assert_eq!(f, r, "{e}");
    }
}

#[test]
fn generator_level_mix_is_configurable() {
    use timberline::generate::parse_level_mix;
    let mix = parse_level_mix("info=90, error=10").unwrap();
    assert_eq!(
        mix,
        vec![("INFO".to_string(), 90), ("ERROR".to_string(), 10)]
    );
    assert!(parse_level_mix("INFO").is_none());
    assert!(parse_level_mix("INFO=0").is_none());
    let mut g = Generator::new(1, 0, 1000).with_levels(mix);
    let recs: Vec<_> = (0..2000).map(|_| g.next_record()).collect();
    assert!(recs.iter().all(|r| r.level == "INFO" || r.level == "ERROR"));
    let errors = recs.iter().filter(|r| r.level == "ERROR").count();
    assert!((120..280).contains(&errors), "{errors} of 2000 at 10%");
    // Errors carry 5xx statuses, like real services.
    let e = recs.iter().find(|r| r.level == "ERROR").unwrap();
    let attrs: Value = serde_json::from_str(&e.attrs).unwrap();
    assert!(attrs["http_status"].as_u64().unwrap() >= 500);
}

/// The in-memory kernel against a brute-force sort, on runs with duplicates, for every k.
#[test]
fn nearest_kernel_equals_brute_force() {
    use rand::{Rng, SeedableRng};
    use timberline_udfs::nearest::kernel;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..300 {
        let n = rng.gen_range(0..200);
        let mut ts: Vec<i64> = (0..n).map(|_| rng.gen_range(0..1_000)).collect();
        ts.sort();
        let levels: Vec<&str> = (0..n)
            .map(|_| ["INFO", "ERROR", "FATAL"][rng.gen_range(0..3)])
            .collect();
        let postings = kernel::Postings::build(n, |i| Some(levels[i]));
        let target = rng.gen_range(-50..1_050);
        let k = rng.gen_range(1..20);
        let brute = |keep: &dyn Fn(usize) -> bool| {
            let mut rows: Vec<u32> = (0..n).filter(|&i| keep(i)).map(|i| i as u32).collect();
            rows.sort_by_key(|&i| (ts[i as usize].abs_diff(target), ts[i as usize], i));
            rows.truncate(k);
            rows
        };
        let mut out = Vec::new();
        kernel::nearest(&ts, target, k, &mut out);
        assert_eq!(out, brute(&|_| true), "ts={ts:?} target={target} k={k}");
        out.clear();
        kernel::nearest_among(&ts, postings.rows("FATAL"), target, k, &mut out);
        assert_eq!(out, brute(&|i| levels[i] == "FATAL"));
        let r = kernel::range(&ts, target - 10, target + 10);
        let want: Vec<usize> = (0..n)
            .filter(|&i| (target - 10..=target + 10).contains(&ts[i]))
            .collect();
        assert_eq!(r.collect::<Vec<_>>(), want);
    }
}

#[test]
fn distances_are_written_like_go_durations() {
    use timberline::query::seed_api::go_duration;
    for (us, want) in [
        (0, "0s"),
        (750, "750µs"),
        (26_000, "26ms"),
        (1_500, "1.5ms"),
        (2_250_000, "2.25s"),
        (180_000_000, "3m0s"),
        (3_723_500_000, "1h2m3.5s"),
        (3_600_000_000, "1h0m0s"),
    ] {
        assert_eq!(go_duration(us), want);
    }
}

#[test]
fn session_settings_set_reset_and_refuse_like_postgres() {
    use std::time::Duration;
    use timberline_udfs::pg_compat::PgSession;
    let mut s = PgSession::new("u", timberline_udfs::pg_compat::Tenant::One("t".into()));
    s.set("TimeZone", "Europe/Paris").unwrap();
    assert_eq!(s.get("timezone").as_deref(), Some("Europe/Paris"));
    // Durations: bare numbers are ms; stored the way PostgreSQL shows them.
    for (given, shown, ms) in [
        ("5000", "5s", 5000),
        ("1.5 min", "90s", 90_000),
        ("2min", "2min", 120_000),
        ("250", "250ms", 250),
    ] {
        s.set("statement_timeout", given).unwrap();
        assert_eq!(
            s.get("statement_timeout").as_deref(),
            Some(shown),
            "{given}"
        );
        assert_eq!(s.statement_timeout(), Some(Duration::from_millis(ms)));
    }
    assert_eq!(
        s.set("statement_timeout", "soon").unwrap_err().sqlstate(),
        "22023"
    );
    assert_eq!(
        s.set("server_version", "1").unwrap_err().sqlstate(),
        "55P02"
    );
    assert_eq!(
        s.set("client_encoding", "LATIN1").unwrap_err().sqlstate(),
        "22023"
    );
    // Unknown names are remembered but reported as unknown (the caller warns).
    assert_eq!(s.set("nope", "1"), Ok(false));
    assert_eq!(s.get("nope").as_deref(), Some("1"));
    assert_eq!(s.set("myapp.flag", "on"), Ok(true));
    s.reset("timezone");
    assert_eq!(s.get("TimeZone").as_deref(), Some("UTC"));
    s.reset_all();
    assert_eq!(s.statement_timeout(), None);
    assert_eq!((s.get("myapp.flag"), s.get("nope")), (None, None));
}

#[test]
fn set_statements_are_recognised_in_every_spelling() {
    use timberline::pgwire::{classify, Fixture};
    let set = |name: &str, value: Option<&str>| {
        Some(Fixture::Set {
            name: name.into(),
            value: value.map(str::to_string),
        })
    };
    assert_eq!(
        classify("SET statement_timeout = '5s'"),
        set("statement_timeout", Some("5s"))
    );
    assert_eq!(
        classify("set LOCAL statement_timeout TO 100"),
        set("statement_timeout", Some("100"))
    );
    assert_eq!(
        classify("SET TIME ZONE 'Europe/Paris'"),
        set("TimeZone", Some("Europe/Paris"))
    );
    assert_eq!(
        classify("SET NAMES 'UTF8'"),
        set("client_encoding", Some("UTF8"))
    );
    assert_eq!(
        classify("SET search_path TO public, \"$user\""),
        set("search_path", Some("public, \"$user\""))
    );
    assert_eq!(
        classify("SET application_name = 'it''s'"),
        set("application_name", Some("it's"))
    );
    assert_eq!(classify("SET x.y = DEFAULT"), set("x.y", None));
    assert_eq!(
        classify("SET TRANSACTION READ ONLY"),
        Some(Fixture::Tag("SET"))
    );
    assert_eq!(
        classify("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"),
        Some(Fixture::Tag("SET"))
    );
    assert!(matches!(
        classify("SET ROLE admin"),
        Some(Fixture::Refuse("0A000", _))
    ));
    assert_eq!(classify("RESET ALL"), Some(Fixture::Reset(None, "RESET")));
    assert_eq!(
        classify("SHOW \"TimeZone\""),
        Some(Fixture::Show("TimeZone".into()))
    );
    assert_eq!(classify("SELECT 1"), None);
}

#[test]
fn block_lists_round_trip_in_every_encoding() {
    use rand::{Rng, SeedableRng};
    use roaring::RoaringBitmap;
    use timberline::index::{decode_blocks, encode_blocks};
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut tags = std::collections::BTreeSet::new();
    for case in 0..500 {
        // Sparse, dense and very large block numbers, so each encoding gets chosen.
        let (span, n) = match case % 5 {
            0 => (200, rng.gen_range(1..5)),
            1 => (200, rng.gen_range(100..200)),
            2 => (5_000_000, rng.gen_range(1..50)),
            3 => (70_000, rng.gen_range(1..70_000)),
            _ => (65_536, rng.gen_range(40_000..60_000)),
        };
        let mut blocks: RoaringBitmap = (0..n).map(|_| rng.gen_range(0..span)).collect();
        if case % 5 == 4 {
            // Dense blocks and one far away: roaring's bitmap container beats both others.
            blocks.insert(rng.gen_range(1_000_000..5_000_000));
        }
        let mut bytes = vec![0xee];
        encode_blocks(&blocks, &mut bytes).expect("encode");
        tags.insert(bytes[1]);
        assert_eq!(
            decode_blocks(&bytes[1..]),
            Some(blocks.clone()),
            "case {case}"
        );
        // Cut short or garbled, a list decodes to something or nothing; it never panics.
        for cut in [1, bytes.len() / 2] {
            let _ = decode_blocks(&bytes[1..cut.max(1)]);
        }
        let mut bad = bytes[1..].to_vec();
        bad.iter_mut().skip(1).for_each(|b| *b = !*b);
        let _ = decode_blocks(&bad);
    }
    assert_eq!(
        tags.len(),
        3,
        "deltas, bitset and roaring were all used: {tags:?}"
    );
    assert_eq!(decode_blocks(&[9, 1, 2]), None, "unknown encoding");
    assert_eq!(decode_blocks(&[]), None);
}

/// A version 2 sidecar (bit 63 marking an inline block, bare roaring postings), written here
/// byte by byte as the previous build wrote it, still answers term lookups.
#[test]
fn version_2_sidecars_are_still_read() {
    use roaring::RoaringBitmap;
    use timberline::index::SegmentIndex;
    let many: RoaringBitmap = [1u32, 4, 9].into_iter().collect();
    let mut postings = Vec::new();
    many.serialize_into(&mut postings).expect("roaring");
    let mut map = fst::MapBuilder::memory();
    map.insert("card", (postings.len() as u64) | 0)
        .expect("fst");
    map.insert("declined", 1 << 63 | 7).expect("fst");
    let fst = map.into_inner().expect("fst");
    let name = b"msg";
    let header_len = 8 + 16 + 1 + name.len() + 36;
    let mut file = Vec::new();
    file.extend_from_slice(b"TLIDX\0\0\x01");
    for v in [2u32, 10 * 1024, 1024, 1] {
        file.extend_from_slice(&v.to_le_bytes());
    }
    file.push(name.len() as u8);
    file.extend_from_slice(name);
    let (fst_at, post_at) = (header_len as u64, (header_len + fst.len()) as u64);
    for v in [fst_at, fst.len() as u64, post_at, postings.len() as u64] {
        file.extend_from_slice(&v.to_le_bytes());
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&fst), &postings);
    file.extend_from_slice(&crc.to_le_bytes());
    file.extend_from_slice(&fst);
    file.extend_from_slice(&postings);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seg-1.idx");
    std::fs::write(&path, file).expect("write");
    let index = SegmentIndex::open(&path).expect("a version 2 sidecar opens");
    assert_eq!(index.term("msg", "card"), many);
    assert_eq!(index.term("msg", "declined"), [7u32].into_iter().collect());
    assert!(index.term("msg", "missing").is_empty());
    assert!(index.counts().is_none(), "version 2 had no count table");
}
