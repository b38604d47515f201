//! The sidecar index of a segment: for each indexed field, an fst term dictionary mapping every
//! term to the rows (positions in the Parquet file) that hold it.
//!
//! Postings name blocks of [`BLOCK_ROWS`] rows, stored as deltas, a bitset or a roaring bitmap
//! (whichever is smallest, see [`postings`]), so the index is a fraction of the segment and
//! a needle still decodes a single block. Written at flush beside the Parquet file (`seg-….idx`),
//! read through a memory map. Fields:
//! - `msg`: its tokens (the tokenizer of `match()`, `timberline_udfs::text::tokenize`);
//! - `service`, `host`, `level`, `trace_id`: the exact values (`trace_id` as hashes, see
//!   [`hashed`]);
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
//! sections…  (fst values, version 3: block << 1 | 1 for a single block, else
//!             (postings offset << 24 | serialized roaring bitmap length) << 1)
//! ```

mod bloom;
mod cache;
mod counts;
mod eval;
mod format;
mod hashed;
mod postings;
mod read;
pub mod rollup;
mod write;

pub use bloom::{BloomCache, SegmentBlooms, BLOOM_FIELDS};
pub use counts::{CountKey, CountTable, LabelFilter, Split, COUNTS_SECTION, LABELS, MINUTE_US};
pub use eval::{candidates, IndexFilter};
use format::VERSION_2;
pub use format::{attr_key_marker, BLOCK_ROWS, FIELDS as INDEXED_FIELDS, MAGIC, VERSION};

pub use read::{IndexCache, SegmentIndex};
pub use write::{build_index_with_blocks, write_index, Written};

/// Where an fst value points: one block held in the value, or a serialized bitmap.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Posted {
    Block(u32),
    Bitmap { offset: usize, len: usize },
}

impl Posted {
    /// Version 3: `block << 1 | 1`, or `(offset << 24 | len) << 1`; small numbers stay small.
    fn encode(self) -> u64 {
        match self {
            Posted::Block(b) => u64::from(b) << 1 | 1,
            Posted::Bitmap { offset, len } => ((offset as u64) << 24 | len as u64) << 1,
        }
    }

    fn decode(value: u64, version: u32) -> Posted {
        let (inline, rest) = if version == VERSION_2 {
            (value & 1 << 63 != 0, value & !(1 << 63))
        } else {
            (value & 1 != 0, value >> 1)
        };
        if inline {
            Posted::Block(rest as u32)
        } else {
            Posted::Bitmap {
                offset: (rest >> 24) as usize,
                len: (rest & 0xff_ffff) as usize,
            }
        }
    }
}

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
