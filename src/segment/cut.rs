//! How one tenant's rows (sorted by `ts`) are cut into segments, so that the number of segments
//! follows the volume of rows, not the number of hours they name.
//!
//! An hour with at least [`SPARSE_HOUR_ROWS`] rows is a segment of its own. Sparse hours (fewer
//! rows) are each a segment of their own too when a flush holds at most [`HOURS_KEPT_APART`] of
//! them — the usual flush, a few hours of live traffic. A flush naming more (a backfill, or one
//! batch scattered over thousands of hours) puts the sparse hours between two busy ones into one
//! segment, cut where the age of the rows crosses a power of two hours (1, 2, 4, … before or
//! after the flush): recent rows stay in small segments that compact and move on time, old ones
//! share a few, and however many hours a flush names it makes at most about 2 × 30 such
//! segments. A merge ([`Cut::Merge`]) joins the sparse hours it is given without either rule:
//! the compaction plan chose them. No segment spans more than [`MAX_SPAN_US`].

use std::ops::Range;

use crate::model::Micros;

const HOUR: i64 = 3_600_000_000;

/// An hour with fewer rows than this may share a segment with other hours.
pub const SPARSE_HOUR_ROWS: usize = 1024;

/// A flush keeps up to this many sparse hours of a tenant in segments of their own.
pub const HOURS_KEPT_APART: usize = 16;

/// Longest time one segment spans (about 1,000 years): its count table numbers minutes from its
/// first, as 32-bit offsets.
pub const MAX_SPAN_US: i64 = 1000 * 366 * 24 * HOUR;

/// Which rows are being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A flush at `now` (µs).
    Flush { now: Micros },
    /// A merge chosen by compaction.
    Merge,
}

/// The runs of `0..n` whose neighbours `same` calls equal.
pub(super) fn runs(n: usize, same: impl Fn(usize, usize) -> bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || !same(start, i) {
            out.push(start..i);
            start = i;
        }
    }
    out
}

/// Which power-of-two age band an instant falls in, seen from `now`: bands never shared by
/// rows before and after `now`, nor by rows whose ages in hours differ in their top bit.
pub fn age_band(now: Micros, ts: Micros) -> (bool, u32) {
    let hours = (i128::from(now) - i128::from(ts)) / i128::from(HOUR);
    (hours < 0, (hours.unsigned_abs().max(1)).ilog2())
}

/// The segments the rows `rows` of one tenant make, as ranges of `ts`'s indices.
pub fn segment_ranges(ts: &[i64], rows: Range<usize>, cut: Cut) -> Vec<Range<usize>> {
    let base = rows.start;
    let hours: Vec<Range<usize>> = runs(rows.len(), |a, b| {
        ts[base + a].div_euclid(HOUR) == ts[base + b].div_euclid(HOUR)
    })
    .into_iter()
    .map(|h| base + h.start..base + h.end)
    .collect();
    let band = match cut {
        Cut::Flush { now } => {
            let sparse = hours.iter().filter(|h| h.len() < SPARSE_HOUR_ROWS).count();
            if sparse <= HOURS_KEPT_APART {
                return hours;
            }
            Some(now)
        }
        Cut::Merge => None,
    };
    let mut out: Vec<Range<usize>> = Vec::new();
    // The sparse run being gathered.
    let mut sparse: Option<Range<usize>> = None;
    for hour in hours {
        if hour.len() >= SPARSE_HOUR_ROWS {
            out.extend(sparse.take());
            out.push(hour);
            continue;
        }
        sparse = match sparse.take() {
            Some(run)
                if ts[hour.end - 1] - ts[run.start] <= MAX_SPAN_US
                    && band.is_none_or(|now| {
                        age_band(now, ts[run.start]) == age_band(now, ts[hour.start])
                    }) =>
            {
                Some(run.start..hour.end)
            }
            Some(run) => {
                out.push(run);
                Some(hour)
            }
            None => Some(hour),
        };
    }
    out.extend(sparse);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-15T10:00:00Z
    const NOW: i64 = 1_705_312_800_000_000;

    fn cut(ts: &[i64], cut: Cut) -> Vec<Range<usize>> {
        segment_ranges(ts, 0..ts.len(), cut)
    }

    #[test]
    fn a_usual_flush_keeps_one_segment_per_hour() {
        let ts: Vec<i64> = (0..HOURS_KEPT_APART as i64)
            .map(|h| NOW - 1000 * HOUR + h * HOUR)
            .collect();
        assert_eq!(cut(&ts, Cut::Flush { now: NOW }).len(), HOURS_KEPT_APART);
    }

    #[test]
    fn ten_thousand_sparse_hours_make_a_handful_of_segments() {
        // The last 10,000 hours before now, one row each: one segment per age band (14).
        let ts: Vec<i64> = (0..10_000).map(|h| NOW - h * HOUR - 17).rev().collect();
        let parts = cut(&ts, Cut::Flush { now: NOW });
        assert!(parts.len() <= 15, "{}", parts.len());
        assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), ts.len());
        // Years ago, they share one or two.
        let old: Vec<i64> = (0..10_000)
            .map(|h| NOW - 40_000 * HOUR + h * HOUR)
            .collect();
        assert!(cut(&old, Cut::Flush { now: NOW }).len() <= 2);
        // A merge joins them all.
        assert_eq!(cut(&ts, Cut::Merge), vec![0..10_000]);
    }

    #[test]
    fn a_busy_hour_stands_alone_between_sparse_runs() {
        let busy = SPARSE_HOUR_ROWS;
        let mut ts: Vec<i64> = (0..20).map(|h| h * HOUR).collect();
        ts.extend((0..busy as i64).map(|i| 20 * HOUR + i));
        ts.extend((21..40).map(|h| h * HOUR));
        let parts = cut(&ts, Cut::Merge);
        assert_eq!(parts, vec![0..20, 20..20 + busy, 20 + busy..ts.len()]);
        // A flush far later sees them all in one band: the same cut.
        assert_eq!(cut(&ts, Cut::Flush { now: NOW }), parts);
        // Busy hours side by side stay one segment each.
        let two: Vec<i64> = (0..2 * busy as i64)
            .map(|i| i / busy as i64 * HOUR + i % busy as i64)
            .collect();
        assert_eq!(cut(&two, Cut::Merge), vec![0..busy, busy..2 * busy]);
    }

    #[test]
    fn rows_either_side_of_now_and_of_a_band_edge_never_share() {
        let ts = [NOW - 3 * HOUR, NOW - 2 * HOUR - 1, NOW - HOUR, NOW + HOUR];
        let mut many: Vec<i64> = (100..120).map(|h| NOW - h * HOUR).rev().collect();
        many.extend(ts);
        let parts = cut(&many, Cut::Flush { now: NOW });
        for p in &parts {
            let bands: std::collections::BTreeSet<_> =
                many[p.clone()].iter().map(|t| age_band(NOW, *t)).collect();
            assert_eq!(bands.len(), 1, "{parts:?}");
        }
        assert_eq!(age_band(NOW, NOW - 10), (false, 0));
        assert_eq!(age_band(NOW, NOW + 10), (false, 0));
        assert_eq!(age_band(NOW, NOW + 2 * HOUR), (true, 1));
        assert_eq!(age_band(NOW, NOW - 5 * HOUR), (false, 2));
    }

    #[test]
    fn no_segment_spans_more_than_max_span() {
        // Year 1, year 1000, a row before 1970 and year 9999.
        let ts = [
            -62_135_596_800_000_000,
            -30_610_224_000_000_000,
            -1,
            253_402_300_799_999_999,
        ];
        let parts = cut(&ts, Cut::Merge);
        assert_eq!(parts.len(), 3, "{parts:?}");
        for p in &parts {
            assert!(ts[p.end - 1] - ts[p.start] <= MAX_SPAN_US, "{parts:?}");
        }
    }

    #[test]
    fn a_range_inside_a_larger_batch_is_cut_in_its_own_indices() {
        let ts: Vec<i64> = (0..6).map(|h| h * HOUR).collect();
        assert_eq!(segment_ranges(&ts, 2..6, Cut::Merge), vec![2..6]);
        assert_eq!(
            segment_ranges(&ts, 2..6, Cut::Flush { now: NOW }),
            vec![2..3, 3..4, 4..5, 5..6]
        );
    }
}
