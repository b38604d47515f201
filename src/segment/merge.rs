//! Compaction's and the rollup backfill's input: a segment's rows read back whole.

use std::fs::File;
use std::path::Path;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::file::reader::ChunkReader;

use super::SegmentError;
use crate::model::logs_schema;

/// Every row of the segment file at `path`, in file order.
pub fn read_segment(path: &Path) -> Result<Vec<RecordBatch>, SegmentError> {
    let file = File::open(path).map_err(|source| SegmentError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_segment_from(file, path)
}

/// Every row of a segment's Parquet bytes (a local file, or an object fetched whole); `path`
/// names it in errors.
pub fn read_segment_from<R: ChunkReader + 'static>(
    reader: R,
    path: &Path,
) -> Result<Vec<RecordBatch>, SegmentError> {
    let parquet = |source| SegmentError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(reader)
        .map_err(parquet)?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(parquet)?;
    let schema = logs_schema();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        // The file's schema may carry Parquet metadata; the rows are the `logs` columns.
        out.push(RecordBatch::try_new(
            schema.clone(),
            batch.columns().to_vec(),
        )?);
    }
    Ok(out)
}
