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

/// Relative path of a new segment of `tenant` whose first row is at `ts`. Its name is a random
/// 63-bit number, not the catalog's id: a tenant sees its own paths (in `segments`, in `EXPLAIN`)
/// and a global sequence would tell it how many segments every other tenant wrote meanwhile.
pub fn segment_rel_path(tenant: &str, ts: Micros) -> String {
    let dt = DateTime::<Utc>::from_timestamp_micros(ts).unwrap_or_default();
    let name = rand::random::<u64>() >> 1;
    format!(
        "{SEGMENTS_DIR}/tenant={}/date={}/hour={}/seg-{name:016x}.parquet",
        escape(tenant),
        dt.format("%Y-%m-%d"),
        dt.format("%H"),
    )
}

/// The id a segment shows its tenant: the random number its file name carries, or for a
/// segment written before names were random (`seg-<12 decimal digits>`), its catalog id.
pub fn public_segment_id(key: &str, id: u64) -> i64 {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.strip_prefix("seg-")
        .and_then(|n| n.strip_suffix(".parquet"))
        .filter(|n| n.len() == 16)
        .and_then(|n| i64::from_str_radix(n, 16).ok())
        .unwrap_or(id as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_random_and_show_as_their_id() {
        let (a, b) = (segment_rel_path("acme", 0), segment_rel_path("acme", 0));
        assert_ne!(a, b, "two new segments of one hour share a name");
        assert!(
            a.starts_with("segments/tenant=acme/date=1970-01-01/hour=00/seg-"),
            "{a}"
        );
        let shown = public_segment_id(&a, 7);
        assert!(shown >= 0 && shown != 7, "{a} shows {shown}");
        assert_eq!(format!("{shown:016x}"), a[a.len() - 24..a.len() - 8]);
        // Written before names were random: the catalog id is the name.
        assert_eq!(
            public_segment_id("segments/tenant=a/seg-000000000002.parquet", 2),
            2
        );
    }
}
