//! Writes a flush's (or a merge's) rows as sorted, fsynced Parquet files, cut per tenant as
//! [`super::cut`] says.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{
    concat_batches, lexsort_to_indices, take_record_batch, SortColumn,
};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

use super::cut::{runs, segment_ranges, Cut};
use super::{segment_rel_path, SegmentError};
use crate::catalog::{IndexMeta, Location, SegmentMeta};
use crate::index::{write_index, COUNTS_SECTION, INDEXED_FIELDS, VERSION as INDEX_VERSION};
use crate::model::{logs_schema, now_micros, ts_column};

/// Parquet settings of every segment: zstd on the text columns, dictionaries on the label
/// columns, delta-encoded timestamps, page statistics and index, a bloom filter on `trace_id`,
/// sorted by `ts`, small pages so a lookup decodes little around the rows it wants.
pub fn writer_properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Page);
    for label in ["tenant", "service", "host", "level"] {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(label), true);
    }
    // Only the wide text columns are zstd-compressed. The rest are compact already (dictionary
    // ids, booleans, and timestamps as deltas: sorted `ts` takes ~2 bytes a row, `ingest_ts`
    // almost none), and every compressed column chunk a lookup touches costs a fresh zstd
    // context on top of the page it decompresses.
    for compact in [
        "tenant",
        "service",
        "host",
        "level",
        "parse_failed",
        "truncated",
        "ts",
        "ingest_ts",
    ] {
        builder =
            builder.set_column_compression(ColumnPath::from(compact), Compression::UNCOMPRESSED);
    }
    for time in ["ts", "ingest_ts"] {
        builder =
            builder.set_column_encoding(ColumnPath::from(time), Encoding::DELTA_BINARY_PACKED);
    }
    builder
        // Page min/max of free text and random ids prunes nothing, yet with small pages it would
        // be most of the page index every query keeps in the metadata cache.
        .set_column_statistics_enabled(ColumnPath::from("msg"), EnabledStatistics::Chunk)
        .set_column_statistics_enabled(ColumnPath::from("attrs"), EnabledStatistics::Chunk)
        .set_column_statistics_enabled(ColumnPath::from("trace_id"), EnabledStatistics::Chunk)
        .set_column_bloom_filter_enabled(ColumnPath::from("trace_id"), true)
        .set_column_bloom_filter_fpp(ColumnPath::from("trace_id"), 0.01)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: ts_column() as i32,
            descending: false,
            nulls_first: false,
        }]))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_data_page_row_count_limit(8 * 1024)
        // Small pages: a time lookup decompresses one page per column around each row it
        // returns, so page size is its cost (attrs runs ~280 bytes a row: at the 1 MiB default
        // that is ~3,700 rows decompressed for one). Free text compresses much worse in small
        // pages (msg at 32 KiB: +70%), so msg and attrs get larger ones. The writer checks the
        // limits once per write batch, so the batch must be small for them to hold.
        .set_data_page_size_limit(32 * 1024)
        .set_column_data_page_size_limit(ColumnPath::from("msg"), 128 * 1024)
        .set_column_data_page_size_limit(ColumnPath::from("attrs"), 64 * 1024)
        .set_write_batch_size(128)
        .build()
}

/// Writes `batches` (schema `logs`) as segments under `data_dir`, cut as a flush now cuts them,
/// ids from `first_id` upward, each with its sidecar index (postings over blocks of `index`
/// rows) when `index` is set. Every file is fsynced and renamed into place, and its directory synced, before this returns.
pub fn write_segments(
    data_dir: &Path,
    batches: &[RecordBatch],
    first_id: u64,
    index: Option<u32>,
) -> Result<Vec<SegmentMeta>, SegmentError> {
    let cut = Cut::Flush { now: now_micros() };
    let written = write_segments_keeping(data_dir, batches, first_id, index, cut)?;
    Ok(written.into_iter().map(|(meta, _)| meta).collect())
}

/// [`write_segments`], cut as `cut` says, also returning each segment's sorted rows (slices of
/// one batch), from which its rollup partials are computed.
pub fn write_segments_keeping(
    data_dir: &Path,
    batches: &[RecordBatch],
    first_id: u64,
    index: Option<u32>,
    cut: Cut,
) -> Result<Vec<(SegmentMeta, RecordBatch)>, SegmentError> {
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let all = concat_batches(&logs_schema(), batches)?;
    if all.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let tenant_col = all.column_by_name("tenant").cloned();
    let ts_col = all.column(ts_column()).clone();
    let sort = vec![
        SortColumn {
            values: tenant_col.clone().unwrap_or_else(|| ts_col.clone()),
            options: None,
        },
        SortColumn {
            values: ts_col,
            options: None,
        },
    ];
    let order = lexsort_to_indices(&sort, None)?;
    let sorted = take_record_batch(&all, &order)?;
    // The unsorted copy is dead weight from here on; free it before encoding.
    drop(sort);
    drop(all);

    let ts = sorted
        .column(ts_column())
        .as_primitive::<TimestampMicrosecondType>()
        .clone();
    let tenants = sorted.column(2).as_string::<i32>().clone();
    let mut out = Vec::new();
    let tenant_runs = runs(sorted.num_rows(), |a, b| {
        tenants.value(a) == tenants.value(b)
    });
    let parts = tenant_runs
        .into_iter()
        .flat_map(|t| segment_ranges(ts.values(), t, cut));
    for (id, part_rows) in (first_id..).zip(parts) {
        let (start, i) = (part_rows.start, part_rows.end);
        let part = sorted.slice(start, i - start);
        let tenant = tenants.value(start).to_string();
        let (min_ts, max_ts) = (ts.value(start), ts.value(i - 1));
        let rel = segment_rel_path(&tenant, min_ts);
        let path = data_dir.join(&rel);
        // Both writers below need the hour's directory: make it before either starts.
        let dir = path.parent().unwrap_or(data_dir);
        let io = |source| SegmentError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        // The index is built on a second thread while the Parquet file is encoded.
        let (bytes, index_bytes) = std::thread::scope(|scope| {
            let (path, part) = (&path, &part);
            let indexing = index.map(|block_rows| {
                scope.spawn(move || {
                    let started = std::time::Instant::now();
                    let written = write_index(path, part, block_rows);
                    tracing::debug!(
                        rows = part.num_rows(),
                        ms = started.elapsed().as_millis() as u64,
                        "index written"
                    );
                    written
                })
            });
            let started = std::time::Instant::now();
            let bytes = write_file(path, part);
            tracing::debug!(
                rows = part.num_rows(),
                ms = started.elapsed().as_millis() as u64,
                "parquet written"
            );
            let index_bytes = indexing.map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    Err(crate::index::IndexError::Build(
                        "the index builder panicked".into(),
                    ))
                })
            });
            (bytes, index_bytes)
        });
        let bytes = bytes?;
        let index_bytes = index_bytes.transpose()?;
        // One directory sync makes both renames durable.
        crate::storage::sync_dir(dir).map_err(io)?;
        let index = index_bytes.map(|written| IndexMeta {
            version: INDEX_VERSION,
            fields: INDEXED_FIELDS
                .iter()
                .chain(&[COUNTS_SECTION])
                .map(|f| f.to_string())
                .collect(),
            bytes: written.index_bytes,
            blooms: written.blooms,
        });
        out.push((
            SegmentMeta {
                id,
                tenant,
                min_ts,
                max_ts,
                rows: part.num_rows() as u64,
                bytes,
                location: Location::hot(rel),
                created_at: now_micros(),
                index,
            },
            part,
        ));
    }
    debug_assert!(ts.null_count() == 0);
    Ok(out)
}

/// Encodes `batch` as the Parquet file `path` (fsync, then rename into place; the caller makes
/// the directory and syncs it).
fn write_file(path: &Path, batch: &RecordBatch) -> Result<u64, SegmentError> {
    /// What can fail while the file is written.
    enum Failure {
        Io(std::io::Error),
        Parquet(ParquetError),
    }
    impl From<std::io::Error> for Failure {
        fn from(e: std::io::Error) -> Failure {
            Failure::Io(e)
        }
    }
    let written = crate::storage::write_durably(path, "parquet.tmp", |file| {
        let mut writer =
            ArrowWriter::try_new(file, Arc::clone(&batch.schema()), Some(writer_properties()))
                .map_err(Failure::Parquet)?;
        writer.write(batch).map_err(Failure::Parquet)?;
        writer.into_inner().map_err(Failure::Parquet)
    });
    written.map_err(|failure| match failure {
        Failure::Io(source) => SegmentError::Io {
            path: path.to_path_buf(),
            source,
        },
        Failure::Parquet(source) => SegmentError::Parquet {
            path: path.to_path_buf(),
            source,
        },
    })
}
