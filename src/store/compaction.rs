//! Which local segments a maintenance pass compacts, and into what: the segments of each
//! tenant-hour together, and the near-empty hours of a tenant across hours, so that neither many
//! flushes of one hour nor flushes of many scattered hours stay many segments.
//!
//! Segments are grouped by tenant and the hour of their first row. A group holding at least
//! [`SMALL_GROUP_ROWS`] rows is compacted by itself, in runs of at most `compact_bytes`. Groups
//! with fewer, next to each other in time (no larger or still-open group between them, the
//! newest rows of each in the same power-of-two age band as [`crate::segment::age_band`]
//! draws them), are gathered into runs spanning hours (at most `compact_bytes` and
//! [`MAX_SPAN_US`]). A run of one segment is left as it is (a hot one is relabelled warm); a
//! longer one is merged, and the merge joins its sparse hours ([`Cut::Merge`]). A merge makes
//! fewer segments than it reads unless rows it joins fill an hour, and what it makes is left
//! alone by the next plan, so passes settle.
//!
//! [`Cut::Merge`]: crate::segment::Cut::Merge

use std::collections::BTreeMap;
use std::sync::Arc;

use super::policy::Policies;
use crate::catalog::{SegmentMeta, Tier};
use crate::model::Micros;
use crate::segment::{age_band, MAX_SPAN_US};

const HOUR: i64 = 3_600_000_000;

/// A tenant-hour with fewer rows than this is merged with its neighbours across hours: a
/// segment that small is mostly the cost of its files. Hours with more stay apart, so that
/// ordinary traffic keeps one warm segment per hour, moved and expired by its own age.
pub const SMALL_GROUP_ROWS: u64 = 128;

/// One step of compaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// A lone hot segment of a closed hour (or sparse run): warm by a catalog change alone.
    Relabel(Arc<SegmentMeta>),
    /// Segments to read and write again as few sorted segments.
    Merge(Vec<Arc<SegmentMeta>>),
}

/// The compaction jobs for `segments` at `now`.
pub fn plan(
    segments: &[Arc<SegmentMeta>],
    policies: &Policies,
    now: Micros,
    compact_bytes: u64,
) -> Vec<Job> {
    let mut hours: BTreeMap<(&str, i64), Vec<Arc<SegmentMeta>>> = BTreeMap::new();
    for s in segments.iter().filter(|s| s.location.tier.is_local()) {
        let key = (s.tenant.as_str(), s.min_ts.div_euclid(HOUR));
        hours.entry(key).or_default().push(s.clone());
    }
    let mut jobs = Vec::new();
    let mut sparse = SparseRun::default();
    let mut tenant = None;
    for ((t, _), mut segs) in hours {
        if tenant != Some(t) {
            sparse.close(&mut jobs);
            tenant = Some(t);
        }
        segs.sort_by_key(|s| (s.min_ts, s.id));
        let newest = segs.iter().map(|s| s.max_ts).max().unwrap_or(now);
        if age(now, newest) <= policies.of(t).compact_after {
            sparse.close(&mut jobs);
            continue;
        }
        let rows: u64 = segs.iter().map(|s| s.rows).sum();
        if rows >= SMALL_GROUP_ROWS {
            sparse.close(&mut jobs);
            for chunk in chunks_within(segs, compact_bytes) {
                jobs.extend(job_of(chunk));
            }
            continue;
        }
        let band = age_band(now, newest);
        if sparse.band != Some(band) {
            sparse.close(&mut jobs);
            sparse.band = Some(band);
        }
        for s in segs {
            if !sparse.fits(&s, compact_bytes) {
                sparse.close(&mut jobs);
                sparse.band = Some(band);
            }
            sparse.push(s);
        }
    }
    sparse.close(&mut jobs);
    jobs
}

/// Small groups' segments of one tenant gathered for one merge.
#[derive(Default)]
struct SparseRun {
    /// The age band of the newest rows of its groups.
    band: Option<(bool, u32)>,
    segs: Vec<Arc<SegmentMeta>>,
    bytes: u64,
    min_ts: Micros,
    max_ts: Micros,
}

impl SparseRun {
    fn fits(&self, s: &SegmentMeta, compact_bytes: u64) -> bool {
        self.segs.is_empty()
            || (self.bytes.saturating_add(s.bytes) <= compact_bytes
                && self.max_ts.max(s.max_ts) - self.min_ts.min(s.min_ts) <= MAX_SPAN_US)
    }

    fn push(&mut self, s: Arc<SegmentMeta>) {
        if self.segs.is_empty() {
            (self.min_ts, self.max_ts) = (s.min_ts, s.max_ts);
        }
        self.bytes = self.bytes.saturating_add(s.bytes);
        self.min_ts = self.min_ts.min(s.min_ts);
        self.max_ts = self.max_ts.max(s.max_ts);
        self.segs.push(s);
    }

    fn close(&mut self, jobs: &mut Vec<Job>) {
        let run = std::mem::take(self);
        jobs.extend(job_of(run.segs));
    }
}

/// What to do with one run of segments (nothing for a lone warm one, or none).
fn job_of(mut run: Vec<Arc<SegmentMeta>>) -> Option<Job> {
    match run.len() {
        0 => None,
        1 if run[0].location.tier == Tier::Warm => None,
        1 => run.pop().map(Job::Relabel),
        _ => Some(Job::Merge(run)),
    }
}

fn age(now: Micros, ts: Micros) -> std::time::Duration {
    std::time::Duration::from_micros(now.saturating_sub(ts).max(0) as u64)
}

/// Splits `segs` (one tenant-hour, in time order) into runs of at most `max_bytes` each (a
/// segment larger than that is a run of its own).
fn chunks_within(segs: Vec<Arc<SegmentMeta>>, max_bytes: u64) -> Vec<Vec<Arc<SegmentMeta>>> {
    let mut out: Vec<Vec<Arc<SegmentMeta>>> = Vec::new();
    let mut bytes = 0;
    for s in segs {
        match out.last_mut() {
            Some(run) if bytes + s.bytes <= max_bytes => {
                bytes += s.bytes;
                run.push(s);
            }
            _ => {
                bytes = s.bytes;
                out.push(vec![s]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Location;
    use crate::store::policy::TierPolicy;

    fn seg(id: u64, tenant: &str, min_ts: i64, max_ts: i64, rows: u64) -> Arc<SegmentMeta> {
        Arc::new(SegmentMeta {
            id,
            tenant: tenant.into(),
            min_ts,
            max_ts,
            rows,
            bytes: rows * 10,
            location: Location::hot(format!("segments/{id}.parquet")),
            created_at: 0,
            index: None,
        })
    }

    fn warm(s: Arc<SegmentMeta>) -> Arc<SegmentMeta> {
        let mut w = (*s).clone();
        w.location.tier = Tier::Warm;
        Arc::new(w)
    }

    fn policies(compact_after_hours: u64) -> Policies {
        Policies {
            base: TierPolicy {
                compact_after: std::time::Duration::from_secs(compact_after_hours * 3600),
                cold_after: None,
                retention: None,
            },
            tenants: BTreeMap::new(),
        }
    }

    fn ids(jobs: &[Job]) -> Vec<Vec<u64>> {
        jobs.iter()
            .map(|j| match j {
                Job::Relabel(s) => vec![s.id],
                Job::Merge(run) => run.iter().map(|s| s.id).collect(),
            })
            .collect()
    }

    const NOW: i64 = 100_000 * HOUR;

    #[test]
    fn sparse_segments_of_different_hours_merge_into_one() {
        let segs: Vec<_> = (0..1000)
            .map(|h| seg(h + 1, "t", h as i64 * HOUR, h as i64 * HOUR + 5, 3))
            .collect();
        let jobs = plan(&segs, &policies(1), NOW, 1 << 30);
        assert_eq!(jobs.len(), 1);
        assert_eq!(ids(&jobs)[0].len(), 1000);
    }

    #[test]
    fn three_spanning_segments_of_one_spread_merge() {
        // Three flushes of the same 10,000 sparse hours: each spans them all.
        let segs: Vec<_> = (1..=3)
            .map(|id| seg(id, "t", 0, 9_999 * HOUR, 10_000))
            .collect();
        assert_eq!(ids(&plan(&segs, &policies(1), NOW, 1 << 30)), [[1, 2, 3]]);
    }

    #[test]
    fn busy_hours_break_sparse_runs_and_compact_alone() {
        let big = SMALL_GROUP_ROWS;
        let segs = vec![
            seg(1, "t", 0, 10, 5),
            seg(2, "t", HOUR, HOUR + 10, 5),
            seg(3, "t", 2 * HOUR, 2 * HOUR + 10, big),
            seg(4, "t", 2 * HOUR + 20, 2 * HOUR + 30, 5),
            seg(5, "t", 3 * HOUR, 3 * HOUR + 10, 5),
            seg(6, "t", 4 * HOUR, 4 * HOUR + 10, 5),
        ];
        assert_eq!(
            ids(&plan(&segs, &policies(1), NOW, 1 << 30)),
            [vec![1, 2], vec![3, 4], vec![5, 6]]
        );
    }

    #[test]
    fn tenants_and_open_hours_are_never_merged_across() {
        let segs = vec![
            seg(1, "a", 0, 10, 5),
            seg(2, "b", HOUR, HOUR + 10, 5),
            seg(3, "b", 2 * HOUR, 2 * HOUR + 10, 5),
            // Still open at NOW (compact after 1h): breaks the run.
            seg(4, "b", NOW - HOUR / 2, NOW - 10, 5),
            seg(5, "b", NOW - HOUR / 2 + 1, NOW - 20, 5),
        ];
        assert_eq!(
            ids(&plan(&segs, &policies(1), NOW, 1 << 30)),
            [vec![1], vec![2, 3]],
            "a lone hot segment is relabelled"
        );
    }

    #[test]
    fn what_a_merge_makes_is_left_alone() {
        // A warm spanning segment alone, and a warm busy hour: nothing to do.
        let segs = vec![
            warm(seg(1, "t", 0, 9_999 * HOUR, 30_000)),
            warm(seg(2, "t", 20_000 * HOUR, 20_000 * HOUR + 1, 5)),
            warm(seg(
                3,
                "t",
                30_000 * HOUR,
                30_000 * HOUR + 1,
                SMALL_GROUP_ROWS,
            )),
        ];
        assert!(plan(&segs, &policies(1), NOW, 1 << 30).is_empty());
    }

    #[test]
    fn runs_do_not_cross_an_age_band() {
        let at = |id, hours_ago: i64| {
            seg(
                id,
                "t",
                NOW - hours_ago * HOUR,
                NOW - hours_ago * HOUR + 5,
                3,
            )
        };
        // Newest rows 9 and 8 h old (band 3: 8-15 h), 6 and 4 h (band 2), 2 h (band 1).
        let segs = vec![at(1, 10), at(2, 9), at(3, 7), at(4, 5), at(5, 3)];
        assert_eq!(
            ids(&plan(&segs, &policies(1), NOW, 1 << 30)),
            [vec![1, 2], vec![3, 4], vec![5]]
        );
    }

    #[test]
    fn runs_stay_within_bytes_and_span() {
        let segs: Vec<_> = (0..10)
            .map(|h| seg(h + 1, "t", h as i64 * HOUR, h as i64 * HOUR, 10))
            .collect();
        // 100 bytes each: three to a run of at most 300.
        assert_eq!(
            ids(&plan(&segs, &policies(0), NOW, 300)),
            [vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9], vec![10]]
        );
        let far = vec![
            seg(1, "t", 0, 0, 1),
            seg(2, "t", MAX_SPAN_US + 1, MAX_SPAN_US + 1, 1),
        ];
        assert_eq!(
            ids(&plan(&far, &policies(0), NOW * 1_000, 1 << 30)),
            [[1], [2]]
        );
    }

    #[test]
    fn runs_of_one_hour_stay_within_the_size_and_an_oversized_segment_stands_alone() {
        let s = |id, bytes| {
            let mut m = (*seg(id, "t", 0, 1, 1)).clone();
            m.bytes = bytes;
            Arc::new(m)
        };
        let runs = chunks_within(vec![s(1, 40), s(2, 50), s(3, 20), s(4, 500), s(5, 10)], 100);
        let ids: Vec<Vec<u64>> = runs
            .iter()
            .map(|r| r.iter().map(|s| s.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 2], vec![3], vec![4], vec![5]]);
    }
}
