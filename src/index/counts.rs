//! A segment's row counts per minute and (service, host, level): what `count(*)` over label and
//! time filters is answered from, without reading the segment's Parquet file.
//!
//! Stored as the `counts` section of the sidecar index (its fst empty, its "postings" the table):
//! ```text
//! u32 raw_len, zstd(raw)
//! raw: 3 × (u32 n, n × (u32 len, utf-8))   the service, host and level dictionaries
//!      u32 entries, i64 first minute
//!      entries × u32 minute - first minute, ascending
//!      entries × u32 service id, then host ids, level ids, counts
//! ```
//! A minute is `ts` in microseconds divided (euclidean) by [`MINUTE_US`].

use std::collections::HashMap;

use ahash::RandomState;
use std::ops::Range;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::arrow::record_batch::RecordBatch;

use super::IndexError;

/// Microseconds in a minute, the finest time a count table splits by.
pub const MINUTE_US: i64 = 60_000_000;

/// Name of the sidecar section holding the table.
pub const COUNTS_SECTION: &str = "counts";

/// Largest decoded table a reader accepts: 20 bytes a group, and a segment (a tenant's busy hour,
/// or its sparse hours, of a flush) has far fewer than 10M groups. A header claiming more is corrupt, not allocated.
const MAX_RAW: usize = 200 << 20;

/// Most groups one tally numbers densely (an array of this many counters).
const DENSE_SLOTS: usize = 1 << 22;

/// The label columns a table splits by, in stored order.
pub const LABELS: [&str; 3] = ["service", "host", "level"];

/// One segment's counts, decoded.
#[derive(Debug, Default)]
pub struct CountTable {
    dicts: [Vec<String>; 3],
    first_minute: i64,
    minute: Vec<u32>,
    ids: [Vec<u32>; 3],
    count: Vec<u32>,
}

/// Label values a count keeps, per label (`None`: any value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelFilter(pub [Option<Vec<String>>; 3]);

/// What an answer is split by: the minute and each label.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Split {
    pub minute: bool,
    pub labels: [bool; 3],
}

/// One group of a tally: its minute and label values, each `None` when not split by.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct CountKey {
    pub minute: Option<i64>,
    pub labels: [Option<String>; 3],
}

fn corrupt(reason: &str) -> IndexError {
    IndexError::Corrupt {
        path: COUNTS_SECTION.into(),
        reason: reason.to_string(),
    }
}

/// The encoded count table of `batch` (columns `ts`, `service`, `host`, `level`).
pub fn build_counts(batch: &RecordBatch) -> Result<Vec<u8>, IndexError> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| IndexError::Build(format!("no column {name}")))
    };
    let ts = column("ts")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| IndexError::Build("ts is not a microsecond timestamp".into()))?;
    let mut labels: Vec<&StringArray> = Vec::with_capacity(3);
    for name in LABELS {
        labels.push(
            column(name)?
                .as_string_opt::<i32>()
                .ok_or_else(|| IndexError::Build(format!("{name} is not text")))?,
        );
    }
    let mut dicts: [HashMap<&str, u32, RandomState>; 3] = Default::default();
    let mut groups: HashMap<(i64, [u32; 3]), u32, RandomState> = HashMap::default();
    for row in 0..batch.num_rows() {
        let mut key = [0u32; 3];
        for (l, values) in labels.iter().enumerate() {
            // A null label (none today: the columns are NOT NULL) counts as the empty string.
            let v = if values.is_null(row) {
                ""
            } else {
                values.value(row)
            };
            let next = dicts[l].len() as u32;
            key[l] = *dicts[l].entry(v).or_insert(next);
        }
        *groups
            .entry((ts.value(row).div_euclid(MINUTE_US), key))
            .or_insert(0) += 1;
    }
    let mut entries: Vec<((i64, [u32; 3]), u32)> = groups.into_iter().collect();
    entries.sort_unstable();
    let first = entries.first().map_or(0, |((m, _), _)| *m);
    let mut raw = Vec::with_capacity(64 + entries.len() * 20);
    for dict in &dicts {
        let mut values = vec![""; dict.len()];
        for (v, id) in dict {
            values[*id as usize] = v;
        }
        raw.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for v in values {
            raw.extend_from_slice(&(v.len() as u32).to_le_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
    }
    raw.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    raw.extend_from_slice(&first.to_le_bytes());
    for ((m, _), _) in &entries {
        let offset = u32::try_from(m - first)
            .map_err(|_| IndexError::Build("a segment spans too many minutes".into()))?;
        raw.extend_from_slice(&offset.to_le_bytes());
    }
    for l in 0..3 {
        for ((_, key), _) in &entries {
            raw.extend_from_slice(&key[l].to_le_bytes());
        }
    }
    for (_, n) in &entries {
        raw.extend_from_slice(&n.to_le_bytes());
    }
    let packed = zstd::bulk::compress(&raw, 3).map_err(|e| IndexError::Build(e.to_string()))?;
    let mut out = Vec::with_capacity(4 + packed.len());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&packed);
    Ok(out)
}

/// Reads little-endian values off a byte slice, failing on a short one.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], IndexError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or_else(|| corrupt("bad length"))?;
        let s = self
            .b
            .get(self.at..end)
            .ok_or_else(|| corrupt("short table"))?;
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, IndexError> {
        let bytes = self.take(n.checked_mul(4).ok_or_else(|| corrupt("bad length"))?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

impl CountTable {
    /// Decodes a table written by [`build_counts`].
    pub fn decode(bytes: &[u8]) -> Result<CountTable, IndexError> {
        let head = bytes.get(..4).ok_or_else(|| corrupt("short table"))?;
        let raw_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if raw_len > MAX_RAW {
            return Err(corrupt("table too large"));
        }
        let raw =
            zstd::bulk::decompress(&bytes[4..], raw_len).map_err(|e| corrupt(&e.to_string()))?;
        let mut r = Reader { b: &raw, at: 0 };
        let mut dicts: [Vec<String>; 3] = Default::default();
        for dict in &mut dicts {
            let n = r.u32()? as usize;
            for _ in 0..n {
                let len = r.u32()? as usize;
                dict.push(String::from_utf8_lossy(r.take(len)?).into_owned());
            }
        }
        let n = r.u32()? as usize;
        let mut first = [0u8; 8];
        first.copy_from_slice(r.take(8)?);
        let minute = r.u32s(n)?;
        let ids = [r.u32s(n)?, r.u32s(n)?, r.u32s(n)?];
        let count = r.u32s(n)?;
        for (l, column) in ids.iter().enumerate() {
            if column.iter().any(|id| *id as usize >= dicts[l].len()) {
                return Err(corrupt("a label id outside its dictionary"));
            }
        }
        if minute.windows(2).any(|w| w[0] > w[1]) {
            return Err(corrupt("minutes out of order"));
        }
        Ok(CountTable {
            dicts,
            first_minute: i64::from_le_bytes(first),
            minute,
            ids,
            count,
        })
    }

    /// Rows of the table's minutes in `minutes` (start inclusive, end exclusive) whose labels
    /// pass `filter`, added to `out` by the groups of `split`. Returns the rows counted.
    pub fn tally(
        &self,
        filter: &LabelFilter,
        minutes: Range<i64>,
        split: Split,
        out: &mut HashMap<CountKey, u64>,
    ) -> u64 {
        // Which ids of each dictionary pass the filter (`None`: all).
        let allowed: Vec<Option<Vec<bool>>> = (0..3)
            .map(|l| {
                filter.0[l].as_ref().map(|values| {
                    self.dicts[l]
                        .iter()
                        .map(|v| values.iter().any(|w| w == v))
                        .collect()
                })
            })
            .collect();
        let offset = |m: i64| -> u32 {
            (m.saturating_sub(self.first_minute)).clamp(0, i64::from(u32::MAX)) as u32
        };
        let (lo, hi) = (offset(minutes.start), offset(minutes.end));
        let start = self.minute.partition_point(|m| *m < lo);
        let end = if minutes.end > self.first_minute {
            self.minute.partition_point(|m| *m < hi)
        } else {
            0
        };
        if minutes.start >= minutes.end {
            return 0;
        }
        let range = start..end.max(start);
        let filtered: Vec<(&Vec<u32>, &Vec<bool>)> = allowed
            .iter()
            .zip(&self.ids)
            .filter_map(|(a, ids)| a.as_ref().map(|a| (ids, a)))
            .collect();
        let kept = |i: usize| {
            filtered
                .iter()
                .all(|(ids, a)| a.get(ids[i] as usize).copied().unwrap_or(false))
        };
        // Nothing to filter or split by: the rows are the sum of the range's counts.
        if filtered.is_empty() && split == Split::default() {
            let n: u64 = self.count[range.clone()]
                .iter()
                .map(|c| u64::from(*c))
                .sum();
            let key = CountKey {
                minute: None,
                labels: [None, None, None],
            };
            *out.entry(key).or_insert(0) += n;
            return n;
        }
        // Groups numbered densely (minute, then each label split by) make the tally an array
        // add; a table too varied for that (never at a segment's size) goes through a map.
        let first = self.minute.get(range.start).copied().unwrap_or(0);
        let span = match (split.minute, range.end.checked_sub(1)) {
            (true, Some(last)) if last >= range.start => (self.minute[last] - first) as usize + 1,
            _ => 1,
        };
        let dims: [usize; 3] = std::array::from_fn(|l| match split.labels[l] {
            true => self.dicts[l].len().max(1),
            false => 1,
        });
        let slots = dims.iter().try_fold(span, |n, d| n.checked_mul(*d));
        let mut rows = 0;
        let mut groups: HashMap<(u32, [u32; 3]), u64, RandomState> = HashMap::default();
        match slots.filter(|n| *n <= DENSE_SLOTS) {
            Some(n) => {
                let mut dense = vec![0u64; n];
                for i in range.filter(|i| kept(*i)) {
                    let mut slot = if split.minute {
                        (self.minute[i] - first) as usize
                    } else {
                        0
                    };
                    for l in 0..3 {
                        if split.labels[l] {
                            slot = slot * dims[l] + self.ids[l][i] as usize;
                        }
                    }
                    dense[slot] += u64::from(self.count[i]);
                }
                for (mut slot, n) in dense.into_iter().enumerate().filter(|(_, n)| *n > 0) {
                    let mut key = [u32::MAX; 3];
                    for l in (0..3).rev() {
                        if split.labels[l] {
                            key[l] = (slot % dims[l]) as u32;
                            slot /= dims[l];
                        }
                    }
                    groups.insert((first + slot as u32, key), n);
                }
            }
            None => {
                for i in range.filter(|i| kept(*i)) {
                    let minute = if split.minute { self.minute[i] } else { 0 };
                    let key = std::array::from_fn(|l| match split.labels[l] {
                        true => self.ids[l][i],
                        false => u32::MAX,
                    });
                    *groups.entry((minute, key)).or_insert(0) += u64::from(self.count[i]);
                }
            }
        }
        for ((minute, group), n) in groups {
            rows += n;
            let key = CountKey {
                minute: split.minute.then(|| self.first_minute + i64::from(minute)),
                labels: std::array::from_fn(|l| self.dicts[l].get(group[l] as usize).cloned()),
            };
            *out.entry(key).or_insert(0) += n;
        }
        rows
    }
}
