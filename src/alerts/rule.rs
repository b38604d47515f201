//! An alert rule as a user writes it (`timberline alert add`, `POST /v1/alerts`), checked before
//! it is kept: a name, one query over `logs`, a threshold, and how often and how long.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest rule query, in bytes.
pub const MAX_SQL_BYTES: usize = 16 * 1024;
/// Shortest and longest evaluation interval.
pub const MIN_EVERY: Duration = Duration::from_secs(1);
pub const MAX_EVERY: Duration = Duration::from_secs(86_400);
/// Longest `for` and `cooldown`.
pub const MAX_HOLD: Duration = Duration::from_secs(7 * 86_400);

/// A rule as sent: durations as text (`30s`, `2m`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    pub sql: String,
    #[serde(default)]
    pub above: Option<f64>,
    #[serde(default)]
    pub below: Option<f64>,
    #[serde(default)]
    pub every: Option<String>,
    #[serde(default, rename = "for")]
    pub hold: Option<String>,
    #[serde(default)]
    pub cooldown: Option<String>,
    /// Free text sent with each notification.
    #[serde(default)]
    pub summary: Option<String>,
}

/// A checked rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rule {
    pub name: String,
    pub sql: String,
    pub above: Option<f64>,
    pub below: Option<f64>,
    #[serde(with = "secs")]
    pub every: Duration,
    #[serde(rename = "for", with = "secs")]
    pub hold: Duration,
    #[serde(with = "secs")]
    pub cooldown: Duration,
    #[serde(default)]
    pub summary: Option<String>,
}

/// Why a rule was refused (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RuleError {
    #[error("rule name {0:?}: use 1 to 64 letters, digits, '-', '_' or '.' (not first)")]
    Name(String),
    #[error("the rule's sql is empty")]
    EmptySql,
    #[error("the rule's sql is {0} bytes, at most {MAX_SQL_BYTES}")]
    LongSql(usize),
    #[error("give a threshold: --above N and/or --below N")]
    NoThreshold,
    #[error("threshold {0}: use a finite number")]
    Threshold(f64),
    #[error("{field} {value:?}: {reason}")]
    Duration {
        field: &'static str,
        value: String,
        reason: String,
    },
}

impl RuleSpec {
    /// The rule, checked; `every` defaults to 1m, `for` to 0, `cooldown` to 15m.
    pub fn check(&self) -> Result<Rule, RuleError> {
        let name = self.name.trim();
        let good = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        // Not starting with a dot: `.` and `..` would not survive in a URL path.
        if name.is_empty() || name.len() > 64 || name.starts_with('.') || !name.chars().all(good) {
            return Err(RuleError::Name(self.name.clone()));
        }
        let sql = self.sql.trim();
        if sql.is_empty() {
            return Err(RuleError::EmptySql);
        }
        if sql.len() > MAX_SQL_BYTES {
            return Err(RuleError::LongSql(sql.len()));
        }
        if self.above.is_none() && self.below.is_none() {
            return Err(RuleError::NoThreshold);
        }
        for t in [self.above, self.below].into_iter().flatten() {
            if !t.is_finite() {
                return Err(RuleError::Threshold(t));
            }
        }
        let every = duration("every", self.every.as_deref(), Duration::from_secs(60))?;
        if !(MIN_EVERY..=MAX_EVERY).contains(&every) {
            return Err(RuleError::Duration {
                field: "every",
                value: self.every.clone().unwrap_or_default(),
                reason: "use 1s to 24h".into(),
            });
        }
        let hold = duration("for", self.hold.as_deref(), Duration::ZERO)?;
        let cooldown = duration(
            "cooldown",
            self.cooldown.as_deref(),
            Duration::from_secs(900),
        )?;
        Ok(Rule {
            name: name.to_string(),
            sql: sql.to_string(),
            above: self.above,
            below: self.below,
            every,
            hold,
            cooldown,
            summary: self
                .summary
                .as_deref()
                .map(|s| s.chars().take(1024).collect()),
        })
    }
}

impl Rule {
    /// Whether `value` crosses the rule's threshold.
    pub fn breached(&self, value: f64) -> bool {
        self.above.is_some_and(|t| value > t) || self.below.is_some_and(|t| value < t)
    }

    /// The threshold as people read it: `> 50`, `< 1`, `> 50 or < 1`.
    pub fn threshold(&self) -> String {
        let parts: Vec<String> = [("> ", self.above), ("< ", self.below)]
            .into_iter()
            .filter_map(|(op, t)| t.map(|t| format!("{op}{t}")))
            .collect();
        parts.join(" or ")
    }
}

fn duration(
    field: &'static str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, RuleError> {
    let Some(text) = value.map(str::trim) else {
        return Ok(default);
    };
    let bad = |reason: String| RuleError::Duration {
        field,
        value: text.to_string(),
        reason,
    };
    let d = match text {
        "0" => Duration::ZERO,
        _ => humantime::parse_duration(text).map_err(|e| bad(format!("{e} (use 30s, 5m, 1h)")))?,
    };
    if d > MAX_HOLD {
        return Err(bad("at most 7 days".into()));
    }
    Ok(d)
}

/// Durations kept as whole seconds (fractions as milliseconds would be lost; rules use seconds).
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            sql: "SELECT count(*) FROM logs".into(),
            above: Some(5.0),
            below: None,
            every: Some("30s".into()),
            hold: Some("2m".into()),
            cooldown: None,
            summary: None,
        }
    }

    #[test]
    fn a_rule_gets_its_durations_and_defaults() {
        let r = spec("payments-errors").check().unwrap();
        assert_eq!(r.every, Duration::from_secs(30));
        assert_eq!(r.hold, Duration::from_secs(120));
        assert_eq!(r.cooldown, Duration::from_secs(900));
        assert_eq!(r.threshold(), "> 5");
        assert!(r.breached(6.0) && !r.breached(5.0));
    }

    #[test]
    fn bad_rules_say_why() {
        assert!(matches!(spec("a b").check(), Err(RuleError::Name(_))));
        assert!(matches!(spec("").check(), Err(RuleError::Name(_))));
        assert!(matches!(spec("..").check(), Err(RuleError::Name(_))));
        let mut s = spec("x");
        s.above = None;
        assert_eq!(s.check(), Err(RuleError::NoThreshold));
        s.above = Some(f64::NAN);
        assert!(matches!(s.check(), Err(RuleError::Threshold(_))));
        let mut s = spec("x");
        s.every = Some("100ms".into());
        assert!(matches!(
            s.check(),
            Err(RuleError::Duration { field: "every", .. })
        ));
        s.every = Some("soon".into());
        assert!(matches!(
            s.check(),
            Err(RuleError::Duration { field: "every", .. })
        ));
        let mut s = spec("x");
        s.cooldown = Some("30d".into());
        assert!(matches!(
            s.check(),
            Err(RuleError::Duration {
                field: "cooldown",
                ..
            })
        ));
        let mut s = spec("x");
        s.sql = " ".into();
        assert_eq!(s.check(), Err(RuleError::EmptySql));
    }

    #[test]
    fn a_band_breaches_on_either_side() {
        let mut s = spec("x");
        s.below = Some(1.0);
        let r = s.check().unwrap();
        assert_eq!(r.threshold(), "> 5 or < 1");
        assert!(r.breached(0.0) && r.breached(9.0) && !r.breached(3.0));
    }
}
