//! Builds a segment's sidecar index from the exact batch written to its Parquet file.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use roaring::RoaringBitmap;
use serde_json::value::RawValue;
use serde_json::Value;
use timberline_udfs::text::tokenize::for_each_token;

use super::postings::PostingsBuilder;

use super::bloom::{write_blooms, BloomBuilder};
use super::{IndexError, INLINE, MAGIC, VERSION};

/// The `msg` term listing the rows every substring search must check: those with a token cut to
/// the maximum length, and those with non-ASCII text (whose case folding under `ILIKE` may differ
/// from the tokens' lowercasing). No real token holds a control character.
pub const SUBSTRING_ALWAYS: &str = "\u{1}always";

/// Postings name blocks of this many consecutive rows, not single rows: a needle still selects
/// just one block to decode, and the index stays a fraction of the segment's size.
pub const BLOCK_ROWS: u32 = 1024;

/// An `attrs` key is indexed when its values repeat: at most this many distinct values, or on
/// average this many rows per value. Keys of unique values (request ids, span ids) would make
/// the index larger than the data and narrow nothing a scan of one segment would not.
const ATTR_MAX_DISTINCT: usize = 256;
const ATTR_MIN_ROWS_PER_VALUE: usize = 64;

/// The `attrs` term present when `key`'s values are indexed in this segment.
pub fn attr_key_marker(key: &str) -> String {
    format!("\u{1}key:{key}")
}

/// The fields indexed, in file order.
pub const FIELDS: [&str; 6] = ["msg", "service", "host", "level", "trace_id", "attrs"];

/// The sidecar file of a segment: its Parquet path with the extension `idx`.
pub fn index_path(parquet: &Path) -> PathBuf {
    parquet.with_extension("idx")
}

/// Terms → blocks of one field, sorted by term.
fn field_postings(
    batch: &RecordBatch,
    field: &str,
    block_rows: u32,
    mut bloom: Option<&mut BloomBuilder>,
) -> Result<Vec<(String, RoaringBitmap)>, IndexError> {
    let col = batch
        .column_by_name(field)
        .ok_or_else(|| IndexError::Build(format!("no column {field}")))?;
    let col = cast(col, &DataType::Utf8).map_err(|e| IndexError::Build(e.to_string()))?;
    let values = col.as_string::<i32>();
    let mut terms = PostingsBuilder::default();
    let mut attrs = AttrKeys::new(batch.num_rows());
    let mut buf = String::new();
    for (row, v) in values.iter().enumerate() {
        let (Some(v), Ok(row)) = (v, u32::try_from(row)) else {
            continue;
        };
        let block = row / block_rows;
        match field {
            "msg" => {
                let mut always = !v.is_ascii();
                for_each_token(v, |t, cut| {
                    terms.add(&t, block);
                    always |= cut;
                });
                if always {
                    terms.add(SUBSTRING_ALWAYS, block);
                }
            }
            "attrs" => for_each_attr(v, |k, value| {
                let dropped = attrs.dropped(k);
                if dropped && bloom.is_none() {
                    return;
                }
                buf.clear();
                buf.push_str(k);
                buf.push('=');
                buf.push_str(value);
                if let Some(b) = bloom.as_deref_mut() {
                    b.insert(&buf);
                }
                if !dropped && terms.add(&buf, block) {
                    attrs.new_value(k);
                }
            }),
            _ => {
                if terms.add(v, block) {
                    if let Some(b) = bloom.as_deref_mut() {
                        b.insert(v);
                    }
                }
            }
        }
    }
    if field != "attrs" {
        return Ok(terms.finish(|_| true));
    }
    let mut out = terms.finish(|t| t.split_once('=').is_some_and(|(k, _)| !attrs.dropped(k)));
    for k in attrs.kept() {
        out.push((attr_key_marker(&k), RoaringBitmap::new()));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Which `attrs` keys stay indexed: a key is dropped as soon as its distinct values pass the
/// limit (see [`ATTR_MAX_DISTINCT`]), and its later values are not even collected.
struct AttrKeys {
    limit: usize,
    distinct: HashMap<String, usize>,
}

impl AttrKeys {
    fn new(rows: usize) -> AttrKeys {
        AttrKeys {
            limit: ATTR_MAX_DISTINCT.max(rows / ATTR_MIN_ROWS_PER_VALUE),
            distinct: HashMap::new(),
        }
    }

    fn dropped(&self, key: &str) -> bool {
        self.distinct.get(key).is_some_and(|n| *n > self.limit)
    }

    fn new_value(&mut self, key: &str) {
        match self.distinct.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                self.distinct.insert(key.to_string(), 1);
            }
        }
    }

    fn kept(&self) -> Vec<String> {
        self.distinct
            .iter()
            .filter(|(_, n)| **n <= self.limit)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// Calls `f(key, value)` for each top-level key of a JSON object whose value is a scalar, with the
/// value as `attrs->>'key'` returns it. Not an object: nothing.
fn for_each_attr(json: &str, mut f: impl FnMut(&str, &str)) {
    // Borrowed keys and raw values: no allocation unless a string holds escapes.
    if let Ok(map) = serde_json::from_str::<HashMap<&str, &RawValue>>(json) {
        for (k, raw) in map {
            let text = raw.get();
            match text.as_bytes().first() {
                Some(b'"') if !text.contains('\\') => f(k, &text[1..text.len() - 1]),
                Some(b'"') => {
                    if let Ok(s) = serde_json::from_str::<String>(text) {
                        f(k, &s);
                    }
                }
                Some(b't' | b'f') => f(k, text),
                Some(b'-' | b'0'..=b'9')
                    if text.bytes().all(|b| b == b'-' || b.is_ascii_digit()) =>
                {
                    f(k, text)
                }
                Some(b'-' | b'0'..=b'9') => {
                    if let Ok(Value::Number(n)) = serde_json::from_str::<Value>(text) {
                        f(k, &n.to_string());
                    }
                }
                _ => {}
            }
        }
        return;
    }
    // Keys with escapes: the general path.
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(json) {
        for (k, v) in &map {
            match v {
                Value::String(s) => f(k, s),
                Value::Number(n) => f(k, &n.to_string()),
                Value::Bool(b) => f(k, if *b { "true" } else { "false" }),
                _ => {}
            }
        }
    }
}

/// The sidecar bytes for `batch` (rows numbered as in the Parquet file written from it), with
/// postings over blocks of `block_rows` rows.
pub fn build_index_with_blocks(
    batch: &RecordBatch,
    block_rows: u32,
) -> Result<Vec<u8>, IndexError> {
    build(batch, block_rows, &mut [])
}

/// The sidecar bytes, filling the blooms of `blooms` (by field name) on the way.
fn build(
    batch: &RecordBatch,
    block_rows: u32,
    blooms: &mut [(&str, BloomBuilder)],
) -> Result<Vec<u8>, IndexError> {
    let block_rows = block_rows.max(1);
    let rows = u32::try_from(batch.num_rows())
        .map_err(|_| IndexError::Build(format!("{} rows is too many", batch.num_rows())))?;
    let mut sections: Vec<(&str, Vec<u8>, Vec<u8>)> = Vec::new();
    for field in FIELDS {
        let bloom = blooms
            .iter_mut()
            .find(|(name, _)| *name == field)
            .map(|(_, b)| b);
        let terms = field_postings(batch, field, block_rows, bloom)?;
        let mut postings = Vec::new();
        let mut map = fst::MapBuilder::memory();
        for (term, bitmap) in terms {
            if bitmap.len() == 1 {
                // One block: its number in the value itself, no postings bytes.
                let block = u64::from(bitmap.min().unwrap_or(0));
                map.insert(term.as_bytes(), INLINE | block)
                    .map_err(|e| IndexError::Build(e.to_string()))?;
                continue;
            }
            let offset = postings.len() as u64;
            bitmap
                .serialize_into(&mut postings)
                .map_err(|e| IndexError::Build(e.to_string()))?;
            let len = postings.len() as u64 - offset;
            if len >= 1 << 24 || offset >= 1 << 40 {
                return Err(IndexError::Build(format!("postings of {field} too large")));
            }
            map.insert(term.as_bytes(), offset << 24 | len)
                .map_err(|e| IndexError::Build(e.to_string()))?;
        }
        let fst = map
            .into_inner()
            .map_err(|e| IndexError::Build(e.to_string()))?;
        sections.push((field, fst, postings));
    }
    let header_len: usize = 8
        + 16
        + sections
            .iter()
            .map(|(n, _, _)| 1 + n.len() + 36)
            .sum::<usize>();
    let mut out = Vec::with_capacity(
        header_len
            + sections
                .iter()
                .map(|(_, f, p)| f.len() + p.len())
                .sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&rows.to_le_bytes());
    out.extend_from_slice(&block_rows.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    let mut at = header_len as u64;
    for (name, fst, postings) in &sections {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        let fst_off = at;
        let post_off = fst_off + fst.len() as u64;
        at = post_off + postings.len() as u64;
        for v in [fst_off, fst.len() as u64, post_off, postings.len() as u64] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(fst), postings);
        out.extend_from_slice(&crc.to_le_bytes());
    }
    for (_, fst, postings) in &sections {
        out.extend_from_slice(fst);
        out.extend_from_slice(postings);
    }
    Ok(out)
}

/// What [`write_index`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Bytes of the sidecar index.
    pub index_bytes: u64,
    /// Fields given a bloom in the bloom file (see [`super::bloom`]).
    pub blooms: Vec<String>,
}

/// Writes the sidecar index and the bloom file of the Parquet file at `parquet` (each fsynced,
/// then renamed into place; the directory is made if missing, and syncing it is the caller's).
pub fn write_index(
    parquet: &Path,
    batch: &RecordBatch,
    block_rows: u32,
) -> Result<Written, IndexError> {
    let path = index_path(parquet);
    let io = |source| IndexError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Sized for the most values a segment could hold; folded down to what it held.
    let attr_values = batch.num_rows().saturating_mul(16);
    let mut blooms = [
        ("trace_id", BloomBuilder::new(batch.num_rows())),
        ("attrs", BloomBuilder::new(attr_values)),
    ];
    let bytes = build(batch, block_rows, &mut blooms)?;
    let blooms = write_blooms(parquet, blooms.into_iter().collect())?;
    let tmp = path.with_extension("idx.tmp");
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(Written {
        index_bytes: bytes.len() as u64,
        blooms,
    })
}
