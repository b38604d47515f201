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
use serde_json::Value;
use timberline_udfs::text::tokenize::tokens_and_cut;

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

type Postings = HashMap<String, RoaringBitmap>;

/// Terms → blocks of one field.
fn field_postings(
    batch: &RecordBatch,
    field: &str,
    block_rows: u32,
) -> Result<Postings, IndexError> {
    let col = batch
        .column_by_name(field)
        .ok_or_else(|| IndexError::Build(format!("no column {field}")))?;
    let col = cast(col, &DataType::Utf8).map_err(|e| IndexError::Build(e.to_string()))?;
    let values = col.as_string::<i32>();
    let mut out: Postings = HashMap::new();
    let mut add = |term: String, row: u32| {
        out.entry(term).or_default().insert(row / block_rows);
    };
    for (row, v) in values.iter().enumerate() {
        let (Some(v), Ok(row)) = (v, u32::try_from(row)) else {
            continue;
        };
        match field {
            "msg" => {
                let (toks, cut) = tokens_and_cut(v);
                toks.into_iter().for_each(|t| add(t, row));
                if cut || !v.is_ascii() {
                    add(SUBSTRING_ALWAYS.to_string(), row);
                }
            }
            "attrs" => attr_terms(v).into_iter().for_each(|t| add(t, row)),
            _ => add(v.to_string(), row),
        }
    }
    if field == "attrs" {
        keep_repeating_attrs(&mut out, batch.num_rows());
    }
    Ok(out)
}

/// Drops the terms of `attrs` keys whose values do not repeat, and marks the keys kept.
fn keep_repeating_attrs(terms: &mut Postings, rows: usize) {
    let mut distinct: HashMap<String, usize> = HashMap::new();
    for term in terms.keys() {
        if let Some((k, _)) = term.split_once('=') {
            *distinct.entry(k.to_string()).or_default() += 1;
        }
    }
    let kept: std::collections::HashSet<String> = distinct
        .into_iter()
        .filter(|(_, n)| *n <= ATTR_MAX_DISTINCT || *n * ATTR_MIN_ROWS_PER_VALUE <= rows)
        .map(|(k, _)| k)
        .collect();
    terms.retain(|t, _| t.split_once('=').is_some_and(|(k, _)| kept.contains(k)));
    for k in kept {
        terms.insert(attr_key_marker(&k), RoaringBitmap::new());
    }
}

/// `key=value` for each top-level key of a JSON object whose value is a scalar, with the value
/// written as `attrs->>'key'` returns it.
pub fn attr_terms(json: &str) -> Vec<String> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some(format!("{k}={text}"))
        })
        .collect()
}

/// The sidecar bytes for `batch` (rows numbered as in the Parquet file written from it).
pub fn build_index(batch: &RecordBatch) -> Result<Vec<u8>, IndexError> {
    build_index_with_blocks(batch, BLOCK_ROWS)
}

/// [`build_index`] with another block size (tests use small blocks on small data).
pub fn build_index_with_blocks(
    batch: &RecordBatch,
    block_rows: u32,
) -> Result<Vec<u8>, IndexError> {
    let block_rows = block_rows.max(1);
    let rows = u32::try_from(batch.num_rows())
        .map_err(|_| IndexError::Build(format!("{} rows is too many", batch.num_rows())))?;
    let mut sections: Vec<(&str, Vec<u8>, Vec<u8>)> = Vec::new();
    for field in FIELDS {
        let mut terms: Vec<(String, RoaringBitmap)> = field_postings(batch, field, block_rows)?
            .into_iter()
            .collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
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

/// Writes the sidecar of the Parquet file at `parquet` (fsync, then rename into place).
pub fn write_index(
    parquet: &Path,
    batch: &RecordBatch,
    block_rows: u32,
) -> Result<u64, IndexError> {
    let path = index_path(parquet);
    let io = |source| IndexError::Io {
        path: path.clone(),
        source,
    };
    let bytes = build_index_with_blocks(batch, block_rows)?;
    let tmp = path.with_extension("idx.tmp");
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(bytes.len() as u64)
}
