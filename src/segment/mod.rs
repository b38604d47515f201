//! Segments: immutable Parquet files of one tenant's rows, sorted by `ts`: one per hour of a
//! flush, or per run of sparse hours when a flush names many ([`cut`]).

mod cut;
mod merge;
mod writer;

use std::path::PathBuf;

pub use crate::storage::layout::{segment_rel_path, SEGMENTS_DIR};
pub use cut::{age_band, segment_ranges, Cut, HOURS_KEPT_APART, MAX_SPAN_US, SPARSE_HOUR_ROWS};
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
