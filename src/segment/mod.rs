//! Segments: immutable Parquet files, one per tenant and hour of a flush, sorted by `ts`.

mod merge;
mod writer;

use std::path::PathBuf;

pub use crate::storage::layout::{segment_rel_path, SEGMENTS_DIR};
pub use merge::{read_segment, read_segment_from};
pub use writer::{write_segments, write_segments_keeping, writer_properties};

/// Errors of writing or reading a segment.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("segment I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding segment {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: datafusion::parquet::errors::ParquetError,
    },
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error("arranging rows for a segment: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}
