//! Fuzzing entry points: each takes arbitrary bytes and drives one decoder that reads client
//! or file input, asserting what must hold for every input (no panic, round trips). The
//! cargo-fuzz targets in `fuzz/` call these for long runs; `tests/it/fuzz.rs` runs each over
//! its seeds and a bounded set of mutations in every `cargo test`.

use std::io::Write;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::index::SegmentIndex;
use crate::ingest::decode::{decode_batch, decode_ndjson};
use crate::ingest::encoding::decompress;
use crate::model::format::{is_continuation, Clock, LineFormat, LOGHUB_SYSTEMS};
use crate::wal::format::{decode_body, encode_records};

/// Every fuzz target, by name.
pub const TARGETS: [(&str, fn(&[u8])); 9] = [
    ("ingest_body", ingest_body),
    ("shipper_bodies", shipper_bodies),
    ("shipper_measure", shipper_measure),
    ("log_lines", log_lines),
    ("match_query", match_query),
    ("wal_body", wal_body),
    ("sidecar", sidecar),
    ("pg_session", pg_session),
    ("pg_frames", pg_frames),
];

/// A client's byte stream after TLS negotiation, as the server reads it: each chunk passes the
/// frame check, then pgwire's decoder takes every frame it lets through, the connection state
/// moving as a server's would (startup, then a password first unless bit 0 of the first byte
/// says trust). Bits 1–3 pick the chunk size the bytes arrive in. Nothing may panic, and
/// pgwire must never be handed a frame the check refused.
pub fn pg_frames(data: &[u8]) {
    use pgwire::api::{ClientInfo, DefaultClient, PgWireConnectionState as State};
    use pgwire::messages::PgWireFrontendMessage as Msg;
    use tokio_util::codec::Decoder;

    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let password_first = mode & 1 == 0;
    let chunk = [1, 2, 3, 5, 8, 64, 512, 4096][usize::from((mode >> 1) & 7)];
    let mut check = crate::pgwire::FrameCheck::new(password_first, 1 << 16);
    let client = DefaultClient::<()>::new(([127, 0, 0, 1], 5432).into(), false);
    let mut codec = pgwire::tokio::server::PgWireMessageServerCodec::new(client);
    codec.client_info.set_state(State::AwaitingStartup);
    let mut buf = bytes::BytesMut::new();
    for piece in stream.chunks(chunk) {
        let refused = check.observe(piece).err();
        let pass = refused.as_ref().map_or(piece.len(), |r| r.pass);
        buf.extend_from_slice(&piece[..pass]);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(Msg::Startup(_))) if password_first => {
                    codec.client_info.set_state(State::AuthenticationInProgress)
                }
                Ok(Some(Msg::Startup(_) | Msg::PasswordMessageFamily(_))) => {
                    codec.client_info.set_state(State::ReadyForQuery);
                    check.logged_in();
                }
                Ok(Some(Msg::CancelRequest(_))) => return,
                Ok(Some(_)) => {}
                Ok(None) => break,
                // pgwire refusing what the check let through is fine: the server ends the
                // connection there, and so does this.
                Err(_) => return,
            }
        }
        if refused.is_some() {
            return;
        }
    }
}

/// An HTTP ingest body: the first byte picks JSON batch or NDJSON, plain, gzip or zstd. Every
/// decoded batch must survive the WAL's encoding unchanged.
pub fn ingest_body(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let encoding = ["identity", "identity", "gzip", "zstd"][usize::from(kind % 4)];
    let Ok(raw) = decompress(encoding, Bytes::copy_from_slice(body), 1 << 20) else {
        return;
    };
    let decoded = if kind & 4 == 0 {
        decode_batch(&raw, 1_700_000_000_000_000)
    } else {
        decode_ndjson(&raw, 1_700_000_000_000_000)
    };
    let Ok(mut decoded) = decoded else {
        return;
    };
    for r in &mut decoded.records {
        assert_placeable(r.ts);
        r.enforce_label_limit(64);
        assert!(r.service.len() <= 64 && r.host.len() <= 64 && r.level.len() <= 64);
    }
    let payload = encode_records(&decoded.records);
    let body = [&7u64.to_le_bytes()[..], &payload].concat();
    let (seq, back) = decode_body(&body).unwrap_or_else(|e| panic!("WAL round trip: {e}"));
    assert_eq!(seq, 7);
    assert_eq!(back, decoded.records, "WAL round trip changed records");
}

/// A row's time is an instant a row can hold (a placed one, or the receive time), whatever was
/// sent.
fn assert_placeable(ts: crate::model::Micros) {
    assert!(
        (crate::model::epoch::MIN_MICROS..=crate::model::epoch::MAX_MICROS).contains(&ts),
        "ts {ts} outside years 1 to 9999"
    );
}

/// A shipper's body through its decoder, picked by the first byte: OTLP protobuf and JSON, Loki
/// protobuf (snappy) and JSON, an Elasticsearch `_bulk` body, syslog messages and TCP framing
/// (the rest of the byte: the chunk size). Nothing may panic; every decoded record fits the WAL.
pub fn shipper_bodies(data: &[u8]) {
    use crate::ingest::{bulk, loki, otlp, syslog};
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let now = 1_709_251_200_000_000;
    let records = match mode % 6 {
        0 => otlp::decode_protobuf(body, now)
            .map(|d| d.records)
            .unwrap_or_default(),
        1 => otlp::decode_json(body, now)
            .map(|d| d.records)
            .unwrap_or_default(),
        2 => loki::decode_protobuf(body, 1 << 20, now)
            .map(|d| d.records)
            .unwrap_or_default(),
        3 => loki::decode_json(body, now)
            .map(|d| d.records)
            .unwrap_or_default(),
        4 => bulk::decode_bulk(&String::from_utf8_lossy(body), Some("fuzz"), now)
            .map(|b| b.records)
            .unwrap_or_default(),
        _ => {
            let chunk = [1, 3, 7, 64, 4096][usize::from(mode / 6 % 5)];
            let mut framer = syslog::framing::Framer::new(256);
            let mut frames = Vec::new();
            for piece in body.chunks(chunk) {
                framer.push(piece, &mut frames);
            }
            frames.extend(framer.finish());
            frames
                .iter()
                .map(|f| {
                    assert!(f.bytes.len() <= 256, "a frame over the limit");
                    syslog::parse(&String::from_utf8_lossy(&f.bytes), "peer", now)
                })
                .collect()
        }
    };
    for r in &records {
        assert_placeable(r.ts);
    }
    let payload = encode_records(&records);
    let body = [&1u64.to_le_bytes()[..], &payload].concat();
    let (_, back) = decode_body(&body).unwrap_or_else(|e| panic!("WAL round trip: {e}"));
    assert_eq!(back, records, "WAL round trip changed records");
}

/// A shipper body measured, then decoded without measuring, picked by the first byte (OTLP
/// protobuf and JSON, Loki protobuf and JSON): measuring never panics, never counts fewer
/// records than the decoder builds (protobuf: exactly as many), and never refuses as malformed
/// a body the decoder accepts.
pub fn shipper_measure(data: &[u8]) {
    use crate::ingest::loki::PushRequest;
    use crate::ingest::measure::{json, proto, shapes, Kind, MeasureError};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest as Otlp;
    use prost::Message;

    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let otlp_records = |r: Otlp| -> usize {
        r.resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum()
    };
    let loki_json_records = |v: serde_json::Value| -> usize {
        let streams = v
            .get("streams")
            .and_then(|s| s.as_array())
            .cloned()
            .unwrap_or_default();
        streams
            .iter()
            .flat_map(|s| {
                ["values", "entries"]
                    .map(|k| s.get(k).and_then(|a| a.as_array()).map_or(0, Vec::len))
            })
            .sum()
    };
    let (measured, decoded, exact) = match mode % 4 {
        0 => (
            proto::measure(body, &shapes::OTLP_LOGS),
            Otlp::decode(body).ok().map(otlp_records),
            true,
        ),
        1 => (
            json::measure(body, Kind::Message(&shapes::OTLP_LOGS), 0),
            serde_json::from_slice::<Otlp>(body).ok().map(otlp_records),
            false,
        ),
        2 => (
            proto::measure(body, &shapes::LOKI_PUSH),
            PushRequest::decode(body)
                .ok()
                .map(|p| p.streams.iter().map(|s| s.entries.len()).sum()),
            true,
        ),
        _ => (
            json::measure(body, Kind::Message(&shapes::LOKI_JSON), 1),
            serde_json::from_slice(body).ok().map(loki_json_records),
            false,
        ),
    };
    match (measured, decoded) {
        (Ok(budget), Some(n)) if exact => assert_eq!(budget.records(), n, "records counted"),
        (Ok(budget), Some(n)) => assert!(budget.records() >= n, "records counted"),
        (Err(e @ (MeasureError::Wire(_) | MeasureError::Json(_))), Some(_)) => {
            panic!("measuring refused a body the decoder accepts: {e}")
        }
        _ => {}
    }
}

/// Lines of a log file: format detection, then every format's parser on every line.
pub fn log_lines(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.lines().take(64).collect();
    let clock = Clock::new(1_709_251_200_000_000);
    let _ = LineFormat::detect(&lines, &clock);
    let mut formats = vec![
        LineFormat::Triage,
        LineFormat::Json,
        LineFormat::Logfmt,
        LineFormat::Cri,
        LineFormat::AccessLog,
        LineFormat::Postgres,
        LineFormat::Syslog,
        LineFormat::Stamped(Default::default()),
    ];
    formats.extend(LOGHUB_SYSTEMS.iter().map(LineFormat::Loghub));
    for format in &formats {
        for line in &lines {
            if let Some(p) = format.parse(line, &clock).filter(|p| !p.failed) {
                assert_placeable(p.ts);
            }
            let _ = is_continuation(line);
        }
    }
}

/// A `match()` query: parsed, rendered, and matched against its own text.
pub fn match_query(data: &[u8]) {
    use timberline_udfs::text::Query;
    let text = String::from_utf8_lossy(data);
    if let Ok(q) = Query::parse(&text) {
        let _ = q.render();
        let _ = q.matches_text(&text);
        let _ = q.to_parts();
    }
}

/// A WAL frame body as replay reads it.
pub fn wal_body(data: &[u8]) {
    let _ = decode_body(data);
}

/// A sidecar index file: opened (which verifies it), then looked up.
pub fn sidecar(data: &[u8]) {
    static DIR: LazyLock<Option<tempfile_dir::Dir>> = LazyLock::new(tempfile_dir::Dir::new);
    let Some(dir) = DIR.as_ref() else { return };
    let path = dir.path.join(format!("fuzz-{}.idx", std::process::id()));
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return;
    }
    if let Ok(index) = SegmentIndex::open(&path) {
        let _ = (index.rows(), index.blocks(), index.block_rows());
        for field in ["msg", "service", "level", "trace_id", "attrs"] {
            let _ = index.has(field);
            let _ = index.term(field, "error");
            let _ = index.contains(field, "a");
        }
        if let Some(counts) = index.counts() {
            let _ = counts;
        }
    }
}

/// Raw bytes on a pg connection of an in-process server (trust authentication, so input
/// reaches the query phase): the server must answer or close, and keep serving.
pub fn pg_session(data: &[u8]) {
    let Some(server) = PG.as_ref() else { return };
    let Ok(guard) = server.lock() else { return };
    let (runtime, addr) = (&guard.0, guard.1);
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
            return;
        };
        let _ = tcp.write_all(data).await;
        let _ = tcp.shutdown().await;
        let mut sink = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut sink)).await;
        assert!(
            read.is_ok(),
            "the server neither answered nor closed within 10 s"
        );
    });
}

static PG: LazyLock<Option<Mutex<(tokio::runtime::Runtime, std::net::SocketAddr)>>> =
    LazyLock::new(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_stack_size(32 << 20)
            .enable_all()
            .build()
            .ok()?;
        let dir = tempfile_dir::Dir::new()?;
        let config = crate::config::Config {
            data_dir: dir.path.clone(),
            http_addr: ([127, 0, 0, 1], 0).into(),
            pg_addr: ([127, 0, 0, 1], 0).into(),
            pg_auth: crate::config::AuthMethod::Trust,
            auth_delay: Duration::ZERO,
            statement_timeout: Duration::from_secs(5),
            query_memory: 64 << 20,
            query_memory_total: 256 << 20,
            ..crate::config::Config::default()
        };
        let server = runtime
            .block_on(crate::server::Server::start(&config))
            .ok()?;
        std::mem::forget(dir);
        Some(Mutex::new((runtime, server.pg_addr)))
    });

/// A scratch directory under the system's temp dir, removed on drop.
mod tempfile_dir {
    use std::path::PathBuf;

    pub struct Dir {
        pub path: PathBuf,
    }

    impl Dir {
        pub fn new() -> Option<Dir> {
            let path = std::env::temp_dir().join(format!(
                "timberline-fuzz-{}-{}",
                std::process::id(),
                rand::random::<u32>()
            ));
            std::fs::create_dir_all(&path).ok()?;
            Some(Dir { path })
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
