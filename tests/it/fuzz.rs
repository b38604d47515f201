//! The fuzz targets (`timberline::fuzz`) over their seeds and a bounded set of deterministic
//! mutations of them: a short fuzzing budget in every `cargo test`. Long coverage-guided runs
//! use the same targets through `fuzz/` (cargo-fuzz); see benches/RESULTS.md.

use std::io::Write;

use serde_json::json;
use timberline::fuzz::TARGETS;

use crate::support::TestServer;
use crate::wire::{cstr, execute, msg, parse, query, startup, sync};

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `seed` (bit flips, byte changes, insertions, deletions, duplications,
/// truncation, splicing with `other`), as libFuzzer's mutators do.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] = [0, 0xff, b'"', b'{', b'}', b'\n', b'\\', 0x80][rng.below(8)];
            }
            2 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            3 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            4 if !out.is_empty() => {
                let end = (at + 1 + rng.below(32)).min(out.len());
                let piece = out[at.min(end)..end].to_vec();
                out.splice(at..at, piece);
            }
            5 => out.truncate(at),
            _ if !other.is_empty() => {
                let from = rng.below(other.len());
                let piece = &other[from..(from + 1 + rng.below(64)).min(other.len())];
                out.splice(at..at, piece.iter().copied());
            }
            _ => {}
        }
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// A real sidecar index, written by a server's flush.
async fn a_sidecar() -> Vec<u8> {
    let server = TestServer::start();
    let logs: Vec<_> = (0..50)
        .map(|i| (i, ["INFO", "ERROR"][i % 2]))
        .map(|(i, level)| json!({"timestamp": 1_705_312_800 + i, "level": level, "msg": format!("request {i} failed: timeout"), "meta": {"trace_id": format!("t{i}")}}))
        .collect();
    let (s, _) = server.ingest(&json!({"logs": logs})).await;
    assert_eq!(s, 202);
    server.flush().await;
    let path = crate::support::sidecars(&server)
        .into_iter()
        .next()
        .expect("a sidecar");
    std::fs::read(path).expect("read sidecar")
}

/// Shipper bodies for the seeds: OTLP protobuf and JSON, Loki protobuf (not compressed) and
/// JSON.
fn shipper_seeds() -> (Vec<u8>, &'static str, Vec<u8>, &'static str) {
    use prost::Message;
    let otlp_json = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeLogs":[{"scope":{"name":"s"},"logRecords":[{"timeUnixNano":"1705314645000000000","severityNumber":17,"body":{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"7"}}]}},"traceId":"5b8efff798038103d269b633813fc60c","attributes":[{"key":"k","value":{"arrayValue":{"values":[{"boolValue":true}]}}}]}]}]}]}"#;
    let otlp_pb = serde_json::from_str::<
        opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
    >(otlp_json)
    .expect("OTLP JSON seed")
    .encode_to_vec();
    let loki_pb = timberline::ingest::loki::PushRequest {
        streams: vec![timberline::ingest::loki::StreamAdapter {
            labels: r#"{app="api", level="error"}"#.into(),
            entries: vec![timberline::ingest::loki::EntryAdapter {
                timestamp: Some(timberline::ingest::loki::Timestamp {
                    seconds: 1_705_314_645,
                    nanos: 5,
                }),
                line: b"card declined".to_vec(),
                structured_metadata: vec![timberline::ingest::loki::LabelPairAdapter {
                    name: "trace_id".into(),
                    value: "t".into(),
                }],
            }],
            hash: 0,
        }],
    }
    .encode_to_vec();
    let loki_json = r#"{"streams":[{"stream":{"app":"api"},"values":[["1705314645000000000","x",{"u":"1"}]]}]}"#;
    (otlp_pb, otlp_json, loki_pb, loki_json)
}

fn seeds(target: &str, sidecar: &[u8]) -> Vec<Vec<u8>> {
    let batch = json!({"source": {"service": "api", "region": "eu"}, "logs": [
        {"ts": "2024-01-15T10:30:45.123Z", "level": "error", "msg": "card declined", "meta": {"trace_id": "4bf92f35", "user_id": "u42"}},
        {"timestamp": 1705314645, "severity": 3, "message": {"nested": true}, "service": "pay", "host": "h1"},
        "a bare string", {"ts": "not a time", "msg": null}
    ]})
    .to_string();
    let ndjson = "{\"ts\":1705314645123,\"level\":\"warn\",\"msg\":\"disk 91%\"}\nnot json at all\n{\"msg\":\"x\",\"meta\":[1,2]}\n";
    match target {
        "ingest_body" => vec![
            [&[0u8][..], batch.as_bytes()].concat(),
            [&[4u8][..], ndjson.as_bytes()].concat(),
            [&[2u8][..], &gzip(batch.as_bytes())].concat(),
            [&[7u8][..], &zstd::encode_all(ndjson.as_bytes(), 1).expect("zstd")].concat(),
            // Epochs at and past every unit's bound, before 1970 and past year 9999.
            [&[4u8][..], b"{\"ts\":253402300799}\n{\"ts\":253402300800}\n{\"ts\":-62135596801}\n{\"ts\":\"-5\"}\n{\"ts\":1e22}\n{\"ts\":253402300799999999999.5}\n{\"ts\":\"0000-01-01T00:00:00Z\"}\n"].concat(),
        ],
        "shipper_bodies" => {
            let (otlp_pb, otlp_json, loki_pb, loki_json) = shipper_seeds();
            let bulk = "{\"index\":{\"_index\":\"a\"}}\n{\"@timestamp\":\"2024-01-15T10:30:45Z\",\"message\":\"m\",\"log\":{\"level\":\"warn\"}}\n{\"delete\":{}}\nnot json\n";
            let syslog = "60 <165>1 2024-01-15T10:30:44Z h app 1 ID [sd@1 a=\"b\"] msg\n<13>Jan 15 10:30:45 h app[3]: bsd line\nno header\n";
            vec![
                [&[0u8][..], &otlp_pb].concat(),
                [&[1u8][..], otlp_json.as_bytes()].concat(),
                [&[2u8][..], &snap::raw::Encoder::new().compress_vec(&loki_pb).expect("snappy")].concat(),
                [&[3u8][..], loki_json.as_bytes()].concat(),
                [&[4u8][..], bulk.as_bytes()].concat(),
                [&[5u8][..], syslog.as_bytes()].concat(),
                [&[11u8][..], syslog.as_bytes()].concat(),
            ]
        }
        "shipper_measure" => {
            let (otlp_pb, otlp_json, loki_pb, loki_json) = shipper_seeds();
            vec![
                [&[0u8][..], &otlp_pb].concat(),
                [&[1u8][..], otlp_json.as_bytes()].concat(),
                [&[2u8][..], &loki_pb].concat(),
                [&[3u8][..], loki_json.as_bytes()].concat(),
            ]
        }
        "log_lines" => vec![
            b"2024-01-15 10:30:53,001 ERROR [main] c.s.Pay - charge failed\njava.lang.IllegalStateException: x\n\tat a.b(C.java:1)\n".to_vec(),
            b"ts=2024-01-15T10:30:47Z level=warn msg=\"slow\" dur=1.2s\n2024-01-15T10:30:49.123456789Z stdout P half\n".to_vec(),
            b"10.0.0.1 - - [15/Jan/2024:10:30:51 +0000] \"GET /cart HTTP/1.1\" 502 157 \"-\" \"curl/8\"\nE0115 10:30:55.000001  12 pay.go:10] x\n".to_vec(),
            b"2024-01-15T10:30:45.123Z [ERROR] payment failed\n2024-01-15T10:30:46Z body only\n".to_vec(),
            b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating\n".to_vec(),
            b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0\n".to_vec(),
            b"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties\n".to_vec(),
            b"2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200\n".to_vec(),
            b"17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]\n".to_vec(),
        ],
        "match_query" => [
            "error AND (timeout OR refused) NOT debug",
            "\"card declined\" service:payments",
            "level:error host:pay-* tim?out",
            "((a OR b) AND -c) \"x y z\"",
            "trace_id:4bf92f35 user_id:u42*",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "wal_body" => {
            let records = timberline::ingest::decode::decode_batch(batch.as_bytes(), 1).expect("seed batch").records;
            vec![[&3u64.to_le_bytes()[..], &timberline::wal::format::encode_records(&records)].concat()]
        }
        "sidecar" => vec![sidecar.to_vec()],
        "pg_session" => vec![
            [startup("timberline"), query("SELECT 1; SELECT count(*) FROM logs"), msg(b'X', &[])].concat(),
            [
                startup("timberline"),
                parse("SELECT $1::text, now()"),
                msg(b'B', &[cstr(""), cstr(""), vec![0, 0, 0, 1, 0, 0, 0, 3], b"abc".to_vec(), vec![0, 0]].concat()),
                msg(b'D', &[b'P', 0]),
                execute(0),
                sync(),
            ]
            .concat(),
            [startup("timberline"), query("SET x.y = 'ü'; SHOW x.y"), query("SELECT $4000000000::int")].concat(),
            [8u32.to_be_bytes().to_vec(), 80877103u32.to_be_bytes().to_vec()].concat(),
        ],
        "pg_frames" => {
            let session = [
                startup("timberline"),
                query("SELECT 1"),
                parse("SELECT $1::text"),
                msg(b'B', &[cstr(""), cstr(""), vec![0, 0, 0, 1, 0, 0, 0, 3], b"abc".to_vec(), vec![0, 0]].concat()),
                msg(b'D', &[b'P', 0]),
                execute(0),
                sync(),
                msg(b'X', &[]),
            ]
            .concat();
            let password = [startup("timberline"), msg(b'p', b"secret\0"), query("SELECT 1")].concat();
            vec![
                [&[1u8][..], &session].concat(),
                [&[0u8][..], &password].concat(),
                [&[11u8][..], &session].concat(),
            ]
        }
        other => panic!("no seeds for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fuzz_targets_survive_their_seeds_and_mutations() {
    let sidecar = a_sidecar().await;
    // The in-process pg server needs its own runtime: run the targets off this one.
    tokio::task::spawn_blocking(move || {
        let only = std::env::var("TIMBERLINE_FUZZ_TARGET").ok();
        for (name, target) in TARGETS {
            if only.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            let seeds = seeds(name, &sidecar);
            write_seeds(name, &seeds);
            // TIMBERLINE_FUZZ_ROUNDS=N for a longer local run.
            let rounds = std::env::var("TIMBERLINE_FUZZ_ROUNDS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(if name == "pg_session" { 300 } else { 3_000 });
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
            for seed in &seeds {
                target(seed);
            }
            for i in 0..rounds {
                let seed = &seeds[i % seeds.len()];
                let other = &seeds[rng.below(seeds.len())];
                let input = mutate(&mut rng, seed, other);
                let run = std::panic::catch_unwind(|| target(&input));
                assert!(
                    run.is_ok(),
                    "fuzz target {name} panicked on mutation {i}: {}",
                    hex(&input)
                );
            }
        }
    })
    .await
    .expect("fuzz run");
}

/// With `TIMBERLINE_FUZZ_SEEDS=DIR`, the seeds are also written to `DIR/<target>/seed-N`, the
/// starting corpus for `cargo fuzz run` (benches/RESULTS.md).
fn write_seeds(target: &str, seeds: &[Vec<u8>]) {
    let Some(dir) = std::env::var_os("TIMBERLINE_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::Path::new(&dir).join(target);
    std::fs::create_dir_all(&dir).expect("seed dir");
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed).expect("write seed");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
