//! Opens a sidecar index (memory-mapped, checksums verified once) and looks terms up in it.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use fst::{Automaton, IntoStreamer, Streamer};
use memmap2::Mmap;
use roaring::RoaringBitmap;

use super::counts::{CountTable, COUNTS_SECTION};
use super::format::{MAGIC, VERSION, VERSION_2};
use super::hashed::{hashed_blocks, HASHED_MARKER};
use super::postings::decode_blocks;
use super::{IndexError, Posted};

/// One field's sections, as byte ranges of the file.
#[derive(Debug, Clone)]
struct Field {
    fst: std::ops::Range<usize>,
    postings: std::ops::Range<usize>,
}

/// A segment's index, ready for lookups.
#[derive(Debug)]
pub struct SegmentIndex {
    map: Mmap,
    rows: u32,
    version: u32,
    block_rows: u32,
    fields: HashMap<String, Field>,
    /// The count table, decoded on first use (`None`: absent or unreadable).
    counts: OnceLock<Option<Arc<CountTable>>>,
}

fn read_u32(b: &[u8], at: &mut usize) -> Option<u32> {
    let v = u32::from_le_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
    *at += 4;
    Some(v)
}

fn read_u64(b: &[u8], at: &mut usize) -> Option<u64> {
    let v = u64::from_le_bytes(b.get(*at..*at + 8)?.try_into().ok()?);
    *at += 8;
    Some(v)
}

impl SegmentIndex {
    /// Opens and verifies the index at `path`.
    pub fn open(path: &Path) -> Result<SegmentIndex, IndexError> {
        let file = File::open(path).map_err(|source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: segment and index files are written once under a temporary name, fsynced and
        // renamed into place, and never modified afterwards; nothing truncates a mapped file.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let corrupt = |reason: &str| IndexError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let b = &map[..];
        if b.get(..8) != Some(MAGIC.as_slice()) {
            return Err(corrupt("bad magic"));
        }
        let mut at = 8;
        let version = read_u32(b, &mut at).ok_or_else(|| corrupt("short header"))?;
        if version != VERSION && version != VERSION_2 {
            return Err(corrupt(&format!(
                "version {version}, this build reads {VERSION}"
            )));
        }
        let rows = read_u32(b, &mut at).ok_or_else(|| corrupt("short header"))?;
        let block_rows = read_u32(b, &mut at)
            .filter(|n| *n > 0)
            .ok_or_else(|| corrupt("bad block size"))?;
        let count = read_u32(b, &mut at).ok_or_else(|| corrupt("short header"))?;
        let mut fields = HashMap::new();
        for _ in 0..count {
            let len = *b.get(at).ok_or_else(|| corrupt("short header"))? as usize;
            let name = b
                .get(at + 1..at + 1 + len)
                .ok_or_else(|| corrupt("short header"))?;
            let name = String::from_utf8_lossy(name).to_string();
            at += 1 + len;
            let mut next = || read_u64(b, &mut at).ok_or_else(|| corrupt("short header"));
            let (fo, fl, po, pl) = (next()?, next()?, next()?, next()?);
            let crc = read_u32(b, &mut at).ok_or_else(|| corrupt("short header"))?;
            let range = |o: u64, l: u64| -> Result<std::ops::Range<usize>, IndexError> {
                let (o, l) = (usize::try_from(o), usize::try_from(l));
                match (o, l) {
                    (Ok(o), Ok(l)) if o.checked_add(l).is_some_and(|e| e <= b.len()) => {
                        Ok(o..o + l)
                    }
                    _ => Err(corrupt(&format!("section of {name} outside the file"))),
                }
            };
            let field = Field {
                fst: range(fo, fl)?,
                postings: range(po, pl)?,
            };
            let sum = crc32c::crc32c_append(
                crc32c::crc32c(&b[field.fst.clone()]),
                &b[field.postings.clone()],
            );
            if sum != crc {
                return Err(corrupt(&format!("checksum mismatch in {name}")));
            }
            fst::Map::new(&b[field.fst.clone()]).map_err(|e| corrupt(&format!("{name}: {e}")))?;
            fields.insert(name, field);
        }
        Ok(SegmentIndex {
            map,
            rows,
            version,
            block_rows,
            fields,
            counts: OnceLock::new(),
        })
    }

    /// Rows in the segment.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Rows per block of the postings.
    pub fn block_rows(&self) -> u32 {
        self.block_rows
    }

    /// Blocks in the segment.
    pub fn blocks(&self) -> u32 {
        self.rows.div_ceil(self.block_rows)
    }

    /// The segment's count table, if its index has one that decodes.
    pub fn counts(&self) -> Option<Arc<CountTable>> {
        self.counts
            .get_or_init(|| {
                let section = self.fields.get(COUNTS_SECTION)?;
                match CountTable::decode(&self.map[section.postings.clone()]) {
                    Ok(table) => Some(Arc::new(table)),
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable count table; counting by scan");
                        None
                    }
                }
            })
            .clone()
    }

    /// True if `field` is indexed here.
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    fn dict(&self, field: &str) -> Option<(fst::Map<&[u8]>, &[u8])> {
        let f = self.fields.get(field)?;
        let map = fst::Map::new(&self.map[f.fst.clone()]).ok()?;
        Some((map, &self.map[f.postings.clone()]))
    }

    fn bitmap(&self, postings: &[u8], value: u64) -> RoaringBitmap {
        match Posted::decode(value, self.version) {
            Posted::Block(block) => {
                let mut one = RoaringBitmap::new();
                one.insert(block);
                one
            }
            Posted::Bitmap { offset, len } => offset
                .checked_add(len)
                .and_then(|end| postings.get(offset..end))
                .and_then(|b| match self.version {
                    VERSION_2 => RoaringBitmap::deserialize_from(b).ok(),
                    _ => decode_blocks(b),
                })
                .unwrap_or_default(),
        }
    }

    /// True if `term` is in `field`'s dictionary (whatever its postings).
    pub fn contains(&self, field: &str, term: &str) -> bool {
        match self.dict(field) {
            Some((map, postings)) if map.contains_key(HASHED_MARKER) => {
                !hashed_blocks(postings, term).is_empty()
            }
            Some((map, _)) => map.contains_key(term),
            None => false,
        }
    }

    /// Blocks holding exactly `term`.
    pub fn term(&self, field: &str, term: &str) -> RoaringBitmap {
        let Some((map, postings)) = self.dict(field) else {
            return RoaringBitmap::new();
        };
        if map.contains_key(HASHED_MARKER) {
            return hashed_blocks(postings, term);
        }
        map.get(term)
            .map(|v| self.bitmap(postings, v))
            .unwrap_or_default()
    }

    /// Blocks holding a term that starts with `prefix` and for which `keep` holds.
    pub fn scan_from(
        &self,
        field: &str,
        prefix: &str,
        keep: impl Fn(&str) -> bool,
    ) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let Some((map, postings)) = self.dict(field) else {
            return out;
        };
        // Hashed values cannot be listed by prefix: every block may hold one.
        if map.contains_key(HASHED_MARKER) {
            return (0..self.blocks()).collect();
        }
        let automaton = fst::automaton::Str::new(prefix).starts_with();
        let mut stream = map.search(automaton).into_stream();
        while let Some((key, value)) = stream.next() {
            if keep(&String::from_utf8_lossy(key)) {
                out |= self.bitmap(postings, value);
            }
        }
        out
    }
}

impl super::cache::Sidecar for SegmentIndex {
    fn open(path: &Path) -> Result<Self, IndexError> {
        SegmentIndex::open(path)
    }
    const WITHOUT_IT: &'static str = "scanning that segment without it";
}

/// Opened indexes by file.
pub type IndexCache = super::cache::SidecarCache<SegmentIndex>;

#[cfg(test)]
mod tests {
    /// A version 2 sidecar (bit 63 marking an inline block, bare roaring postings), written here
    /// byte by byte as the previous build wrote it, still answers term lookups.
    #[test]
    fn version_2_sidecars_are_still_read() {
        use crate::index::SegmentIndex;
        use roaring::RoaringBitmap;
        let many: RoaringBitmap = [1u32, 4, 9].into_iter().collect();
        let mut postings = Vec::new();
        many.serialize_into(&mut postings).expect("roaring");
        let mut map = fst::MapBuilder::memory();
        map.insert("card", (postings.len() as u64) | 0)
            .expect("fst");
        map.insert("declined", 1 << 63 | 7).expect("fst");
        let fst = map.into_inner().expect("fst");
        let name = b"msg";
        let header_len = 8 + 16 + 1 + name.len() + 36;
        let mut file = Vec::new();
        file.extend_from_slice(b"TLIDX\0\0\x01");
        for v in [2u32, 10 * 1024, 1024, 1] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        file.push(name.len() as u8);
        file.extend_from_slice(name);
        let (fst_at, post_at) = (header_len as u64, (header_len + fst.len()) as u64);
        for v in [fst_at, fst.len() as u64, post_at, postings.len() as u64] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&fst), &postings);
        file.extend_from_slice(&crc.to_le_bytes());
        file.extend_from_slice(&fst);
        file.extend_from_slice(&postings);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seg-1.idx");
        std::fs::write(&path, file).expect("write");
        let index = SegmentIndex::open(&path).expect("a version 2 sidecar opens");
        assert_eq!(index.term("msg", "card"), many);
        assert_eq!(index.term("msg", "declined"), [7u32].into_iter().collect());
        assert!(index.term("msg", "missing").is_empty());
        assert!(index.counts().is_none(), "version 2 had no count table");
    }
}
