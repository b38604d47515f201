//! Deterministic, realistic log generator: Zipf-skewed services, hosts per service, a level mix,
//! trace ids spanning 3–8 services, user ids, and message bodies from loghub event templates with
//! their `<*>` slots filled by plausible values. Feeds `serve --demo` and `timberline generate`.

mod templates;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::model::{LogRecord, Micros, DEFAULT_TENANT};
use templates::{fill, Template, TEMPLATES};

const SERVICES: [&str; 50] = [
    "api-gateway",
    "payments",
    "checkout",
    "auth",
    "users",
    "orders",
    "inventory",
    "search",
    "catalog",
    "shipping",
    "billing",
    "notifications",
    "recommendations",
    "cart",
    "pricing",
    "fraud",
    "ledger",
    "email",
    "sms",
    "webhooks",
    "reports",
    "analytics",
    "ingest",
    "scheduler",
    "storage",
    "cdn-edge",
    "images",
    "video",
    "chat",
    "feed",
    "profile",
    "sessions",
    "tokens",
    "audit",
    "config",
    "flags",
    "geo",
    "tax",
    "refunds",
    "subscriptions",
    "support",
    "reviews",
    "loyalty",
    "coupons",
    "warehouse",
    "routing",
    "dispatch",
    "metrics",
    "backup",
    "hdfs",
];
/// One row in a million (rows 4,999, 1,004,999, …) carries this message: the needle of the
/// benchmark's needle-token query. Its token `quarantined` appears in no template.
pub const NEEDLE_TOKEN: &str = "quarantined";
const NEEDLE_EVERY: u64 = 1_000_000;
const NEEDLE_AT: u64 = 4_999;

const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "us-west-2", "ap-south-1"];

/// Share of each level in ‰: DEBUG, INFO, WARN, ERROR, FATAL.
pub const LEVEL_MIX: [(&str, u32); 5] = [
    ("DEBUG", 300),
    ("INFO", 500),
    ("WARN", 120),
    ("ERROR", 70),
    ("FATAL", 10),
];

const METHODS: [&str; 5] = ["GET", "GET", "GET", "POST", "PUT"];
const PATHS: [&str; 8] = [
    "/api/v1/orders",
    "/api/v1/payments",
    "/api/v1/users/{id}",
    "/api/v1/cart",
    "/healthz",
    "/api/v1/search",
    "/api/v2/checkout",
    "/internal/metrics",
];

/// Parses a level mix such as `DEBUG=30,INFO=50,WARN=12,ERROR=7,FATAL=1` (weights, any scale).
pub fn parse_level_mix(text: &str) -> Option<Vec<(String, u32)>> {
    let mix: Option<Vec<(String, u32)>> = text
        .split(',')
        .map(|part| {
            let (name, weight) = part.split_once('=')?;
            Some((
                name.trim().to_ascii_uppercase(),
                weight.trim().parse().ok()?,
            ))
        })
        .collect();
    mix.filter(|m| !m.is_empty() && m.iter().map(|(_, w)| *w as u64).sum::<u64>() > 0)
}

/// A seeded stream of log records.
pub struct Generator {
    levels: Vec<(String, u32)>,
    rng: SmallRng,
    ts: Micros,
    step: Micros,
    service_weights: Vec<f64>,
    trace: Option<(String, u32)>,
    /// Records produced so far.
    count: u64,
}

impl Generator {
    /// Records start at `start` and advance `step` µs on average.
    pub fn new(seed: u64, start: Micros, step: Micros) -> Generator {
        // Zipf(1.1) over services: a few services carry most of the volume.
        let weights: Vec<f64> = (1..=SERVICES.len())
            .map(|k| 1.0 / (k as f64).powf(1.1))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cumulative = weights.iter().map(|w| {
            acc += w / total;
            acc
        });
        Generator {
            levels: LEVEL_MIX.iter().map(|(n, w)| (n.to_string(), *w)).collect(),
            rng: SmallRng::seed_from_u64(seed),
            ts: start,
            step: step.max(1),
            service_weights: cumulative.collect(),
            trace: None,
            count: 0,
        }
    }

    /// Uses another level mix (see [`parse_level_mix`]).
    pub fn with_levels(mut self, levels: Vec<(String, u32)>) -> Generator {
        self.levels = levels;
        self
    }

    fn service(&mut self) -> usize {
        let x: f64 = self.rng.gen();
        self.service_weights
            .partition_point(|c| *c < x)
            .min(SERVICES.len() - 1)
    }

    fn level(&mut self) -> String {
        let total: u64 = self.levels.iter().map(|(_, w)| *w as u64).sum();
        let x = self.rng.gen_range(0..total.max(1));
        let mut acc = 0;
        for (name, weight) in &self.levels {
            acc += *weight as u64;
            if x < acc {
                return name.clone();
            }
        }
        "INFO".into()
    }

    fn trace_id(&mut self) -> String {
        match &mut self.trace {
            Some((id, left)) if *left > 0 => {
                *left -= 1;
                id.clone()
            }
            _ => {
                let id = format!("{:032x}", self.rng.gen::<u128>());
                let spans = self.rng.gen_range(3..=8);
                self.trace = Some((id.clone(), spans - 1));
                id
            }
        }
    }

    /// The next record.
    pub fn next_record(&mut self) -> LogRecord {
        // Mostly increasing with jitter; ~1% arrive up to 10 s late.
        self.ts += self.rng.gen_range(0..=2 * self.step);
        let ts = if self.rng.gen_ratio(1, 100) {
            self.ts - self.rng.gen_range(0..10_000_000)
        } else {
            self.ts
        };
        let s = self.service();
        let service = SERVICES[s];
        let host = format!("{service}-{:02}", self.rng.gen_range(0..10));
        let level = self.level();
        let template: &Template =
            &TEMPLATES[(s * 7 + self.rng.gen_range(0..TEMPLATES.len())) % TEMPLATES.len()];
        let mut msg = fill(template, &mut self.rng);
        if self.count % NEEDLE_EVERY == NEEDLE_AT {
            msg = format!(
                "EXT4-fs error (device nvme1n1p{}): ext4_validate_block_bitmap: bad block bitmap \
                 checksum, group {} {NEEDLE_TOKEN}",
                self.count % 4,
                self.count / NEEDLE_EVERY
            );
        }
        self.count += 1;
        let trace_id = self.rng.gen_ratio(7, 10).then(|| self.trace_id());
        let user = (self.rng.gen::<f64>().powi(3) * 1_000_000.0) as u64;
        let status = match level.as_str() {
            "ERROR" | "FATAL" => [500, 502, 503, 504][self.rng.gen_range(0..4)],
            "WARN" => [400, 404, 409, 429][self.rng.gen_range(0..4)],
            _ => [200, 200, 200, 201, 204][self.rng.gen_range(0..5)],
        };
        let attrs = json!({
            "region": REGIONS[s % REGIONS.len()],
            "user_id": format!("u{user}"),
            "duration_ms": self.rng.gen_range(1..5000),
            "event": template.id,
            "request_id": format!("req-{:016x}", self.rng.gen::<u64>()),
            "span_id": format!("{:016x}", self.rng.gen::<u64>()),
            "http_method": METHODS[self.rng.gen_range(0..METHODS.len())],
            "http_path": PATHS[self.rng.gen_range(0..PATHS.len())],
            "http_status": status,
            "client_ip": format!("10.{}.{}.{}", self.rng.gen_range(0..64), self.rng.gen_range(0..255), self.rng.gen_range(1..255)),
            "pod": format!("{service}-{:05x}", self.rng.gen_range(0..0xfffff)),
            "version": format!("v1.{}.{}", s % 7, self.rng.gen_range(0..3)),
        });
        LogRecord {
            ts,
            ingest_ts: ts,
            tenant: DEFAULT_TENANT.into(),
            service: service.into(),
            host,
            level,
            msg,
            trace_id,
            attrs: attrs.to_string(),
            parse_failed: false,
            truncated: false,
        }
    }

    /// The next record as an NDJSON event of the ingest API.
    pub fn next_event(&mut self) -> Value {
        let r = self.next_record();
        let mut meta: Value = serde_json::from_str(&r.attrs).unwrap_or(Value::Null);
        if let (Some(t), Value::Object(m)) = (&r.trace_id, &mut meta) {
            m.insert("trace_id".into(), Value::String(t.clone()));
        }
        json!({
            "ts": format_ts(r.ts),
            "service": r.service,
            "host": r.host,
            "level": r.level,
            "msg": r.msg,
            "meta": meta,
        })
    }

    /// The next record as a seed-tool line: `TS [LEVEL] body`.
    pub fn next_triage_line(&mut self) -> String {
        let r = self.next_record();
        format!("{} [{}] {}", format_ts(r.ts), r.level, r.msg)
    }
}

/// RFC 3339 with milliseconds, `Z`.
pub fn format_ts(ts: Micros) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(ts)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
