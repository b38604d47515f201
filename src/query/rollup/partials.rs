//! Where a view's partials come from: a user view's files (`store::rollups`), or — for the
//! built-in `logs_per_minute` — each segment's count table, whose per-minute counts by
//! (service, host, level) are exactly that view's states.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::record_batch::RecordBatch;

use crate::catalog::SegmentMeta;
use crate::index::rollup::RollupPlan;
use crate::index::{CountKey, CountTable, LabelFilter, Split, COUNTS_SECTION, MINUTE_US};
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

    /// `view`'s partials of `seg`, if it has them.
    pub fn partials(
        self,
        store: &Store,
        view: &RollupPlan,
        seg: &SegmentMeta,
    ) -> Option<Arc<RecordBatch>> {
        let key = &seg.location.key;
        match self {
            Source::Files => store.rollups.partials(view, key),
            Source::CountTables => {
                if let Some(hit) = store.rollups.cached(view.id, key) {
                    return Some(hit);
                }
                let table = count_table(store, seg)?;
                let batch = match count_states(&table, view) {
                    Ok(b) => Arc::new(b),
                    Err(e) => {
                        tracing::warn!(segment = seg.id, error = %e, "count table unusable as partials");
                        return None;
                    }
                };
                store.rollups.remember(view.id, key, batch.clone());
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

/// A count table as the states of `view` (`__bucket`, service, host, level, count).
fn count_states(
    table: &CountTable,
    view: &RollupPlan,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let mut groups: HashMap<CountKey, u64> = HashMap::new();
    table.tally(
        &LabelFilter::default(),
        i64::MIN..i64::MAX,
        Split {
            minute: true,
            labels: [true; 3],
        },
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
    let columns = columns
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns)
}
