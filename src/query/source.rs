//! The physical sources of a `logs` scan: Parquet segments (through the footer cache) and hot batches.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetRowSelection,
};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::parquet::arrow::arrow_reader::RowSelection;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

use timberline_udfs::{sqlstate, QueryError};

use crate::catalog::SegmentMeta;
use crate::model::ts_column;
use crate::storage::{bloom_key, index_key, SegmentFiles, StorageError};
use crate::store::Store;

/// Registers each store of the segment files under its [`SegmentFiles::url`] in `runtime`.
pub fn register_segments_store(runtime: &RuntimeEnv, files: &SegmentFiles) {
    for (url, store) in files.stores() {
        runtime.register_object_store(url.as_ref(), store);
    }
}

/// Brings the sidecars of the cold segments among `segments` into the local cache (a GET each
/// the first time, none after), so they prune as local ones do.
pub async fn prefetch_cold_sidecars(store: &Store, segments: &[Arc<SegmentMeta>]) {
    let keys: Vec<String> = segments
        .iter()
        .filter(|s| !s.location.tier.is_local())
        .filter_map(|s| s.index.as_ref().map(|i| (s, i)))
        .flat_map(|(s, i)| {
            let key = &s.location.key;
            let bloom = (!i.blooms.is_empty()).then(|| bloom_key(key));
            std::iter::once(index_key(key)).chain(bloom)
        })
        .collect();
    if !keys.is_empty() {
        store.files.fetch_sidecars(keys).await;
    }
}

/// Fails (58P01) when a segment's data file is gone: every path that would read or count the
/// segment's rows refuses the query the same way, instead of some answering without them.
pub fn require_data_file(files: &SegmentFiles, seg: &SegmentMeta) -> Result<()> {
    match files.has_data(&seg.location) {
        true => Ok(()),
        false => Err(QueryError::new(
            sqlstate::UNDEFINED_FILE,
            format!(
                "segment {} has lost its data file; restore it from a backup or remove the segment",
                seg.location
            ),
        )
        .into_df()),
    }
}

/// A segment's file that storage could not give (58030), with the segment and the reason.
pub fn storage_failure(seg: &SegmentMeta, e: StorageError) -> DataFusionError {
    QueryError::new(
        sqlstate::IO_ERROR,
        format!("segment {}: {e}", seg.location.key),
    )
    .into_df()
}

/// One segment as a file for DataFusion, with the catalog's exact statistics (row count, ts range)
/// so that file-level pruning needs no footer read.
pub fn file_of(schema: &SchemaRef, seg: &SegmentMeta) -> PartitionedFile {
    let ts = |v| {
        Precision::Exact(ScalarValue::TimestampMicrosecond(
            Some(v),
            Some("UTC".into()),
        ))
    };
    let mut columns = vec![ColumnStatistics::new_unknown(); schema.fields().len()];
    columns[ts_column()] = ColumnStatistics::new_unknown()
        .with_min_value(ts(seg.min_ts))
        .with_max_value(ts(seg.max_ts))
        .with_null_count(Precision::Exact(0));
    let stats = Statistics {
        num_rows: Precision::Exact(seg.rows as usize),
        total_byte_size: Precision::Absent,
        column_statistics: columns,
    };
    PartitionedFile::new(seg.location.key.clone(), seg.bytes).with_statistics(Arc::new(stats))
}

/// Parquet scans of `segments`, one per store that holds some (local disk, the object store),
/// each spread over up to `partitions` partitions: row groups, pages (page index) and bloom
/// filters pruned by `predicate`, which is also applied row by row while decoding. Footers and
/// page indexes come from the runtime's metadata cache after the first read.
pub fn parquet_execs(
    schema: &SchemaRef,
    segments: &[&SegmentMeta],
    selections: &HashMap<u64, RowSelection>,
    projection: Option<Vec<usize>>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    partitions: usize,
    runtime: &RuntimeEnv,
) -> Result<Vec<Arc<dyn ExecutionPlan>>> {
    let mut by_store: Vec<(ObjectStoreUrl, Vec<&SegmentMeta>)> = Vec::new();
    for seg in segments {
        let url = SegmentFiles::url(seg.location.tier);
        match by_store.iter_mut().find(|(u, _)| *u == url) {
            Some((_, segs)) => segs.push(seg),
            None => by_store.push((url, vec![seg])),
        }
    }
    by_store
        .into_iter()
        .map(|(url, segs)| {
            parquet_exec(
                url,
                schema,
                &segs,
                selections,
                projection.clone(),
                predicate.clone(),
                partitions,
                runtime,
            )
        })
        .collect()
}

/// A Parquet scan of `segments`, all in the store registered as `url`.
#[allow(clippy::too_many_arguments)]
fn parquet_exec(
    url: ObjectStoreUrl,
    schema: &SchemaRef,
    segments: &[&SegmentMeta],
    selections: &HashMap<u64, RowSelection>,
    projection: Option<Vec<usize>>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    partitions: usize,
    runtime: &RuntimeEnv,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut groups: Vec<Vec<PartitionedFile>> =
        vec![Vec::new(); partitions.max(1).min(segments.len().max(1))];
    let n = groups.len();
    for (i, seg) in segments.iter().enumerate() {
        let mut file = file_of(schema, seg);
        if let Some(rows) = selections.get(&seg.id) {
            file = file.with_extension(ParquetRowSelection::new(rows.clone()));
        }
        groups[i % n].push(file);
    }
    let reader = CachedParquetFileReaderFactory::new(
        runtime.object_store(&url)?,
        runtime.cache_manager.get_file_metadata_cache(),
    );
    let mut source = ParquetSource::new(schema.clone())
        .with_enable_page_index(true)
        .with_bloom_filter_on_read(true)
        .with_pushdown_filters(true)
        .with_parquet_file_reader_factory(Arc::new(reader));
    if let Some(p) = predicate {
        source = source.with_predicate(p);
    }
    let config = FileScanConfigBuilder::new(url, Arc::new(source))
        .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
        .with_projection_indices(projection)?
        .build();
    Ok(DataSourceExec::from_data_source(config))
}
