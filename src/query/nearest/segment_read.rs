//! One segment as the ring search reads it: first which rows qualify, from `ts` and the columns
//! the conditions name, then the full rows of the few that win — each only from the pages
//! that hold them.
//!
//! A segment is sorted by `ts`, so the `ts` page index (min/max and first row of every page)
//! tells exactly which pages can hold a `ts` range. Finding rows decodes those `ts` pages and,
//! for the rows inside the range, the pages of the condition's columns; fetching decodes one page
//! per column around each winner. Footer and page index come decoded from the session's
//! metadata cache, so a warm lookup does no metadata I/O at all.

use std::collections::HashSet;
use std::fs::File;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchReader,
};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Schema, SchemaRef, TimestampMicrosecondType};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use datafusion::parquet::file::reader::ChunkReader;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_plan::PhysicalExpr;

use timberline_udfs::{sqlstate, QueryError};

use crate::catalog::SegmentMeta;
use crate::model::{logs_schema, ts_column};
use crate::query::source::{file_of, storage_failure};
use crate::storage::{RemoteFile, SegmentFiles};

/// Rows read in one decoder batch (the reader's output chunk, not a limit).
const BATCH_ROWS: usize = 8192;

/// Rows of a segment found by [`SegmentFile::find`]: positions in the file, and their `ts`.
#[derive(Debug, Default, Clone)]
pub struct Found {
    pub rows: Vec<u64>,
    pub ts: Vec<i64>,
}

/// Where a segment's bytes are read from: its local file, or its object in the cold store.
enum Held {
    Local(PathBuf),
    Remote(RemoteFile),
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Held::Local(p) => write!(f, "{}", p.display()),
            Held::Remote(r) => write!(f, "cold:{}", r.key),
        }
    }
}

/// An open segment: where it is, and its decoded footer and page index.
pub struct SegmentFile {
    path: Held,
    meta: ArrowReaderMetadata,
    /// The first file row of each row group, plus the row count at the end.
    group_starts: Vec<u64>,
}

impl SegmentFile {
    /// Opens `seg`, its metadata from (or into) the runtime's metadata cache.
    pub async fn open(
        files: &SegmentFiles,
        seg: &SegmentMeta,
        runtime: &RuntimeEnv,
    ) -> Result<SegmentFile> {
        // The same key and size the Parquet scans use, so both share one cache entry.
        let object = file_of(&logs_schema(), seg).object_meta;
        let store = runtime.object_store(SegmentFiles::url(seg.location.tier))?;
        let path = if seg.location.tier.is_local() {
            Held::Local(
                files
                    .data(&seg.location)
                    .map_err(|e| storage_failure(seg, e))?,
            )
        } else {
            Held::Remote(RemoteFile {
                store: store.clone(),
                key: object.location.clone(),
                size: seg.bytes,
                rt: tokio::runtime::Handle::current(),
                failed: Default::default(),
            })
        };
        let metadata = DFParquetMetadata::new(store.as_ref(), &object)
            .with_file_metadata_cache(Some(runtime.cache_manager.get_file_metadata_cache()))
            .with_page_index_policy(Some(PageIndexPolicy::Optional))
            .fetch_metadata()
            .await?;
        SegmentFile::new(path, metadata)
    }

    fn new(path: Held, metadata: Arc<ParquetMetaData>) -> Result<SegmentFile> {
        let meta = ArrowReaderMetadata::try_new(metadata, ArrowReaderOptions::new())?;
        let expected = logs_schema();
        let names = |s: &Schema| {
            s.fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>()
        };
        if names(meta.schema()) != names(&expected) {
            return Err(corrupt(format!(
                "segment {path} does not have the logs columns"
            )));
        }
        let mut group_starts = vec![0u64];
        for g in meta.metadata().row_groups() {
            let last = group_starts.last().copied().unwrap_or(0);
            group_starts.push(last + g.num_rows().max(0) as u64);
        }
        Ok(SegmentFile {
            path,
            meta,
            group_starts,
        })
    }

    /// Rows whose `ts` falls in one of `ranges` (inclusive) and for which `predicate` (planned
    /// against the `logs` schema) holds, in file order. Blocking file I/O.
    pub fn find(
        &self,
        ranges: &[(i64, i64)],
        predicate: Option<&Arc<dyn PhysicalExpr>>,
    ) -> Result<(Found, usize)> {
        let mut found = Found::default();
        let mut keys_decoded = 0;
        for g in 0..self.group_starts.len().saturating_sub(1) {
            let pages = self.ts_pages(g, ranges);
            if pages.is_empty() {
                continue;
            }
            let batch = self.read(g, &pages, &[ts_column()])?;
            let ts = batch
                .column(0)
                .as_primitive_opt::<TimestampMicrosecondType>()
                .ok_or_else(|| corrupt("ts is not a timestamp".into()))?
                .values();
            keys_decoded += ts.len();
            let start = self.group_starts[g];
            let mut i = 0;
            for page in &pages {
                for row in page.clone() {
                    let Some(&v) = ts.get(i) else {
                        return Err(corrupt(format!(
                            "segment {}: fewer ts values than its page index promises",
                            self.path
                        )));
                    };
                    i += 1;
                    if ranges.iter().any(|&(lo, hi)| lo <= v && v <= hi) {
                        found.rows.push(start + row as u64);
                        found.ts.push(v);
                    }
                }
            }
        }
        if let (Some(p), false) = (predicate, found.rows.is_empty()) {
            found = self.keep_matching(found, p)?;
        }
        Ok((found, keys_decoded))
    }

    /// Full `logs` rows at `rows` (file positions, ascending), in that order. Blocking file I/O.
    pub fn fetch(&self, rows: &[u64]) -> Result<RecordBatch> {
        let all: Vec<usize> = (0..logs_schema().fields().len()).collect();
        let batch = self.read_rows(rows, &all)?;
        Ok(RecordBatch::try_new(
            logs_schema(),
            batch.columns().to_vec(),
        )?)
    }

    /// `found` narrowed to the rows where `predicate` holds, reading only its columns.
    fn keep_matching(&self, found: Found, predicate: &Arc<dyn PhysicalExpr>) -> Result<Found> {
        let columns: HashSet<usize> = collect_columns(predicate)
            .iter()
            .map(Column::index)
            .collect();
        let mut wanted: Vec<usize> = columns.into_iter().collect();
        wanted.sort_unstable();
        let n = found.rows.len();
        let read = if wanted.is_empty() {
            None
        } else {
            Some(self.read_rows(&found.rows, &wanted)?)
        };
        // Every logs column, the unread ones as nulls: the predicate addresses columns by index.
        let schema = logs_schema();
        let relaxed: SchemaRef = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let columns: Vec<ArrayRef> = (0..schema.fields().len())
            .map(|i| match (&read, wanted.binary_search(&i)) {
                (Some(batch), Ok(at)) => batch.column(at).clone(),
                _ => new_null_array(schema.field(i).data_type(), n),
            })
            .collect();
        let batch = RecordBatch::try_new(relaxed, columns)?;
        let mask = predicate.evaluate(&batch)?.into_array(n)?;
        let mask: &BooleanArray = mask.as_boolean();
        let mut kept = Found::default();
        for i in 0..n {
            if mask.is_valid(i) && mask.value(i) {
                kept.rows.push(found.rows[i]);
                kept.ts.push(found.ts[i]);
            }
        }
        Ok(kept)
    }

    /// The row ranges (within row group `g`) of the `ts` pages that may hold a row in `ranges`.
    fn ts_pages(&self, g: usize, ranges: &[(i64, i64)]) -> Vec<Range<usize>> {
        let metadata = self.meta.metadata();
        let group_rows = (self.group_starts[g + 1] - self.group_starts[g]) as usize;
        let ts = ts_column();
        let Some(starts) = metadata
            .offset_index()
            .and_then(|o| o.get(g))
            .and_then(|o| o.get(ts))
            .map(|o| {
                o.page_locations()
                    .iter()
                    .map(|p| p.first_row_index.max(0) as usize)
                    .collect::<Vec<_>>()
            })
        else {
            // No page index (a file from another writer): the whole row group.
            return vec![0..group_rows];
        };
        let bounds = metadata
            .column_index()
            .and_then(|c| c.get(g))
            .and_then(|c| c.get(ts))
            .and_then(|c| match c {
                ColumnIndexMetaData::INT64(index) => Some(index),
                _ => None,
            });
        let mut pages: Vec<Range<usize>> = Vec::new();
        for (p, &first) in starts.iter().enumerate() {
            let end = starts.get(p + 1).copied().unwrap_or(group_rows);
            let (min, max) = match bounds {
                Some(index) => (
                    index.min_value(p).copied().unwrap_or(i64::MIN),
                    index.max_value(p).copied().unwrap_or(i64::MAX),
                ),
                None => (i64::MIN, i64::MAX),
            };
            if first < end && ranges.iter().any(|&(lo, hi)| min <= hi && max >= lo) {
                match pages.last_mut() {
                    Some(last) if last.end == first => last.end = end,
                    _ => pages.push(first..end),
                }
            }
        }
        pages
    }

    /// Columns `columns` of row group `g`, rows `pages` (within the group), concatenated.
    fn read(&self, g: usize, pages: &[Range<usize>], columns: &[usize]) -> Result<RecordBatch> {
        let group_rows = (self.group_starts[g + 1] - self.group_starts[g]) as usize;
        let selection = RowSelection::from_consecutive_ranges(pages.iter().cloned(), group_rows);
        self.decode(vec![g], selection, columns)
    }

    /// Columns `columns` of the rows at file positions `rows` (ascending), in that order.
    fn read_rows(&self, rows: &[u64], columns: &[usize]) -> Result<RecordBatch> {
        // The row groups touched, and the rows as runs relative to those groups laid end to end.
        let mut groups: Vec<usize> = Vec::new();
        let mut runs: Vec<Range<usize>> = Vec::new();
        let mut offset = 0usize; // rows of the touched groups before the current one
        for &row in rows {
            let g = self
                .group_starts
                .partition_point(|&s| s <= row)
                .saturating_sub(1);
            if g + 1 >= self.group_starts.len() {
                return Err(corrupt(format!(
                    "segment {}: row {row} is past its end",
                    self.path
                )));
            }
            if groups.last() != Some(&g) {
                if let Some(&prev) = groups.last() {
                    offset += (self.group_starts[prev + 1] - self.group_starts[prev]) as usize;
                }
                groups.push(g);
            }
            let at = offset + (row - self.group_starts[g]) as usize;
            match runs.last_mut() {
                Some(last) if last.end == at => last.end = at + 1,
                _ => runs.push(at..at + 1),
            }
        }
        let total: usize = groups
            .iter()
            .map(|&g| (self.group_starts[g + 1] - self.group_starts[g]) as usize)
            .sum();
        let selection = RowSelection::from_consecutive_ranges(runs.into_iter(), total);
        self.decode(groups, selection, columns)
    }

    fn decode(
        &self,
        groups: Vec<usize>,
        selection: RowSelection,
        columns: &[usize],
    ) -> Result<RecordBatch> {
        match &self.path {
            Held::Local(path) => {
                let file =
                    File::open(path).map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
                self.decode_from(file, groups, selection, columns)
            }
            Held::Remote(object) => self
                .decode_from(object.clone(), groups, selection, columns)
                .map_err(|e| match object.failure() {
                    Some(why) => QueryError::new(
                        sqlstate::IO_ERROR,
                        format!("the object store holding cold segments could not be read: {why}"),
                    )
                    .into_df(),
                    None => e,
                }),
        }
    }

    fn decode_from<R: ChunkReader + 'static>(
        &self,
        input: R,
        groups: Vec<usize>,
        selection: RowSelection,
        columns: &[usize],
    ) -> Result<RecordBatch> {
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(input, self.meta.clone());
        let mask = ProjectionMask::roots(builder.parquet_schema(), columns.iter().copied());
        let reader = builder
            .with_row_groups(groups)
            .with_row_selection(selection)
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()?;
        let schema = reader.schema();
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(concat_batches(&schema, &batches)?)
    }
}

/// A segment file that is not what its catalog entry and page index promise (SQLSTATE XX001).
fn corrupt(message: String) -> DataFusionError {
    QueryError::new(sqlstate::DATA_CORRUPTED, message).into_df()
}
