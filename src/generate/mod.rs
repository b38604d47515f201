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

#[cfg(test)]
mod tests {
    use super::*;

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
        use crate::generate::NEEDLE_TOKEN;
        use std::collections::{HashMap, HashSet};
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
    fn generator_level_mix_is_configurable() {
        use crate::generate::parse_level_mix;
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
}
