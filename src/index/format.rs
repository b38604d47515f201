//! The sidecar index's on-disk vocabulary, shared by its writer and readers: the magic bytes and
//! layout versions, the fields in file order, the block size of postings, and the reserved
//! terms (control characters no real token holds).

/// Bytes that open every sidecar file.
pub const MAGIC: &[u8; 8] = b"TLIDX\0\0\x01";
/// The layout version this build writes; it also reads [`VERSION_2`].
pub const VERSION: u32 = 3;
/// Version 2 marked a single block held in the fst value with bit 63: fst stores every output
/// in as many bytes as it needs, so that cost 8 bytes a term, most of them ids seen once.
pub const VERSION_2: u32 = 2;

/// The fields indexed, in file order.
pub const FIELDS: [&str; 6] = ["msg", "service", "host", "level", "trace_id", "attrs"];

/// Postings name blocks of this many consecutive rows, not single rows: a needle still selects
/// just one block to decode, and the index stays a fraction of the segment's size.
pub const BLOCK_ROWS: u32 = 1024;

/// The `msg` term listing the rows every substring search must check: those with a token cut to
/// the maximum length, and those with non-ASCII text (whose case folding under `ILIKE` may differ
/// from the tokens' lowercasing). No real token holds a control character.
pub const SUBSTRING_ALWAYS: &str = "\u{1}always";

/// The `attrs` term present when `key`'s values are indexed in this segment.
pub fn attr_key_marker(key: &str) -> String {
    format!("\u{1}key:{key}")
}
