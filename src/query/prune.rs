//! Segment pruning by the catalog's statistics, before any file is opened.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, TimestampMicrosecondArray, UInt64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::PhysicalExpr;

use crate::catalog::SegmentMeta;

/// The catalog rows of some segments, seen as pruning containers (min/max of `ts`, row counts).
pub struct SegmentStats<'a> {
    pub segments: &'a [Arc<SegmentMeta>],
}

impl SegmentStats<'_> {
    fn ts(&self, column: &Column, f: impl Fn(&SegmentMeta) -> i64) -> Option<ArrayRef> {
        (column.name == "ts").then(|| {
            let values: TimestampMicrosecondArray =
                self.segments.iter().map(|s| Some(f(s))).collect();
            Arc::new(values.with_timezone("UTC")) as ArrayRef
        })
    }
}

impl PruningStatistics for SegmentStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.ts(column, |s| s.min_ts)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.ts(column, |s| s.max_ts)
    }

    fn num_containers(&self) -> usize {
        self.segments.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        (column.name == "ts")
            .then(|| Arc::new(UInt64Array::from(vec![0u64; self.segments.len()])) as ArrayRef)
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(
            self.segments
                .iter()
                .map(|s| Some(s.rows))
                .collect::<UInt64Array>(),
        ))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// Which segments may hold rows matching `predicate` (all of them when it cannot be evaluated).
pub fn keep_by_time(
    segments: &[Arc<SegmentMeta>],
    predicate: Option<&Arc<dyn PhysicalExpr>>,
    schema: &SchemaRef,
) -> Vec<bool> {
    let all = vec![true; segments.len()];
    let Some(predicate) = predicate else {
        return all;
    };
    let built = PruningPredicateBuilder::new()
        .with_file_schema(schema.clone())
        .try_build(predicate.clone());
    match built.and_then(|p| p.prune(&SegmentStats { segments })) {
        Ok(keep) => keep,
        Err(e) => {
            tracing::debug!(error = %e, "segment pruning skipped");
            all
        }
    }
}
