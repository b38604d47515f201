//! What a tail stream asks for — `service`, `host`, `level`, `q` (the `match()` syntax, field
//! terms included), `since`, `limit` — checked and turned into one expression over `logs`.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{col, lit, Expr};
use serde::Deserialize;

use crate::model::level::{is_level, normalize};
use crate::query::pinned::RowFilter;

/// The levels, least severe first.
pub const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// Most rows a backfill sends (the newest ones since `since`).
pub const MAX_BACKFILL: usize = 100_000;
/// Rows a backfill sends when the request does not say.
pub const DEFAULT_BACKFILL: usize = 10_000;
/// Most values one filter may list.
const MAX_VALUES: usize = 64;

/// The query string of `GET /v1/tail`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailParams {
    /// One service or several, comma-separated.
    pub service: Option<String>,
    pub host: Option<String>,
    /// `ERROR` (that level), `WARN,ERROR` (those), `WARN+` or `>=WARN` (that and above).
    pub level: Option<String>,
    /// A `match()` query over `msg`, e.g. `timeout -retry service:api`.
    pub q: Option<String>,
    /// `10m` (that long ago) or an RFC 3339 time: backfill from the store first.
    pub since: Option<String>,
    /// Most rows the backfill sends (the newest), at most [`MAX_BACKFILL`].
    pub limit: Option<usize>,
    /// Where to resume, for a client that cannot send `Last-Event-ID` (a browser WebSocket).
    pub last_event_id: Option<String>,
}

/// Why a tail request is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("level {0:?} is not a level: use one of TRACE DEBUG INFO WARN ERROR FATAL, a list (WARN,ERROR) or a minimum (WARN+)")]
    Level(String),
    #[error(
        "since {0:?} is neither a duration (10m, 2h) nor an RFC 3339 time (2026-12-07T10:00:00Z)"
    )]
    Since(String),
    #[error("{field} lists more than {MAX_VALUES} values")]
    TooMany { field: &'static str },
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("limit {0} is over the most a backfill sends ({MAX_BACKFILL})")]
    Limit(usize),
    #[error("{0}")]
    Query(String),
}

/// A checked tail request.
#[derive(Debug, Clone)]
pub struct TailSpec {
    /// The rows the stream wants (the tenant's, passing every filter), live or stored.
    pub rows: Expr,
    /// The same, compiled for live batches.
    pub live: RowFilter,
    /// Backfill rows with `ts` at or after this (µs since the epoch).
    pub since: Option<i64>,
    pub limit: usize,
}

impl TailParams {
    /// Checks the request and compiles its filter for `tenant`; `now` in µs reads `since=10m`.
    pub fn spec(&self, tenant: &str, now: i64) -> Result<TailSpec, FilterError> {
        let mut rows = col("tenant").eq(lit(tenant));
        if let Some(s) = &self.service {
            rows = rows.and(one_of("service", s)?);
        }
        if let Some(h) = &self.host {
            rows = rows.and(one_of("host", h)?);
        }
        if let Some(l) = &self.level {
            rows = rows.and(levels(l)?);
        }
        if let Some(q) = &self.q {
            if q.trim().is_empty() {
                return Err(FilterError::Empty { field: "q" });
            }
            timberline_udfs::text::Query::parse(q)
                .map_err(|e| FilterError::Query(e.to_string()))?;
            rows =
                rows.and(timberline_udfs::text::match_udf().call(vec![col("msg"), lit(q.clone())]));
        }
        let since = self.since.as_deref().map(|s| since(s, now)).transpose()?;
        let limit = self.limit.unwrap_or(DEFAULT_BACKFILL);
        if limit > MAX_BACKFILL {
            return Err(FilterError::Limit(limit));
        }
        let live =
            RowFilter::compile(rows.clone()).map_err(|e| FilterError::Query(e.to_string()))?;
        Ok(TailSpec {
            rows,
            live,
            since,
            limit,
        })
    }
}

/// `column = v`, or `column IN (…)` for a comma-separated list.
fn one_of(column: &'static str, values: &str) -> Result<Expr, FilterError> {
    let list: Vec<&str> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    match list.as_slice() {
        [] => Err(FilterError::Empty { field: column }),
        [one] => Ok(col(column).eq(lit(*one))),
        many if many.len() > MAX_VALUES => Err(FilterError::TooMany { field: column }),
        many => Ok(col(column).in_list(many.iter().map(|v| lit(*v)).collect(), false)),
    }
}

/// The `level` filter: one level, a list, or a minimum (`WARN+`, `>=WARN`).
fn levels(spec: &str) -> Result<Expr, FilterError> {
    let spec = spec.trim();
    let canon = |l: &str| -> Result<String, FilterError> {
        if !is_level(l.trim()) {
            return Err(FilterError::Level(l.trim().to_string()));
        }
        Ok(normalize(l))
    };
    let min = spec.strip_suffix('+').or_else(|| spec.strip_prefix(">="));
    let wanted: Vec<String> = match min {
        Some(m) => {
            let m = canon(m)?;
            let from = LEVELS.iter().position(|l| *l == m).unwrap_or(0);
            LEVELS[from..].iter().map(|l| l.to_string()).collect()
        }
        None => spec
            .split(',')
            .filter(|l| !l.trim().is_empty())
            .map(canon)
            .collect::<Result<_, _>>()?,
    };
    match wanted.as_slice() {
        [] => Err(FilterError::Empty { field: "level" }),
        [one] => Ok(col("level").eq(lit(one.clone()))),
        many => Ok(col("level").in_list(many.iter().map(|l| lit(l.clone())).collect(), false)),
    }
}

/// `since`: a duration before `now`, or a time.
fn since(text: &str, now: i64) -> Result<i64, FilterError> {
    let t = text.trim();
    if let Ok(d) = humantime::parse_duration(t) {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        return Ok(now.saturating_sub(us));
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_micros())
        .map_err(|_| FilterError::Since(t.chars().take(100).collect()))
}

/// `ts` as a literal of the `logs` column's type.
pub fn ts_lit(us: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(us),
        Some("UTC".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(level: &str) -> TailParams {
        TailParams {
            level: Some(level.into()),
            ..TailParams::default()
        }
    }

    #[test]
    fn levels_are_one_a_list_or_a_minimum() {
        let e = |s: &str| params(s).spec("t", 0).map(|s| s.rows.to_string());
        assert!(e("error").unwrap().contains("level = Utf8(\"ERROR\")"));
        let min = e("WARN+").unwrap();
        assert!(
            min.contains("WARN") && min.contains("FATAL") && !min.contains("INFO"),
            "{min}"
        );
        assert_eq!(e(">=warning").unwrap(), min);
        assert!(e("INFO,ERROR").unwrap().contains("IN"));
        assert_eq!(e("loud").unwrap_err(), FilterError::Level("loud".into()));
        assert!(matches!(e(","), Err(FilterError::Empty { .. })));
    }

    #[test]
    fn since_is_a_duration_or_a_time() {
        assert_eq!(since("10s", 20_000_000), Ok(10_000_000));
        assert_eq!(since("1970-01-01T00:00:01Z", 0), Ok(1_000_000));
        assert!(since("yesterday-ish", 0).is_err());
    }

    #[test]
    fn a_bad_query_or_limit_is_refused() {
        let bad = TailParams {
            q: Some("(unclosed".into()),
            ..TailParams::default()
        };
        assert!(matches!(bad.spec("t", 0), Err(FilterError::Query(_))));
        let big = TailParams {
            limit: Some(MAX_BACKFILL + 1),
            ..TailParams::default()
        };
        assert!(matches!(big.spec("t", 0), Err(FilterError::Limit(_))));
    }
}
