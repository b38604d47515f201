//! [`LogTable`]: the `logs` TableProvider over cataloged segments and the hot buffer.
//!
//! ```text
//!  filters ──► physical predicate ──► catalog min/max(ts) pruning (no file opened)
//!                                       │ surviving segments, with exact per-file stats
//!                                       ▼
//!          DataSourceExec(Parquet: file stats → row groups → page index → bloom → row filter)
//!                              ∪ hot buffer batches (MemorySourceConfig)
//!                                       ▼
//!                               LogScanExec (counts)  ──► FilterExec added by DataFusion
//! ```
//! Every filter is `Inexact`: pruning may keep extra rows, DataFusion re-applies the filter.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, DFSchema, ScalarValue, Statistics};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;

use super::prune::keep_by_time;
use super::scan::{LogScanExec, ScanCounts};
use crate::catalog::SegmentMeta;
use crate::model::{logs_schema, ts_column};
use crate::store::Store;

/// The `logs` table.
#[derive(Debug)]
pub struct LogTable {
    store: Arc<Store>,
    schema: SchemaRef,
}

impl LogTable {
    pub fn new(store: Arc<Store>) -> LogTable {
        LogTable {
            store,
            schema: logs_schema(),
        }
    }

    fn file_of(&self, seg: &SegmentMeta) -> PartitionedFile {
        let ts = |v| {
            Precision::Exact(ScalarValue::TimestampMicrosecond(
                Some(v),
                Some("UTC".into()),
            ))
        };
        let mut columns = vec![ColumnStatistics::new_unknown(); self.schema.fields().len()];
        columns[ts_column()] = ColumnStatistics::new_unknown()
            .with_min_value(ts(seg.min_ts))
            .with_max_value(ts(seg.max_ts))
            .with_null_count(Precision::Exact(0));
        let stats = Statistics {
            num_rows: Precision::Exact(seg.rows as usize),
            total_byte_size: Precision::Absent,
            column_statistics: columns,
        };
        let path = self.store.data_dir.join(&seg.path);
        PartitionedFile::new(path.to_string_lossy().to_string(), seg.bytes)
            .with_statistics(Arc::new(stats))
    }
}

#[async_trait]
impl TableProvider for LogTable {
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
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snap = self.store.snapshot();
        let df_schema = DFSchema::try_from(self.schema.clone())?;
        let predicate = conjunction(filters.to_vec())
            .map(|e| state.create_physical_expr(e, &df_schema))
            .transpose()?;
        let keep = keep_by_time(&snap.segments, predicate.as_ref(), &self.schema);
        let kept: Vec<&SegmentMeta> = snap
            .segments
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(s, _)| s)
            .collect();
        let counts = ScanCounts {
            segments_total: snap.segments.len(),
            segments_pruned_time: snap.segments.len() - kept.len(),
            hot_batches: snap.hot.len(),
        };

        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !kept.is_empty() {
            let partitions = state.config().target_partitions().max(1);
            let mut groups: Vec<Vec<PartitionedFile>> =
                vec![Vec::new(); partitions.min(kept.len())];
            let n = groups.len();
            for (i, seg) in kept.iter().enumerate() {
                groups[i % n].push(self.file_of(seg));
            }
            let mut source = ParquetSource::new(self.schema.clone())
                .with_enable_page_index(true)
                .with_bloom_filter_on_read(true)
                .with_pushdown_filters(true);
            if let Some(p) = &predicate {
                source = source.with_predicate(p.clone());
            }
            let config =
                FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                    .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                    .with_projection_indices(projection.cloned())?
                    .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }
        if !snap.hot.is_empty() {
            let parts = state
                .config()
                .target_partitions()
                .max(1)
                .min(snap.hot.len());
            let mut partitions = vec![Vec::new(); parts];
            for (i, b) in snap.hot.into_iter().enumerate() {
                partitions[i % parts].push(b);
            }
            inputs.push(MemorySourceConfig::try_new_exec(
                &partitions,
                self.schema.clone(),
                projection.cloned(),
            )?);
        }
        let plan: Arc<dyn ExecutionPlan> = match inputs.len() {
            0 => {
                let projected = match projection {
                    Some(p) => Arc::new(self.schema.project(p)?),
                    None => self.schema.clone(),
                };
                Arc::new(EmptyExec::new(projected))
            }
            1 => inputs.remove(0),
            _ => UnionExec::try_new(inputs)?,
        };
        Ok(Arc::new(LogScanExec::new(plan, counts)))
    }
}
