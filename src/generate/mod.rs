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
const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "us-west-2", "ap-south-1"];

/// Share of each level in ‰: DEBUG, INFO, WARN, ERROR, FATAL.
pub const LEVEL_MIX: [(&str, u32); 5] = [
    ("DEBUG", 300),
    ("INFO", 500),
    ("WARN", 120),
    ("ERROR", 70),
    ("FATAL", 10),
];

/// A seeded stream of log records.
pub struct Generator {
    rng: SmallRng,
    ts: Micros,
    step: Micros,
    service_weights: Vec<f64>,
    trace: Option<(String, u32)>,
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
            rng: SmallRng::seed_from_u64(seed),
            ts: start,
            step: step.max(1),
            service_weights: cumulative.collect(),
            trace: None,
        }
    }

    fn service(&mut self) -> usize {
        let x: f64 = self.rng.gen();
        self.service_weights
            .partition_point(|c| *c < x)
            .min(SERVICES.len() - 1)
    }

    fn level(&mut self) -> &'static str {
        let x = self.rng.gen_range(0..1000);
        let mut acc = 0;
        for (name, share) in LEVEL_MIX {
            acc += share;
            if x < acc {
                return name;
            }
        }
        "INFO"
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
        let msg = fill(template, &mut self.rng);
        let trace_id = self.rng.gen_ratio(7, 10).then(|| self.trace_id());
        let user = (self.rng.gen::<f64>().powi(3) * 1_000_000.0) as u64;
        let attrs = json!({
            "region": REGIONS[s % REGIONS.len()],
            "user_id": format!("u{user}"),
            "duration_ms": self.rng.gen_range(1..5000),
            "event": template.id,
        });
        LogRecord {
            ts,
            ingest_ts: ts,
            tenant: DEFAULT_TENANT.into(),
            service: service.into(),
            host,
            level: level.into(),
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
