//! A tool's answer: rows as JSON objects, cut at a row count and about [`MAX_ANSWER_BYTES`] with
//! `truncated` and the cursor of the next page; and the masking that turns messages into
//! templates (numbers, ids, addresses and quoted values replaced) for `top_patterns`.

use std::sync::LazyLock;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use regex::Regex;
use serde_json::{json, Map, Value};

/// About the most bytes of JSON one answer carries.
pub const MAX_ANSWER_BYTES: usize = 100 * 1024;
/// Most characters of one text value; a longer one is cut and ends with `…`.
pub const MAX_CELL_CHARS: usize = 4096;

/// Rows cut to fit: at most `max_rows`, and about [`MAX_ANSWER_BYTES`] in all.
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<Value>,
    pub bytes: usize,
    /// More rows than were kept.
    pub truncated: bool,
}

/// The rows of `batches` as JSON objects (after skipping `skip`), within the caps. `more`: the
/// statement itself was cut (more rows exist beyond the batches).
pub fn page(batches: &[RecordBatch], skip: usize, max_rows: usize, more: bool) -> Page {
    let mut out = Page::default();
    let mut seen = 0usize;
    for batch in batches {
        let columns = columns(batch);
        for row in 0..batch.num_rows() {
            seen += 1;
            if seen <= skip {
                continue;
            }
            if out.rows.len() >= max_rows {
                out.truncated = true;
                return out;
            }
            let mut obj = Map::new();
            for (name, col) in &columns {
                obj.insert(name.clone(), col.value(row));
            }
            let value = Value::Object(obj);
            let size = value.to_string().len();
            if out.bytes + size > MAX_ANSWER_BYTES && !out.rows.is_empty() {
                out.truncated = true;
                return out;
            }
            out.bytes += size;
            out.rows.push(value);
        }
    }
    out.truncated |= more;
    out
}

/// `{"rows", "truncated", "next_offset"?}` of a page read from `offset`.
pub fn paged(page: Page, offset: usize) -> Value {
    let mut v = json!({ "rows": page.rows, "truncated": page.truncated });
    if page.truncated {
        v["next_offset"] = json!(offset.saturating_add(page.rows.len()));
    }
    v
}

/// One column, read as JSON values.
enum Column {
    Int(datafusion::arrow::array::ArrayRef),
    Float(datafusion::arrow::array::ArrayRef),
    Bool(datafusion::arrow::array::ArrayRef),
    Text(datafusion::arrow::array::ArrayRef),
}

impl Column {
    fn value(&self, row: usize) -> Value {
        let a = match self {
            Column::Int(a) | Column::Float(a) | Column::Bool(a) | Column::Text(a) => a,
        };
        if a.is_null(row) {
            return Value::Null;
        }
        match self {
            Column::Int(a) => json!(a.as_primitive::<Int64Type>().value(row)),
            Column::Float(a) => json!(a.as_primitive::<Float64Type>().value(row)),
            Column::Bool(a) => json!(a.as_boolean().value(row)),
            Column::Text(a) => {
                let options = FormatOptions::default();
                match ArrayFormatter::try_new(a.as_ref(), &options) {
                    Ok(f) => {
                        let text = f.value(row).to_string();
                        match text.char_indices().nth(MAX_CELL_CHARS) {
                            Some((cut, _)) => json!(format!("{}…", &text[..cut])),
                            None => json!(text),
                        }
                    }
                    Err(_) => Value::Null,
                }
            }
        }
    }
}

fn columns(batch: &RecordBatch) -> Vec<(String, Column)> {
    let schema = batch.schema();
    schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| {
            let col = match f.data_type() {
                t if t.is_integer() => cast(a, &DataType::Int64)
                    .map(Column::Int)
                    .unwrap_or_else(|_| Column::Text(a.clone())),
                t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
                    cast(a, &DataType::Float64)
                        .map(Column::Float)
                        .unwrap_or_else(|_| Column::Text(a.clone()))
                }
                DataType::Boolean => Column::Bool(a.clone()),
                _ => Column::Text(a.clone()),
            };
            (f.name().clone(), col)
        })
        .collect()
}

static QUOTED: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r#""[^"]*""#).ok());
static TOKEN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"[0-9A-Za-z_.:/\-]+").ok());
static NUMBER: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\d+(?:\.\d+)*").ok());

/// `msg` with its variable parts masked — `user 42 from 10.0.0.7:8080 took 3.5 ms` becomes
/// `user <num> from <ip> took <num> ms`; UUIDs, long hex ids and double-quoted values likewise.
/// At most 300 characters are read.
pub fn template(msg: &str) -> String {
    let (Some(quoted), Some(token), Some(number)) = (&*QUOTED, &*TOKEN, &*NUMBER) else {
        return msg.to_string();
    };
    let cut: String = msg.chars().take(300).collect();
    let unquoted = quoted.replace_all(&cut, "\"<str>\"");
    token
        .replace_all(&unquoted, |c: &regex::Captures| {
            let t = &c[0];
            if is_uuid(t) {
                "<uuid>".to_string()
            } else if is_ip(t) {
                "<ip>".to_string()
            } else if t.len() >= 8
                && t.chars().all(|c| c.is_ascii_hexdigit())
                && t.chars().any(|c| c.is_ascii_digit())
                && t.chars().any(|c| c.is_ascii_alphabetic())
            {
                "<hex>".to_string()
            } else {
                number.replace_all(t, "<num>").into_owned()
            }
        })
        .into_owned()
}

fn is_uuid(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_ip(t: &str) -> bool {
    let host = match t.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => t,
    };
    host.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn templates_mask_what_varies() {
        assert_eq!(
            template("user 42 from 10.0.0.7:8080 took 3.5 ms"),
            "user <num> from <ip> took <num> ms"
        );
        assert_eq!(
            template("order 7f3e9c1a-0b2d-4e5f-8a9b-0c1d2e3f4a5b failed: \"card declined\""),
            "order <uuid> failed: \"<str>\""
        );
        assert_eq!(
            template("blk_-1608999687919862906 served"),
            "blk_-<num> served"
        );
        assert_eq!(
            template("GET /api/v1/users/42"),
            "GET /api/v<num>/users/<num>"
        );
        assert_eq!(template("req deadbeef01 done"), "req <hex> done");
    }

    #[test]
    fn pages_stop_at_rows_or_bytes_and_say_where_to_go_on() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let n = 5000;
        let big = "x".repeat(100);
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from_iter_values(0..n)),
                Arc::new(StringArray::from(vec![Some(big.as_str()); n as usize])),
            ],
        )
        .unwrap();
        let p = page(std::slice::from_ref(&batch), 0, 10, false);
        assert_eq!((p.rows.len(), p.truncated), (10, true));
        assert_eq!(p.rows[3], json!({"n": 3, "s": big}));
        let p = page(std::slice::from_ref(&batch), 2, 100_000, false);
        assert!(p.truncated && p.bytes <= MAX_ANSWER_BYTES);
        assert_eq!(p.rows[0]["n"], 2);
        let v = paged(p, 2);
        assert!(v["next_offset"].as_u64().unwrap() > 2);
        let all = page(std::slice::from_ref(&batch.slice(0, 3)), 0, 10, false);
        assert!(!all.truncated);
        assert!(paged(all, 0).get("next_offset").is_none());
    }
}
