//! `POST /query`: the Go log-triage tool's API, so its users' scripts keep working.
//!
//! Request `{"timestamp": RFC 3339, "tag"?: level, "count"?: n}` (count clamped to 1..=100,
//! default 1); response `{"entries": [{"timestamp", "tag", "body", "distance"}], "total",
//! "query_ms"}` with the entries nearest first, `distance` as a Go duration string (`26ms`),
//! `total` the number of entries, and `entries` `[]` — never `null` — when nothing matches.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{col, lit};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use serde_json::{json, Value};
use timberline_udfs::pg_compat::Tenant;

use super::nearest::{search, NearestSpec, SearchMetrics, Selection};
use crate::model::level;
use crate::store::Store;

/// Most entries one request returns.
pub const MAX_COUNT: i64 = 100;

/// A request that cannot be answered as given (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum SeedQueryError {
    #[error("{0}")]
    BadRequest(String),
    #[error("query failed: {0}")]
    Engine(#[from] DataFusionError),
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedQuery {
    pub target: i64,
    pub tag: Option<String>,
    pub count: usize,
}

impl SeedQuery {
    /// Validates a request body.
    pub fn parse(body: &[u8]) -> Result<SeedQuery, SeedQueryError> {
        let bad = |m: String| SeedQueryError::BadRequest(m);
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
        let Value::Object(o) = v else {
            return Err(bad(
                "body must be a JSON object like {\"timestamp\": \"2024-01-15T10:30:45Z\"}".into(),
            ));
        };
        let target = match o.get("timestamp") {
            Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| bad(format!("timestamp {s:?} is not RFC 3339: {e}")))?
                .timestamp_micros(),
            Some(other) => {
                return Err(bad(format!(
                    "timestamp must be an RFC 3339 string, got {other}"
                )))
            }
            None => return Err(bad("timestamp is required".into())),
        };
        let tag = match o.get("tag") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(level::normalize(s)),
            Some(other) => return Err(bad(format!("tag must be a string, got {other}"))),
        };
        let count = match o.get("count") {
            None | Some(Value::Null) => 1,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(c) => c.clamp(1, MAX_COUNT) as usize,
                None if n.as_u64().is_some() => MAX_COUNT as usize,
                None => return Err(bad(format!("count must be an integer, got {n}"))),
            },
            Some(other) => return Err(bad(format!("count must be an integer, got {other}"))),
        };
        Ok(SeedQuery { target, tag, count })
    }
}

/// Answers one request.
pub async fn answer(
    store: &Store,
    task: Arc<TaskContext>,
    q: &SeedQuery,
    tenant: &str,
) -> Result<Value, SeedQueryError> {
    let started = Instant::now();
    let filters = q
        .tag
        .iter()
        .map(|t| col("level").eq(lit(t.clone())))
        .collect();
    let spec = NearestSpec::new(q.target, Selection::Nearest { k: q.count }, filters)?;
    let snap = store
        .snapshot()
        .for_tenant(&Tenant::One(tenant.to_string()))
        .map_err(DataFusionError::from)?;
    let metrics = SearchMetrics::new(&ExecutionPlanMetricsSet::new());
    let rows = search(store, &snap, &spec, task, &metrics).await?;
    let entries = entries(&rows, q.target);
    Ok(json!({
        "total": entries.len(),
        "entries": entries,
        "query_ms": started.elapsed().as_secs_f64() * 1e3,
    }))
}

fn entries(rows: &RecordBatch, target: i64) -> Vec<Value> {
    let ts = crate::model::ts_values(rows);
    let text = |name: &str| {
        rows.column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .cloned()
    };
    let (Some(levels), Some(msgs)) = (text("level"), text("msg")) else {
        return Vec::new();
    };
    ts.iter()
        .enumerate()
        .map(|(i, &t)| {
            json!({
                "timestamp": chrono::DateTime::from_timestamp_micros(t)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                "tag": levels.value(i),
                "body": msgs.value(i),
                "distance": go_duration(t.abs_diff(target)),
            })
        })
        .collect()
}

/// A duration in microseconds written as Go's `time.Duration.String()` writes it:
/// `0s`, `750µs`, `26ms`, `1.5ms`, `2.25s`, `3m0s`, `1h2m3.5s`.
pub fn go_duration(us: u64) -> String {
    fn frac(whole: u64, part: u64, digits: usize) -> String {
        let p = format!("{part:0digits$}");
        let p = p.trim_end_matches('0');
        if p.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{p}")
        }
    }
    if us == 0 {
        return "0s".into();
    }
    if us < 1_000 {
        return format!("{us}µs");
    }
    if us < 1_000_000 {
        return format!("{}ms", frac(us / 1_000, us % 1_000, 3));
    }
    let (h, rest) = (us / 3_600_000_000, us % 3_600_000_000);
    let (m, rest) = (rest / 60_000_000, rest % 60_000_000);
    let s = frac(rest / 1_000_000, rest % 1_000_000, 6);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn distances_are_written_like_go_durations() {
        use crate::query::seed_api::go_duration;
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
}
