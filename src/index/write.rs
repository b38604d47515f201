//! Builds a segment's sidecar index from the exact batch written to its Parquet file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use roaring::RoaringBitmap;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use timberline_udfs::text::tokenize::for_each_token;

use super::counts::{build_counts, COUNTS_SECTION};
use super::hashed::{encode_hashed, HASHED_FIELDS, HASHED_MARKER};
use super::postings::{encode_blocks, Postings, PostingsBuilder};

use super::bloom::{write_blooms, BloomBuilder};
use super::format::{attr_key_marker, FIELDS, MAGIC, SUBSTRING_ALWAYS, VERSION};
use super::{IndexError, Posted};

/// An `attrs` key is indexed when its values repeat: at most this many distinct values, or on
/// average this many rows per value. Keys of unique values (request ids, span ids) would make
/// the index larger than the data and narrow nothing a scan of one segment would not.
const ATTR_MAX_DISTINCT: usize = 256;
const ATTR_MIN_ROWS_PER_VALUE: usize = 64;

/// Terms → blocks of one field's `values`, sorted by term (borrowing from `values` if they can).
fn field_postings<'a>(
    values: &'a StringArray,
    field: &str,
    block_rows: u32,
    mut bloom: Option<&mut BloomBuilder>,
) -> Vec<(Cow<'a, str>, Postings)> {
    // Room for the distinct terms expected, so the table is not regrown and copied on the way.
    let expected = match field {
        "msg" => values.len(),
        "trace_id" => values.len() / 2,
        _ => 0,
    };
    let mut terms = PostingsBuilder::with_capacity(expected);
    let mut attrs = AttrKeys::new(values.len());
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
                    terms.add(t, block);
                    always |= cut;
                });
                if always {
                    terms.add(Cow::Borrowed(SUBSTRING_ALWAYS), block);
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
                // A kept key's value goes into the bloom once, when first seen.
                let new = !dropped && terms.add_copy(&buf, block);
                if new {
                    attrs.new_value(k);
                }
                if dropped || new {
                    if let Some(b) = bloom.as_deref_mut() {
                        b.insert(&buf);
                    }
                }
            }),
            _ => {
                if terms.add(Cow::Borrowed(v), block) {
                    if let Some(b) = bloom.as_deref_mut() {
                        b.insert(v);
                    }
                }
            }
        }
    }
    if field != "attrs" {
        return terms.finish(|_| true);
    }
    let mut out = terms.finish(|t| t.split_once('=').is_some_and(|(k, _)| !attrs.dropped(k)));
    for k in attrs.kept() {
        out.push((
            Cow::Owned(attr_key_marker(&k)),
            Postings::Many(RoaringBitmap::new()),
        ));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Which `attrs` keys stay indexed: a key is dropped as soon as its distinct values pass the
/// limit (see [`ATTR_MAX_DISTINCT`]), and its later values are not even collected.
struct AttrKeys {
    limit: usize,
    distinct: HashMap<String, usize, ahash::RandomState>,
}

impl AttrKeys {
    fn new(rows: usize) -> AttrKeys {
        AttrKeys {
            limit: ATTR_MAX_DISTINCT.max(rows / ATTR_MIN_ROWS_PER_VALUE),
            distinct: HashMap::default(),
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
/// value as `attrs->>'key'` returns it. Not an object: nothing. Streams over the text: nothing
/// is allocated unless a key or string value holds escapes.
fn for_each_attr(json: &str, mut f: impl FnMut(&str, &str)) {
    let mut scalar = |k: &str, raw: &RawValue| {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') if !text.contains('\\') => f(k, &text[1..text.len() - 1]),
            Some(b'"') => {
                if let Ok(s) = serde_json::from_str::<String>(text) {
                    f(k, &s);
                }
            }
            Some(b't' | b'f') => f(k, text),
            Some(b'-' | b'0'..=b'9') if text.bytes().all(|b| b == b'-' || b.is_ascii_digit()) => {
                f(k, text)
            }
            Some(b'-' | b'0'..=b'9') => {
                if let Ok(Value::Number(n)) = serde_json::from_str::<Value>(text) {
                    f(k, &n.to_string());
                }
            }
            _ => {}
        }
    };
    let mut de = serde_json::Deserializer::from_str(json);
    // A malformed object stops the walk; the keys before it stay (a superset is harmless).
    let _ = de.deserialize_map(AttrWalk(&mut scalar));
}

/// A key of `attrs`, borrowed from the text unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Visits the entries of one JSON object, handing each key and raw value to the callback.
struct AttrWalk<'f, F>(&'f mut F);

impl<'de, F: FnMut(&str, &RawValue)> Visitor<'de> for AttrWalk<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let v: &'de RawValue = map.next_value()?;
            (self.0)(&k, v);
        }
        Ok(())
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
        let col = batch
            .column_by_name(field)
            .ok_or_else(|| IndexError::Build(format!("no column {field}")))?;
        let col = cast(col, &DataType::Utf8).map_err(|e| IndexError::Build(e.to_string()))?;
        let terms = field_postings(col.as_string::<i32>(), field, block_rows, bloom);
        if HASHED_FIELDS.contains(&field) {
            if let Some(table) = encode_hashed(&terms) {
                let mut marker = fst::MapBuilder::memory();
                marker
                    .insert(HASHED_MARKER, 0)
                    .map_err(|e| IndexError::Build(e.to_string()))?;
                let fst = marker
                    .into_inner()
                    .map_err(|e| IndexError::Build(e.to_string()))?;
                sections.push((field, fst, table));
                continue;
            }
        }
        let mut postings = Vec::new();
        let mut map = fst::MapBuilder::memory();
        for (term, postings_of_term) in terms {
            let bitmap = match postings_of_term {
                // One block: its number in the value itself, no postings bytes.
                Postings::One(block) => {
                    map.insert(term.as_bytes(), Posted::Block(block).encode())
                        .map_err(|e| IndexError::Build(e.to_string()))?;
                    continue;
                }
                Postings::Many(bitmap) => bitmap,
            };
            let offset = postings.len() as u64;
            encode_blocks(&bitmap, &mut postings).map_err(|e| IndexError::Build(e.to_string()))?;
            let len = postings.len() as u64 - offset;
            if len >= 1 << 24 || offset >= 1 << 39 {
                return Err(IndexError::Build(format!("postings of {field} too large")));
            }
            let posted = Posted::Bitmap {
                offset: offset as usize,
                len: len as usize,
            };
            map.insert(term.as_bytes(), posted.encode())
                .map_err(|e| IndexError::Build(e.to_string()))?;
        }
        let fst = map
            .into_inner()
            .map_err(|e| IndexError::Build(e.to_string()))?;
        sections.push((field, fst, postings));
    }
    // The count table rides in a section of its own, beside an empty term dictionary.
    let empty = fst::MapBuilder::memory()
        .into_inner()
        .map_err(|e| IndexError::Build(e.to_string()))?;
    sections.push((COUNTS_SECTION, empty, build_counts(batch)?));
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
    let path = crate::storage::layout::index_path(parquet);
    let io = |source| IndexError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Sized for up to 8 distinct attrs values a row (more raise the false-positive rate, they
    // break nothing), then folded down to what the segment held. Oversizing costs cache misses.
    let attr_values = batch.num_rows().saturating_mul(8);
    let mut blooms = [
        ("trace_id", BloomBuilder::new(batch.num_rows())),
        ("attrs", BloomBuilder::new(attr_values)),
    ];
    let bytes = build(batch, block_rows, &mut blooms)?;
    let blooms = write_blooms(parquet, blooms.into_iter().collect())?;
    crate::storage::replace_file(&path, "idx.tmp", &bytes).map_err(io)?;
    Ok(Written {
        index_bytes: bytes.len() as u64,
        blooms,
    })
}
