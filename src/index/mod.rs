//! The sidecar index of a segment: for each indexed field, an fst term dictionary mapping every
//! term to a roaring bitmap of the rows (positions in the Parquet file) that hold it.
//!
//! Postings name blocks of [`BLOCK_ROWS`] rows, so the index is a fraction of the segment and
//! a needle still decodes a single block. Written at flush beside the Parquet file (`seg-….idx`),
//! read through a memory map. Fields:
//! - `msg`: its tokens (the tokenizer of `match()`, `timberline_udfs::text::tokenize`);
//! - `service`, `host`, `level`, `trace_id`: the exact values;
//! - `attrs`: `key=value` for each top-level key with a scalar value (`attrs->>'key'`), for the
//!   keys whose values repeat (a marker term lists them; others cannot be narrowed).
//!
//! - `counts`: not a field but a table of row counts per minute and (service, host, level)
//!   ([`counts`]), which answers `count(*)` over label and time filters without the Parquet file.
//!
//! Beside it, [`bloom`] keeps segment-level blooms of `trace_id` and `attrs` values (`seg-….bloom`),
//! checked before the index is opened.
//!
//! The index only ever narrows the rows a scan decodes; the filters are always re-applied to
//! them, so an index can never change an answer. A missing or corrupt sidecar means "scan".
//!
//! File layout (all integers little-endian):
//! ```text
//! "TLIDX\0\0\x01"  u32 version  u32 rows  u32 block_rows  u32 fields
//! per field: u8 name_len, name, u64 fst_offset, u64 fst_len, u64 postings_offset,
//!            u64 postings_len, u32 crc32c(fst ‖ postings)
//! sections…  (fst values: 1 << 63 | block for a single block, else
//!             postings offset << 24 | serialized roaring bitmap length)
//! ```

mod bloom;
mod cache;
mod counts;
mod eval;
mod postings;
mod read;
mod write;

pub use bloom::{bloom_path, BloomCache, SegmentBlooms, BLOOM_FIELDS};
pub use counts::{CountKey, CountTable, LabelFilter, Split, COUNTS_SECTION, LABELS, MINUTE_US};
pub use eval::{candidates, IndexFilter};
pub use read::{IndexCache, SegmentIndex};
pub use write::{
    attr_key_marker, build_index_with_blocks, index_path, write_index, Written, BLOCK_ROWS,
    FIELDS as INDEXED_FIELDS,
};

/// Bytes that open every sidecar file.
pub const MAGIC: &[u8; 8] = b"TLIDX\0\0\x01";
/// The layout version this build writes and reads.
pub const VERSION: u32 = 2;
/// An fst value with this bit set holds its single block number inline.
const INLINE: u64 = 1 << 63;

/// Errors of the index layer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index I/O on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index {path} is corrupt: {reason}")]
    Corrupt {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("building the index: {0}")]
    Build(String),
}
