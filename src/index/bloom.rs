//! Segment-level bloom filters of the high-cardinality fields (`trace_id`, `attrs` values):
//! checked before a segment's index is even opened, so a lookup of one trace or one request id
//! rules most segments out from a few bytes held in memory.
//!
//! One file per segment, `seg-….bloom` beside the Parquet file, read whole and kept in memory:
//! ```text
//! "TLBLOOM\x01"  u32 fields
//! per field: u8 name_len, name, u32 bitset_len, bitset (Parquet's split-block bloom), u32 crc32c(bitset)
//! ```
//! `attrs` holds `key=value` for every scalar top-level key, including the keys too varied for
//! the index (request ids, user ids). A missing or corrupt file means "cannot rule out".

use std::collections::HashMap;
use std::path::Path;

use datafusion::parquet::bloom_filter::Sbbf;

use super::eval::IndexFilter;
use super::IndexError;

/// Bytes that open every bloom file.
const MAGIC: &[u8; 8] = b"TLBLOOM\x01";
/// False-positive rate each filter is sized for.
const FPP: f64 = 0.01;
/// The fields with a bloom.
pub const BLOOM_FIELDS: [&str; 2] = ["trace_id", "attrs"];

/// A bloom under construction, sized for at most `max_values` values and folded to [`FPP`] at
/// the end, so its size follows the distinct values actually seen.
pub struct BloomBuilder {
    filter: Option<Sbbf>,
    seen: bool,
}

impl BloomBuilder {
    pub fn new(max_values: usize) -> BloomBuilder {
        BloomBuilder {
            filter: Sbbf::new_with_ndv_fpp(max_values.max(1) as u64, FPP).ok(),
            seen: false,
        }
    }

    pub fn insert(&mut self, value: &str) {
        if let Some(f) = &mut self.filter {
            f.insert(value);
            self.seen = true;
        }
    }

    /// The filter's bytes, or `None` when nothing was inserted.
    fn finish(self) -> Option<Vec<u8>> {
        let mut f = self.filter.filter(|_| self.seen)?;
        f.fold_to_target_fpp(FPP);
        let mut bytes = Vec::new();
        f.write_bitset(&mut bytes).ok()?;
        Some(bytes)
    }
}

/// Writes the blooms of one segment (fsync, then rename into place); the field names written.
pub fn write_blooms(
    parquet: &Path,
    blooms: Vec<(&str, BloomBuilder)>,
) -> Result<Vec<String>, IndexError> {
    let path = crate::storage::layout::bloom_path(parquet);
    let io = |source| IndexError::Io {
        path: path.clone(),
        source,
    };
    let built: Vec<(&str, Vec<u8>)> = blooms
        .into_iter()
        .filter_map(|(name, b)| b.finish().map(|bytes| (name, bytes)))
        .collect();
    let mut out = Vec::from(&MAGIC[..]);
    out.extend_from_slice(&(built.len() as u32).to_le_bytes());
    for (name, bits) in &built {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(bits.len() as u32).to_le_bytes());
        out.extend_from_slice(bits);
        out.extend_from_slice(&crc32c::crc32c(bits).to_le_bytes());
    }
    crate::storage::replace_file(&path, "bloom.tmp", &out).map_err(io)?;
    Ok(built.into_iter().map(|(n, _)| n.to_string()).collect())
}

/// The blooms of one segment, by field.
#[derive(Debug, Default)]
pub struct SegmentBlooms {
    fields: HashMap<String, Sbbf>,
}

impl SegmentBlooms {
    /// Reads and checks the bloom file at `path`.
    pub fn open(path: &Path) -> Result<SegmentBlooms, IndexError> {
        let bytes = std::fs::read(path).map_err(|source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let corrupt = |reason: &str| IndexError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        if r.take(8) != Some(&MAGIC[..]) {
            return Err(corrupt("not a bloom file"));
        }
        let n = r.u32().ok_or_else(|| corrupt("truncated header"))?;
        let mut fields = HashMap::new();
        for _ in 0..n {
            let len = r.take(1).ok_or_else(|| corrupt("truncated"))?[0] as usize;
            let name = r.take(len).ok_or_else(|| corrupt("truncated"))?;
            let name = String::from_utf8_lossy(name).into_owned();
            let bits_len = r.u32().ok_or_else(|| corrupt("truncated"))? as usize;
            let bits = r.take(bits_len).ok_or_else(|| corrupt("truncated"))?;
            let crc = r.u32().ok_or_else(|| corrupt("truncated"))?;
            if crc32c::crc32c(bits) != crc {
                return Err(corrupt(&format!("checksum mismatch in {name}")));
            }
            if bits.is_empty() || bits.len() % 32 != 0 {
                return Err(corrupt(&format!("{name}: bad bitset length")));
            }
            fields.insert(name, Sbbf::new(bits));
        }
        Ok(SegmentBlooms { fields })
    }

    /// False only if no value of `terms` can be in `field` (a field without a bloom: true).
    fn may_hold(&self, field: &str, terms: &[String]) -> bool {
        match self.fields.get(field) {
            Some(f) => terms.iter().any(|t| f.check(t.as_str())),
            None => true,
        }
    }

    /// True if the blooms prove that no row of the segment satisfies every filter.
    pub fn excludes(&self, filters: &[IndexFilter]) -> bool {
        filters.iter().any(|f| self.excludes_one(f))
    }

    fn excludes_one(&self, f: &IndexFilter) -> bool {
        match f {
            IndexFilter::Terms { field, terms } => !self.may_hold(field, terms),
            IndexFilter::And(parts) => parts.iter().any(|p| self.excludes_one(p)),
            IndexFilter::Or(parts) => parts.iter().all(|p| self.excludes_one(p)),
            IndexFilter::Match(_) | IndexFilter::Substring(_) => false,
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

impl super::cache::Sidecar for SegmentBlooms {
    fn open(path: &Path) -> Result<Self, IndexError> {
        SegmentBlooms::open(path)
    }
    const WITHOUT_IT: &'static str = "not ruling that segment out by bloom";
}

/// Bloom files read so far.
pub type BloomCache = super::cache::SidecarCache<SegmentBlooms>;
