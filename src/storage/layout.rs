//! Where each file of a segment lives: hive-style data paths
//! (`segments/tenant=…/date=YYYY-MM-DD/hour=HH/seg-<id>.parquet`, which DuckDB, Spark and
//! `datafusion-cli` read as partitioned tables) and the sidecars beside them (`.idx`, `.bloom`).
//! A segment of sparse hours sits under the hour of its first row: there `date` and `hour` name
//! where it starts, and each row's `ts` its own time.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::model::Micros;

/// Directory under the data directory that holds every segment.
pub const SEGMENTS_DIR: &str = "segments";
/// Directory under the data directory that keeps cold segments' sidecars (index, bloom),
/// mirroring their object keys.
pub const SIDECAR_CACHE_DIR: &str = "cache";

/// Relative path of segment `id` of `tenant` whose first row is at `ts`.
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

/// The sidecar file of a segment: its Parquet path with the extension `idx`.
pub fn index_path(parquet: &Path) -> PathBuf {
    parquet.with_extension("idx")
}

/// The bloom file of the Parquet file at `parquet`.
pub fn bloom_path(parquet: &Path) -> PathBuf {
    parquet.with_extension("bloom")
}
