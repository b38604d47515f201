//! The SQL of the triage tools, built from their checked arguments: times and durations are
//! parsed here and written back normalized, text is quoted as a PostgreSQL literal, so an
//! argument can narrow a query but never change what it is.

use std::time::Duration;

/// Longest time range a tool reads when none is given.
pub const DEFAULT_SINCE: &str = "1h";

/// A tool argument that does not read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field} {value:?}: {reason}")]
pub struct ArgError {
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

fn bad(field: &'static str, value: &str, reason: impl Into<String>) -> ArgError {
    ArgError {
        field,
        value: value.chars().take(200).collect(),
        reason: reason.into(),
    }
}

/// `text` as a PostgreSQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A time as the tools take it: RFC 3339 (`2024-01-15T10:30:45Z`), or a duration ago (`10m`).
/// The SQL expression of it.
pub fn time(field: &'static str, value: &str) -> Result<String, ArgError> {
    let v = value.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        let utc = t.with_timezone(&chrono::Utc);
        return Ok(format!(
            "TIMESTAMPTZ {}",
            literal(&utc.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        ));
    }
    let ago = duration(field, v)?;
    Ok(format!(
        "(now() - INTERVAL '{} milliseconds')",
        ago.as_millis()
    ))
}

/// How long the range from `since` (default [`DEFAULT_SINCE`]) to `until` (default now) is.
pub fn range(since: Option<&str>, until: Option<&str>) -> Result<Duration, ArgError> {
    let now = chrono::Utc::now();
    let instant =
        |field: &'static str, v: &str| -> Result<chrono::DateTime<chrono::Utc>, ArgError> {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v.trim()) {
                return Ok(t.with_timezone(&chrono::Utc));
            }
            let ago = duration(field, v)?;
            Ok(now - chrono::Duration::from_std(ago).unwrap_or_default())
        };
    let from = instant("since", since.unwrap_or(DEFAULT_SINCE))?;
    let to = match until {
        Some(u) => instant("until", u)?,
        None => now,
    };
    let secs = (to - from).num_seconds();
    if secs <= 0 {
        return Err(bad(
            "until",
            until.unwrap_or("now"),
            "the range ends before it starts",
        ));
    }
    Ok(Duration::from_secs(secs as u64))
}

/// A duration (`30s`, `5m`, `2h`), at most a year.
pub fn duration(field: &'static str, value: &str) -> Result<Duration, ArgError> {
    let d = humantime::parse_duration(value.trim()).map_err(|e| {
        bad(
            field,
            value,
            format!("{e} (give a duration such as 15m or an RFC 3339 time)"),
        )
    })?;
    if d > Duration::from_secs(366 * 86_400) || d.is_zero() {
        return Err(bad(field, value, "use more than 0 and at most a year"));
    }
    Ok(d)
}

/// The filters the tools share, as a `WHERE` clause body (`true` when none).
#[derive(Debug, Default, Clone)]
pub struct Filters<'a> {
    /// From when; none: no lower bound (each tool gives its own default).
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub service: Option<&'a str>,
    pub host: Option<&'a str>,
    pub level: Option<&'a str>,
    /// A `match()` query over `msg`.
    pub query: Option<&'a str>,
}

impl Filters<'_> {
    pub fn sql(&self) -> Result<String, ArgError> {
        let mut parts = vec!["true".to_string()];
        if let Some(s) = self.since {
            parts.push(format!("ts >= {}", time("since", s)?));
        }
        if let Some(u) = self.until {
            parts.push(format!("ts <= {}", time("until", u)?));
        }
        for (column, value) in [("service", self.service), ("host", self.host)] {
            if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
                parts.push(format!("{column} = {}", literal(v.trim())));
            }
        }
        if let Some(l) = self.level.filter(|v| !v.trim().is_empty()) {
            if !crate::model::level::is_level(l.trim()) {
                return Err(bad(
                    "level",
                    l,
                    "use a level: TRACE, DEBUG, INFO, WARN, ERROR, FATAL",
                ));
            }
            let level = crate::model::level::normalize(l.trim());
            parts.push(format!("level = {}", literal(&level)));
        }
        if let Some(q) = self.query.filter(|v| !v.trim().is_empty()) {
            parts.push(format!("match(msg, {})", literal(q)));
        }
        Ok(parts.join(" AND "))
    }
}

/// A `date_bin` stride for `range` cut in about 60 buckets, or `bucket` when given.
pub fn bucket(range: Duration, bucket: Option<&str>) -> Result<Duration, ArgError> {
    if let Some(b) = bucket {
        let d = duration("bucket", b)?;
        if d < Duration::from_secs(1) {
            return Err(bad("bucket", b, "at least 1s"));
        }
        if range.as_secs() / d.as_secs().max(1) > 10_000 {
            return Err(bad(
                "bucket",
                b,
                "more than 10,000 buckets in the range; widen it",
            ));
        }
        return Ok(d);
    }
    let steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 21_600, 86_400];
    let want = range.as_secs() / 60;
    let secs = steps.iter().copied().find(|s| *s >= want).unwrap_or(86_400);
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_or_normalized() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(
            time("since", "2024-01-15T10:30:45+01:00").unwrap(),
            "TIMESTAMPTZ '2024-01-15T09:30:45.000000Z'"
        );
        assert_eq!(
            time("since", "10m").unwrap(),
            "(now() - INTERVAL '600000 milliseconds')"
        );
        assert!(time("since", "'; DROP TABLE logs; --").is_err());
        let f = Filters {
            since: Some(DEFAULT_SINCE),
            service: Some("pay'ments"),
            level: Some("error"),
            query: Some("\"card declined\""),
            ..Default::default()
        };
        let sql = f.sql().unwrap();
        assert!(sql.contains("service = 'pay''ments'"), "{sql}");
        assert!(sql.contains("level = 'ERROR'"), "{sql}");
        assert!(sql.contains("match(msg, '\"card declined\"')"), "{sql}");
        assert!(Filters {
            level: Some("loud"),
            ..Default::default()
        }
        .sql()
        .is_err());
    }

    #[test]
    fn buckets_cut_a_range_in_about_sixty() {
        assert_eq!(
            bucket(Duration::from_secs(3600), None).unwrap().as_secs(),
            60
        );
        assert_eq!(
            bucket(Duration::from_secs(86_400), None).unwrap().as_secs(),
            1800
        );
        assert!(bucket(Duration::from_secs(86_400), Some("1s")).is_err());
        assert_eq!(
            bucket(Duration::from_secs(600), Some("30s"))
                .unwrap()
                .as_secs(),
            30
        );
    }
}
