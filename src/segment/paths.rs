//! Hive-style segment paths: `segments/tenant=…/date=YYYY-MM-DD/hour=HH/seg-<id>.parquet`.
//!
//! Other tools (DuckDB, Spark, `datafusion-cli`) read these directories as partitioned tables.

use chrono::{DateTime, Utc};

use crate::model::Micros;

/// Directory under the data directory that holds every segment.
pub const SEGMENTS_DIR: &str = "segments";

/// Relative path of segment `id` of `tenant` for the hour containing `ts`.
pub fn segment_rel_path(tenant: &str, ts: Micros, id: u64) -> String {
    let dt = DateTime::<Utc>::from_timestamp_micros(ts).unwrap_or_default();
    format!(
        "{SEGMENTS_DIR}/tenant={}/date={}/hour={}/seg-{id:012}.parquet",
        escape(tenant),
        dt.format("%Y-%m-%d"),
        dt.format("%H"),
    )
}

/// Keeps `[A-Za-z0-9_-]`, percent-encodes the rest, so a tenant name is always one path segment.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
