//! The nearest-timestamp kernel over one ts-sorted run of rows, in memory.
//!
//! A run is a slice of microsecond timestamps in ascending order (every hot-buffer batch is one:
//! it is sorted when built, so out-of-order arrivals only ever make runs overlap, never unsorted).
//! Lookups are binary searches: `O(log n)` whatever the target, plus one step per row returned.
//! A filter on a low-cardinality column (the level) uses [`Postings`]: the run's rows per value,
//! themselves in ts order, so a rare level costs a binary search too, not a walk.

use std::collections::HashMap;
use std::ops::Range;

/// Rows of `ts` (sorted ascending) with `lo <= ts <= hi`.
pub fn range(ts: &[i64], lo: i64, hi: i64) -> Range<usize> {
    let start = ts.partition_point(|&t| t < lo);
    let end = start + ts[start..].partition_point(|&t| t <= hi);
    start..end
}

/// Pushes onto `out` the `k` rows of `ts` (sorted ascending) closest to `target`, nearest first.
/// Ties: the earlier timestamp first, then the lower row.
pub fn nearest(ts: &[i64], target: i64, k: usize, out: &mut Vec<u32>) {
    nearest_by(ts.len(), |i| ts[i], target, k, out, |i| i as u32)
}

/// Like [`nearest`], among the rows of `rows` only (ascending row numbers into `ts`).
pub fn nearest_among(ts: &[i64], rows: &[u32], target: i64, k: usize, out: &mut Vec<u32>) {
    nearest_by(
        rows.len(),
        |i| ts[rows[i] as usize],
        target,
        k,
        out,
        |i| rows[i],
    )
}

/// First position in `lo..hi` where `before(pos)` turns false (it must be true, then false).
fn partition(mut lo: usize, mut hi: usize, before: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Two cursors walking outwards from the first position `>= target`.
fn nearest_by(
    len: usize,
    ts_at: impl Fn(usize) -> i64,
    target: i64,
    k: usize,
    out: &mut Vec<u32>,
    row_at: impl Fn(usize) -> u32,
) {
    let start = partition(0, len, |i| ts_at(i) < target);
    // `left` is one past the next candidate below the target, `right` the next one at or above.
    let (mut left, mut right) = (start, start);
    let mut taken = 0;
    while taken < k {
        let below = (left > 0).then(|| target.abs_diff(ts_at(left - 1)));
        let above = (right < len).then(|| ts_at(right).abs_diff(target));
        let take_below = match (below, above) {
            (Some(b), Some(a)) => b <= a,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_below {
            // Rows sharing the timestamp below the target come lowest row first.
            let t = ts_at(left - 1);
            let first = partition(0, left, |i| ts_at(i) < t);
            for i in first..left {
                if taken == k {
                    break;
                }
                out.push(row_at(i));
                taken += 1;
            }
            left = first;
        } else {
            out.push(row_at(right));
            taken += 1;
            right += 1;
        }
    }
}

/// Rows of a run grouped by the value of one low-cardinality column, each list ascending.
#[derive(Debug, Default, Clone)]
pub struct Postings {
    by_value: HashMap<String, Vec<u32>>,
}

impl Postings {
    /// Groups rows `0..n` by `value_of(row)` (None: the row has no value and is in no list).
    pub fn build<'a>(n: usize, value_of: impl Fn(usize) -> Option<&'a str>) -> Postings {
        let mut by_value: HashMap<String, Vec<u32>> = HashMap::new();
        for row in 0..n {
            if let Some(v) = value_of(row) {
                match by_value.get_mut(v) {
                    Some(list) => list.push(row as u32),
                    None => {
                        by_value.insert(v.to_string(), vec![row as u32]);
                    }
                }
            }
        }
        Postings { by_value }
    }

    /// The rows holding `value`, ascending (empty if none).
    pub fn rows(&self, value: &str) -> &[u32] {
        self.by_value.get(value).map_or(&[], |v| v.as_slice())
    }
}

#[cfg(test)]
mod tests {
    /// The in-memory kernel against a brute-force sort, on runs with duplicates, for every k.
    #[test]
    fn nearest_kernel_equals_brute_force() {
        use crate::nearest::kernel;
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..300 {
            let n = rng.gen_range(0..200);
            let mut ts: Vec<i64> = (0..n).map(|_| rng.gen_range(0..1_000)).collect();
            ts.sort();
            let levels: Vec<&str> = (0..n)
                .map(|_| ["INFO", "ERROR", "FATAL"][rng.gen_range(0..3)])
                .collect();
            let postings = kernel::Postings::build(n, |i| Some(levels[i]));
            let target = rng.gen_range(-50..1_050);
            let k = rng.gen_range(1..20);
            let brute = |keep: &dyn Fn(usize) -> bool| {
                let mut rows: Vec<u32> = (0..n).filter(|&i| keep(i)).map(|i| i as u32).collect();
                rows.sort_by_key(|&i| (ts[i as usize].abs_diff(target), ts[i as usize], i));
                rows.truncate(k);
                rows
            };
            let mut out = Vec::new();
            kernel::nearest(&ts, target, k, &mut out);
            assert_eq!(out, brute(&|_| true), "ts={ts:?} target={target} k={k}");
            out.clear();
            kernel::nearest_among(&ts, postings.rows("FATAL"), target, k, &mut out);
            assert_eq!(out, brute(&|i| levels[i] == "FATAL"));
            let r = kernel::range(&ts, target - 10, target + 10);
            let want: Vec<usize> = (0..n)
                .filter(|&i| (target - 10..=target + 10).contains(&ts[i]))
                .collect();
            assert_eq!(r.collect::<Vec<_>>(), want);
        }
    }
}
