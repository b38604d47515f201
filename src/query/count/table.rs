//! [`CountedLogs`]: `logs` seen as (ts, service, host, level, n) rows whose `n`s sum to the
//! `count(*)` of the rows they stand for; what [`super::CountFromIndex`] aggregates instead.
//!
//! ```text
//!  segment with a count table ─► its whole minutes in the range: one row per group, n = rows
//!                               └► the rest of the range (a bound inside a minute): scanned
//!  segment without one, hot rows ─► scanned, filtered, n = 1 per row
//! ```
//! Every row in the range is counted exactly once: by its segment's table when its minute lies
//! wholly inside the range, otherwise by the scan.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{plan_err, DFSchema, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{col, lit, Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_plan::expressions::{Column, Literal};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;

use super::spec::CountSpec;
use crate::catalog::SegmentMeta;
use crate::index::{CountKey, CountTable, Split, COUNTS_SECTION, LABELS, MINUTE_US};
use crate::model::logs_schema;
use crate::query::scan::{Counted, LogScanExec, ScanCounts};
use crate::query::scope::session_tenant;
use crate::query::source::{prefetch_cold_sidecars, require_data_file};
use crate::query::table::{hold_of, scan_rows};
use crate::store::Store;

/// The column holding how many rows a row of [`CountedLogs`] stands for.
pub const N: &str = "n";

/// The columns of `logs` a count can group by, then `n`.
pub fn counted_schema() -> SchemaRef {
    let logs = logs_schema();
    let mut fields: Vec<Field> = ["ts", "service", "host", "level"]
        .iter()
        .filter_map(|name| logs.field_with_name(name).ok().cloned())
        .collect();
    fields.push(Field::new(N, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// `logs` as counted rows; its filters must make a [`CountSpec`].
#[derive(Debug)]
pub struct CountedLogs {
    store: Arc<Store>,
    schema: SchemaRef,
}

impl CountedLogs {
    pub fn new(store: Arc<Store>) -> CountedLogs {
        CountedLogs {
            store,
            schema: counted_schema(),
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

#[async_trait]
impl TableProvider for CountedLogs {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(spec) = CountSpec::from_filters(filters) else {
            return plan_err!("counted logs scanned with filters a count table cannot apply");
        };
        let projected: SchemaRef = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let columns: Vec<String> = projected
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != N)
            .collect();
        let has = |name: &str| columns.iter().any(|c| c == name);
        let split = Split {
            minute: has("ts"),
            labels: LABELS.map(has),
        };

        let snap = self.store.snapshot().for_tenant(&session_tenant(state)?)?;
        let in_range: Vec<Arc<SegmentMeta>> = snap
            .segments
            .iter()
            .filter(|s| {
                !(spec.lo.is_some_and(|lo| s.max_ts < lo)
                    || spec.hi.is_some_and(|hi| s.min_ts > hi))
            })
            .cloned()
            .collect();
        prefetch_cold_sidecars(&self.store, &in_range).await;
        let whole = spec.whole_minutes();
        let (whole_from, whole_to) = (
            whole.start.saturating_mul(MINUTE_US),
            whole.end.saturating_mul(MINUTE_US),
        );
        let mut groups: HashMap<CountKey, u64> = HashMap::new();
        let mut counted = Counted::default();
        let mut pruned_time = 0;
        let (mut uncounted, mut edges) = (Vec::new(), Vec::new());
        for seg in snap.segments.iter() {
            if spec.lo.is_some_and(|lo| seg.max_ts < lo)
                || spec.hi.is_some_and(|hi| seg.min_ts > hi)
            {
                pruned_time += 1;
                continue;
            }
            let Some(table) = count_table(&self.store, seg) else {
                uncounted.push(seg.clone());
                continue;
            };
            counted.segments += 1;
            let rows = table.tally(&spec.labels, whole.clone(), split, &mut groups);
            if rows > 0 {
                // Counted rows must be rows a scan could still read.
                require_data_file(&self.store.files, seg)?;
            }
            counted.rows += rows;
            if seg.min_ts < whole_from || seg.max_ts >= whole_to {
                edges.push(seg.clone());
            }
        }
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = vec![MemorySourceConfig::try_new_exec(
            &[vec![groups_batch(&projected, &columns, groups)?]],
            projected.clone(),
            None,
        )?];
        let mut scans = ScanCounts {
            segments_total: snap.segments.len(),
            segments_pruned_time: pruned_time,
            counted: Some(counted),
            ..ScanCounts::default()
        };
        // Rows outside the tables: segments without one, and the hot buffer.
        if !uncounted.is_empty() || !snap.hot.is_empty() {
            let (plan, c) =
                self.scan_counted(state, &uncounted, snap.hot, &columns, filters.to_vec())?;
            inputs.push(plan);
            scans = scans.plus(ScanCounts {
                segments_total: 0,
                segments_pruned_time: 0,
                ..c
            });
        }
        // Rows of counted segments in the range but outside its whole minutes.
        if !edges.is_empty() {
            let mut outside = Vec::new();
            if whole.start > i64::MIN {
                outside.push(col("ts").lt(lit(ScalarValue::TimestampMicrosecond(
                    Some(whole_from),
                    Some("UTC".into()),
                ))));
            }
            if whole.end < i64::MAX {
                outside.push(col("ts").gt_eq(lit(ScalarValue::TimestampMicrosecond(
                    Some(whole_to),
                    Some("UTC".into()),
                ))));
            }
            let mut edge_filters = filters.to_vec();
            if let Some(outside) = outside.into_iter().reduce(Expr::or) {
                edge_filters.push(outside);
            }
            let (plan, c) = self.scan_counted(state, &edges, Vec::new(), &columns, edge_filters)?;
            inputs.push(plan);
            scans = scans.plus(ScanCounts {
                segments_total: 0,
                segments_pruned_time: 0,
                ..c
            });
        }
        let plan = UnionExec::try_new(inputs)?;
        Ok(Arc::new(LogScanExec::new(
            plan,
            scans,
            hold_of(&self.store, &snap.segments),
        )))
    }
}

impl CountedLogs {
    /// The rows of `segments` and `hot` passing `filters`, as `columns` and `n = 1`.
    fn scan_counted(
        &self,
        state: &dyn Session,
        segments: &[Arc<SegmentMeta>],
        hot: Vec<RecordBatch>,
        columns: &[String],
        filters: Vec<Expr>,
    ) -> Result<(Arc<dyn ExecutionPlan>, ScanCounts)> {
        let logs = logs_schema();
        // What the filters read and what the count groups by: the time and the labels.
        let read: Vec<usize> = ["ts", "service", "host", "level"]
            .iter()
            .filter_map(|name| logs.index_of(name).ok())
            .collect();
        let (rows, counts) = scan_rows(&self.store, state, segments, hot, Some(&read), &filters)?;
        let read_schema = rows.schema();
        let df_schema = DFSchema::try_from_qualified_schema("logs", &read_schema)?;
        let mut plan = rows;
        if let Some(predicate) = conjunction(filters) {
            let predicate = state.create_physical_expr(predicate, &df_schema)?;
            plan = Arc::new(FilterExec::try_new(predicate, plan)?);
        }
        let mut exprs: Vec<ProjectionExpr> = Vec::new();
        for name in columns {
            let i = read_schema.index_of(name)?;
            exprs.push(ProjectionExpr {
                expr: Arc::new(Column::new(name, i)),
                alias: name.clone(),
            });
        }
        exprs.push(ProjectionExpr {
            expr: Arc::new(Literal::new(ScalarValue::Int64(Some(1)))),
            alias: N.to_string(),
        });
        Ok((Arc::new(ProjectionExec::try_new(exprs, plan)?), counts))
    }
}

/// The tallied groups as a batch of `schema` (`columns`, then `n`). Without any column to
/// group by, one row carries the whole count, 0 included, so `count(*)` of nothing is 0.
fn groups_batch(
    schema: &SchemaRef,
    columns: &[String],
    mut groups: HashMap<CountKey, u64>,
) -> Result<RecordBatch> {
    if columns.is_empty() && groups.is_empty() {
        groups.insert(
            CountKey {
                minute: None,
                labels: [None, None, None],
            },
            0,
        );
    }
    let groups: Vec<(CountKey, u64)> = groups.into_iter().collect();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len() + 1);
    for name in columns {
        if name == "ts" {
            let values: TimestampMicrosecondArray = groups
                .iter()
                .map(|(k, _)| k.minute.map(|m| m.saturating_mul(MINUTE_US)))
                .collect();
            arrays.push(Arc::new(values.with_timezone_opt(
                match schema.field_with_name("ts")?.data_type() {
                    DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                },
            )));
        } else {
            let l = LABELS.iter().position(|c| c == name).unwrap_or(0);
            let values: StringArray = groups.iter().map(|(k, _)| k.labels[l].clone()).collect();
            arrays.push(Arc::new(values));
        }
    }
    let n: Int64Array = groups
        .iter()
        .map(|(_, n)| Some(i64::try_from(*n).unwrap_or(i64::MAX)))
        .collect();
    arrays.push(Arc::new(n));
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}
