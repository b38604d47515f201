//! Per-tenant ingest quotas: token buckets of events and bytes a second. A batch that does not
//! fit sheds its lowest levels first (TRACE, DEBUG, then INFO, then WARN) and keeps ERROR and
//! FATAL (which may run the buckets into debt, up to one burst); a batch of which nothing fits
//! is refused with the time after which it would. A sender that can be made to wait (syslog)
//! gets the longest prefix that fits instead, and waits for the rest.

use std::time::{Duration, Instant};

use crate::model::LogRecord;
use crate::tenants::TenantSettings;

/// A quota setting that cannot be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QuotaSettingError {
    #[error("{what} {value:?}: use a positive number{unit}, or `unlimited`")]
    Rate {
        what: &'static str,
        value: String,
        unit: &'static str,
    },
    #[error("ingest_burst {0:?}: use a duration from 1s to 1h, such as 2s")]
    Burst(String),
}

/// One tenant's quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub events_per_sec: Option<f64>,
    pub bytes_per_sec: Option<f64>,
    /// Seconds of the rates a tenant may send at once (the buckets' depth).
    pub burst_secs: f64,
}

/// The default burst: two seconds of the rate.
const DEFAULT_BURST_SECS: f64 = 2.0;

fn rate(what: &'static str, value: &str, bytes: bool) -> Result<Option<f64>, QuotaSettingError> {
    let v = value.trim();
    if matches!(v, "unlimited" | "none" | "off") {
        return Ok(None);
    }
    let err = || QuotaSettingError::Rate {
        what,
        value: value.to_string(),
        unit: if bytes {
            " of bytes (5000000, 5MB, 4MiB)"
        } else {
            ""
        },
    };
    let (number, scale) = if bytes {
        let lower = v.to_ascii_lowercase();
        let units: [(&str, f64); 7] = [
            ("kib", 1024.0),
            ("mib", 1024.0 * 1024.0),
            ("gib", 1024.0 * 1024.0 * 1024.0),
            ("kb", 1e3),
            ("mb", 1e6),
            ("gb", 1e9),
            ("b", 1.0),
        ];
        units
            .iter()
            .find_map(|(u, s)| lower.strip_suffix(u).map(|n| (n.trim().to_string(), *s)))
            .unwrap_or((lower, 1.0))
    } else {
        (v.to_string(), 1.0)
    };
    let n: f64 = number.parse().map_err(|_| err())?;
    let n = n * scale;
    if !n.is_finite() || !(1.0..=1e15).contains(&n) {
        return Err(err());
    }
    Ok(Some(n))
}

impl Quota {
    /// The tenant's quota, `None` when it has no limit.
    pub fn of(settings: &TenantSettings) -> Result<Option<Quota>, QuotaSettingError> {
        let events = match &settings.ingest_events_per_sec {
            Some(v) => rate("ingest_events_per_sec", v, false)?,
            None => None,
        };
        let bytes = match &settings.ingest_bytes_per_sec {
            Some(v) => rate("ingest_bytes_per_sec", v, true)?,
            None => None,
        };
        let burst_secs = match &settings.ingest_burst {
            Some(v) => {
                let d = humantime::parse_duration(v.trim())
                    .map_err(|_| QuotaSettingError::Burst(v.clone()))?;
                if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
                    return Err(QuotaSettingError::Burst(v.clone()));
                }
                d.as_secs_f64()
            }
            None => DEFAULT_BURST_SECS,
        };
        if events.is_none() && bytes.is_none() {
            return Ok(None);
        }
        Ok(Some(Quota {
            events_per_sec: events,
            bytes_per_sec: bytes,
            burst_secs,
        }))
    }
}

/// One token bucket.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst_secs: f64, now: Instant) -> Bucket {
        let capacity = (rate * burst_secs).max(1.0);
        Bucket {
            rate,
            capacity,
            tokens: capacity,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        self.at = now;
    }

    /// Whether `cost` fits now (a cost over the depth fits a full bucket).
    fn fits(&self, cost: f64) -> bool {
        self.tokens >= cost.min(self.capacity)
    }

    /// Whether `cost` fits now, or with the bucket allowed one burst of debt.
    fn fits_in_debt(&self, cost: f64) -> bool {
        self.fits(cost) || self.tokens - cost >= -self.capacity
    }

    fn wait_for(&self, cost: f64) -> Duration {
        let short = cost.min(self.capacity) - self.tokens;
        let ms = (short.max(0.0) / self.rate * 1000.0)
            .min(3_600_000.0)
            .round();
        Duration::from_millis(ms as u64)
    }
}

/// The shedding order of a (normalised) level: 0 is shed first; ERROR and FATAL are kept.
pub fn priority(level: &str) -> u8 {
    match level {
        "TRACE" => 0,
        "DEBUG" => 1,
        "WARN" => 3,
        "ERROR" => 4,
        "FATAL" => 5,
        _ => 2,
    }
}

/// Levels at or above this priority are kept while the debt allows.
const KEPT: u8 = 4;

/// The verdict on a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Take these records; the others (their indices, ascending) are shed (or, without
    /// shedding, wait: then they are the batch's tail).
    Take { shed: Vec<usize> },
    /// Nothing fits: try again after this long.
    Refuse { retry_after: Duration },
}

/// One tenant's buckets.
#[derive(Debug, Clone)]
pub struct Buckets {
    pub quota: Quota,
    events: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl Buckets {
    pub fn new(quota: Quota, now: Instant) -> Buckets {
        Buckets {
            quota,
            events: quota
                .events_per_sec
                .map(|r| Bucket::new(r, quota.burst_secs, now)),
            bytes: quota
                .bytes_per_sec
                .map(|r| Bucket::new(r, quota.burst_secs, now)),
        }
    }

    fn each(&mut self) -> impl Iterator<Item = (&mut Bucket, bool)> {
        self.events
            .iter_mut()
            .map(|b| (b, false))
            .chain(self.bytes.iter_mut().map(|b| (b, true)))
    }

    /// Charges `records` (or the part of them that fits) at `now`. With `may_shed` false the
    /// longest prefix that fits is taken (syslog waits for the rest instead of dropping).
    pub fn admit(&mut self, records: &[LogRecord], may_shed: bool, now: Instant) -> Verdict {
        let cost = |r: &LogRecord, bytes: bool| {
            if bytes {
                r.approx_bytes() as f64
            } else {
                1.0
            }
        };
        let total_bytes: f64 = records.iter().map(|r| cost(r, true)).sum();
        let total = |bytes: bool| {
            if bytes {
                total_bytes
            } else {
                records.len() as f64
            }
        };
        // Whole, a batch must fit the tokens there are (one record alone may go over the
        // buckets' depth once they are full: else it would never go in).
        let mut whole = true;
        for (b, bytes) in self.each() {
            b.refill(now);
            whole &= b.tokens >= total(bytes);
        }
        if whole {
            for (b, bytes) in self.each() {
                b.tokens -= total(bytes);
            }
            return Verdict::Take { shed: Vec::new() };
        }
        if records.is_empty() {
            return Verdict::Take { shed: Vec::new() };
        }
        let mut order: Vec<usize> = (0..records.len()).collect();
        if !may_shed {
            let mut n = 0;
            while n < records.len()
                && self
                    .each()
                    .all(|(b, bytes)| b.fits(cost(&records[n], bytes)))
            {
                for (b, bytes) in self.each() {
                    b.tokens -= cost(&records[n], bytes);
                }
                n += 1;
            }
            if n > 0 {
                return Verdict::Take {
                    shed: (n..records.len()).collect(),
                };
            }
        } else {
            order.sort_by_key(|&i| std::cmp::Reverse(priority(&records[i].level)));
        }
        let mut taken = vec![false; records.len()];
        let mut any = false;
        let mut closed = false;
        for &i in order.iter().filter(|_| may_shed) {
            let r = &records[i];
            let kept = priority(&r.level) >= KEPT;
            if closed && !kept {
                break;
            }
            let fits = self.each().all(|(b, bytes)| {
                let c = cost(r, bytes);
                if kept {
                    b.fits_in_debt(c)
                } else {
                    b.fits(c)
                }
            });
            if fits {
                for (b, bytes) in self.each() {
                    b.tokens -= cost(r, bytes);
                }
                taken[i] = true;
                any = true;
            } else if !kept {
                closed = true;
            }
        }
        if !any {
            let first = &records[order[0]];
            let retry_after = self
                .each()
                .map(|(b, bytes)| b.wait_for(cost(first, bytes)))
                .max()
                .unwrap_or_default();
            return Verdict::Refuse { retry_after };
        }
        let shed = (0..records.len()).filter(|&i| !taken[i]).collect();
        Verdict::Take { shed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(level: &str) -> LogRecord {
        LogRecord {
            level: level.into(),
            msg: "m".into(),
            ..LogRecord::default()
        }
    }

    fn quota(events: f64, burst: f64) -> Quota {
        Quota {
            events_per_sec: Some(events),
            bytes_per_sec: None,
            burst_secs: burst,
        }
    }

    #[test]
    fn a_batch_that_does_not_fit_sheds_debug_first_and_keeps_errors() {
        let t0 = Instant::now();
        let mut b = Buckets::new(quota(10.0, 10.0), t0);
        // 100 tokens: 30 ERROR + 70 of 100 WARN fit; all 200 DEBUG and 30 WARN are shed.
        let mut batch: Vec<LogRecord> = Vec::new();
        batch.extend((0..200).map(|_| rec("DEBUG")));
        batch.extend((0..100).map(|_| rec("WARN")));
        batch.extend((0..30).map(|_| rec("ERROR")));
        let Verdict::Take { shed } = b.admit(&batch, true, t0) else {
            panic!("something fits");
        };
        assert_eq!(shed.len(), 230);
        assert!(shed[..200].iter().all(|&i| batch[i].level == "DEBUG"));
        assert!(shed.iter().all(|&i| batch[i].level != "ERROR"));
        // Empty now: a DEBUG batch is refused, with the wait for one token (0.1 s).
        let refused = b.admit(&[rec("DEBUG")], true, t0);
        assert_eq!(
            refused,
            Verdict::Refuse {
                retry_after: Duration::from_millis(100)
            }
        );
        // ERROR still gets in, into debt, up to one burst (100).
        let errors: Vec<LogRecord> = (0..150).map(|_| rec("FATAL")).collect();
        let Verdict::Take { shed } = b.admit(&errors, true, t0) else {
            panic!("errors fit in debt");
        };
        assert_eq!(shed.len(), 50);
        // Paying the debt back takes (100 + 1) / 10 s.
        match b.admit(&[rec("INFO")], true, t0) {
            Verdict::Refuse { retry_after } => assert_eq!(retry_after.as_millis(), 10_100),
            v => panic!("{v:?}"),
        }
        // And the bucket refills with time.
        let later = t0 + Duration::from_secs(30);
        assert_eq!(
            b.admit(&batch[..100], true, later),
            Verdict::Take { shed: Vec::new() }
        );
    }

    #[test]
    fn without_shedding_the_prefix_that_fits_is_taken_and_the_rest_waits() {
        let t0 = Instant::now();
        let mut b = Buckets::new(quota(5.0, 2.0), t0);
        let batch: Vec<LogRecord> = (0..8).map(|_| rec("DEBUG")).collect();
        assert_eq!(b.admit(&batch, false, t0), Verdict::Take { shed: vec![] });
        // 10 tokens, 8 taken: 2 more now, the other 6 wait.
        assert_eq!(
            b.admit(&batch, false, t0),
            Verdict::Take {
                shed: (2..8).collect()
            }
        );
        match b.admit(&batch, false, t0) {
            Verdict::Refuse { retry_after } => assert_eq!(retry_after.as_millis(), 200),
            v => panic!("{v:?}"),
        }
        let huge: Vec<LogRecord> = (0..50).map(|_| rec("DEBUG")).collect();
        let full = t0 + Duration::from_secs(10);
        assert_eq!(
            b.admit(&huge, false, full),
            Verdict::Take {
                shed: (10..50).collect()
            }
        );
    }

    #[test]
    fn bytes_are_charged_too() {
        let t0 = Instant::now();
        let q = Quota {
            events_per_sec: None,
            bytes_per_sec: Some(1000.0),
            burst_secs: 1.0,
        };
        let mut b = Buckets::new(q, t0);
        let big = LogRecord {
            msg: "x".repeat(600),
            level: "INFO".into(),
            ..LogRecord::default()
        };
        let Verdict::Take { shed } = b.admit(&[big.clone(), big.clone()], true, t0) else {
            panic!("one fits");
        };
        assert_eq!(shed, vec![1]);
        // An ERROR over twice the depth still goes in once the bucket is full.
        let trace = LogRecord {
            msg: "x".repeat(3000),
            level: "ERROR".into(),
            ..LogRecord::default()
        };
        let full = t0 + Duration::from_secs(10);
        assert_eq!(
            b.admit(&[trace], true, full),
            Verdict::Take { shed: vec![] }
        );
    }

    #[test]
    fn settings_are_read_with_units_and_bad_ones_refused() {
        let s = |e: Option<&str>, b: Option<&str>, burst: Option<&str>| TenantSettings {
            ingest_events_per_sec: e.map(String::from),
            ingest_bytes_per_sec: b.map(String::from),
            ingest_burst: burst.map(String::from),
            ..TenantSettings::default()
        };
        let q = Quota::of(&s(Some("100"), Some("4MiB"), Some("5s")))
            .expect("ok")
            .expect("set");
        assert_eq!(q.bytes_per_sec, Some(4.0 * 1024.0 * 1024.0));
        assert_eq!(q.burst_secs, 5.0);
        assert_eq!(Quota::of(&s(Some("unlimited"), None, None)), Ok(None));
        for bad in [
            s(Some("0"), None, None),
            s(Some("lots"), None, None),
            s(None, Some("-5MB"), None),
            s(Some("1"), None, Some("0s")),
            s(Some("1"), None, Some("2 weeks")),
        ] {
            assert!(Quota::of(&bad).is_err(), "{bad:?}");
        }
    }
}
