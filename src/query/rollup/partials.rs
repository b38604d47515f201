//! Where a view's partials come from: a user view's files (`store::rollups`), or — for the
//! built-in `logs_per_minute` — each segment's count table, whose per-minute counts by
//! (service, host, level) are exactly that view's states. A query that reads fewer of them
//! ([`Grain`]) has the count tables tallied at its own grain instead.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;

use super::define::dim_name;
use crate::catalog::SegmentMeta;
use crate::index::rollup::{Bucket, RollupPlan, BUCKET};
use crate::index::{CountKey, CountTable, LabelFilter, Split, COUNTS_SECTION, LABELS, MINUTE_US};
use crate::query::source::prefetch_cold_sidecars;
use crate::store::Store;

/// Which partials a view has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// Files written at flush, compaction and backfill.
    Files,
    /// The segments' count tables (the built-in view).
    CountTables,
}

impl Source {
    /// Readies the partials of `segments` (brings cold segments' sidecars to local disk).
    pub async fn prepare(self, store: &Store, segments: &[Arc<SegmentMeta>]) {
        if self == Source::CountTables {
            prefetch_cold_sidecars(store, segments).await;
        }
    }

    /// `view`'s partials of `seg`, if it has them: all of them, or for the count tables and a
    /// `grain`, those of the grain's whole minutes tallied at it.
    pub fn partials(
        self,
        store: &Store,
        view: &RollupPlan,
        seg: &SegmentMeta,
        grain: Option<&Grain>,
    ) -> Option<Arc<RecordBatch>> {
        let key = &seg.location.key;
        match self {
            Source::Files => store.rollups.partials(view, key),
            Source::CountTables => {
                // The view's own grain is kept for the next query; a query's grain is not.
                if grain.is_none() {
                    if let Some(hit) = store.rollups.cached(view.id, key) {
                        return Some(hit);
                    }
                }
                let table = count_table(store, seg)?;
                let batch = match count_states(&table, view, grain.unwrap_or(&Grain::ALL)) {
                    Ok(b) => Arc::new(b),
                    Err(e) => {
                        tracing::warn!(segment = seg.id, error = %e, "count table unusable as partials");
                        return None;
                    }
                };
                if grain.is_none() {
                    store.rollups.remember(view.id, key, batch.clone());
                }
                Some(batch)
            }
        }
    }
}

/// A segment's count table, if its index has one that matches the segment.
fn count_table(store: &Store, seg: &SegmentMeta) -> Option<Arc<CountTable>> {
    let meta = seg.index.as_ref()?;
    if !meta.fields.iter().any(|f| f == COUNTS_SECTION) {
        return None;
    }
    let index = store.indexes.get(&store.files.index(&seg.location).ok()?)?;
    if u64::from(index.rows()) != seg.rows {
        return None;
    }
    index.counts()
}

/// What of the built-in view's states a query reads: the minute and the labels its groups and
/// filters name (`split`), over the whole minutes `minutes` (in minutes since the epoch, end
/// exclusive). A count table tallied at the grain gives every group the query can tell apart
/// the same count, in far fewer rows: a day of 10M rows by minute and level is 7,205 states,
/// where the view's own grain (minute, service, host, level) is 1.86M that the query would
/// filter, copy and regroup.
#[derive(Debug, Clone, PartialEq)]
pub struct Grain {
    pub split: Split,
    pub minutes: Range<i64>,
}

impl Grain {
    /// The view's own grain: every state.
    const ALL: Grain = Grain {
        split: Split {
            minute: true,
            labels: [true; 3],
        },
        minutes: i64::MIN..i64::MAX,
    };

    /// The grain of a query reading the state columns `columns` over the whole buckets
    /// `[from, to)` (µs) of `bucket`; `None` when that is not a grain of the count tables: a
    /// column other than the bucket and the labels, or bounds that are not whole minutes.
    pub fn of<'a>(
        columns: impl IntoIterator<Item = &'a str>,
        bucket: Bucket,
        (from, to): (i64, i64),
    ) -> Option<Grain> {
        if bucket.width != MINUTE_US || bucket.origin.rem_euclid(MINUTE_US) != 0 {
            return None;
        }
        let mut split = Split::default();
        for c in columns {
            if c == BUCKET {
                split.minute = true;
            } else {
                let l = (0..LABELS.len()).find(|l| dim_name(*l) == c)?;
                split.labels[l] = true;
            }
        }
        let minute = |us: i64, open: i64| match us {
            _ if us == open => Some(us),
            _ if us.rem_euclid(MINUTE_US) == 0 => Some(us.div_euclid(MINUTE_US)),
            _ => None,
        };
        Some(Grain {
            split,
            minutes: minute(from, i64::MIN)?..minute(to, i64::MAX)?,
        })
    }
}

/// A count table as the states of `view` (`__bucket`, service, host, level, count) at `grain`;
/// a column the grain does not split by holds NULL (or, where the state schema allows none, a
/// default value no query of that grain reads).
fn count_states(
    table: &CountTable,
    view: &RollupPlan,
    grain: &Grain,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let mut groups: HashMap<CountKey, u64> = HashMap::new();
    table.tally(
        &LabelFilter::default(),
        grain.minutes.clone(),
        grain.split,
        &mut groups,
    );
    let schema = view.state_schema.clone();
    let groups: Vec<(CountKey, u64)> = groups.into_iter().collect();
    let minute: TimestampMicrosecondArray = groups
        .iter()
        .map(|(k, _)| k.minute.map(|m| m.saturating_mul(MINUTE_US)))
        .collect();
    let mut columns: Vec<ArrayRef> = vec![Arc::new(minute.with_timezone("UTC"))];
    for l in 0..3 {
        let values: StringArray = groups.iter().map(|(k, _)| k.labels[l].clone()).collect();
        columns.push(Arc::new(values));
    }
    let n: Int64Array = groups
        .iter()
        .map(|(_, n)| Some(i64::try_from(*n).unwrap_or(i64::MAX)))
        .collect();
    columns.push(Arc::new(n));
    let split = [
        grain.split.minute,
        grain.split.labels[0],
        grain.split.labels[1],
        grain.split.labels[2],
        true,
    ];
    let columns = columns
        .iter()
        .zip(schema.fields())
        .zip(split)
        .map(|((c, f), split)| match split || f.is_nullable() {
            true => cast(c, f.data_type()),
            false => ScalarValue::new_default(f.data_type())
                .and_then(|v| v.to_array_of_size(c.len()))
                .map_err(|e| datafusion::arrow::error::ArrowError::ComputeError(e.to_string())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Bucket = Bucket {
        width: MINUTE_US,
        origin: 0,
    };

    #[test]
    fn a_grain_splits_by_what_the_query_reads_over_whole_minutes() {
        let g = Grain::of(
            [BUCKET, "__dim2"],
            MINUTE,
            (60 * MINUTE_US, 120 * MINUTE_US),
        );
        assert_eq!(
            g,
            Some(Grain {
                split: Split {
                    minute: true,
                    labels: [false, false, true]
                },
                minutes: 60..120,
            })
        );
        let g = Grain::of(["__dim0", "__dim0"], MINUTE, (i64::MIN, i64::MAX));
        assert_eq!(
            g,
            Some(Grain {
                split: Split {
                    minute: false,
                    labels: [true, false, false]
                },
                minutes: i64::MIN..i64::MAX,
            })
        );
    }

    #[test]
    fn no_grain_for_other_columns_buckets_or_bounds_inside_a_minute() {
        assert_eq!(Grain::of(["__dim3"], MINUTE, (0, MINUTE_US)), None);
        assert_eq!(Grain::of(["msg"], MINUTE, (0, MINUTE_US)), None);
        assert_eq!(Grain::of([BUCKET], MINUTE, (1, MINUTE_US)), None);
        assert_eq!(Grain::of([BUCKET], MINUTE, (0, MINUTE_US + 7)), None);
        let hourly = Bucket {
            width: 60 * MINUTE_US,
            origin: 0,
        };
        assert_eq!(Grain::of([BUCKET], hourly, (0, 60 * MINUTE_US)), None);
    }
}
