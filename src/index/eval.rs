//! Which rows of a segment can satisfy a scan's filters, according to its index.
//!
//! [`IndexFilter`] is the part of a `WHERE` the index understands, taken once per scan:
//! `match(msg, '…')`, `msg [I]LIKE '%words%'`, `service|host|level|trace_id = 'v'` or `IN (…)`,
//! `attrs->>'k' = 'v'`, and AND/OR of those. [`candidates`] turns it into a superset of the matching rows of one segment
//! (phrases, for one, give the rows holding all their tokens; the filter re-check keeps only the
//! real matches). `NOT` narrows only where the inner answer is exact.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use roaring::RoaringBitmap;
use timberline_udfs::text::query::glob;
use timberline_udfs::text::{Query, MATCH};

use super::format::{attr_key_marker, SUBSTRING_ALWAYS};
use super::SegmentIndex;

/// The label columns indexed by exact value.
const VALUE_FIELDS: [&str; 4] = ["service", "host", "level", "trace_id"];

/// A filter the index can answer.
#[derive(Debug, Clone)]
pub enum IndexFilter {
    /// `match(msg, query)`.
    Match(Query),
    /// `msg [I]LIKE '%w1 w2 … wn%'` (n ≥ 2 ASCII alphanumeric words, single spaces): tokens
    /// w2 … w(n-1), then one starting with wn.
    Substring(Vec<String>),
    /// Any of these exact terms in `field`.
    Terms {
        field: &'static str,
        terms: Vec<String>,
    },
    And(Vec<IndexFilter>),
    Or(Vec<IndexFilter>),
}

fn text_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s.clone()),
        Expr::Cast(c) => text_literal(&c.expr),
        _ => None,
    }
}

/// `service`, `attrs->>'k'`, …: the field and, for attrs, the key.
fn indexed_operand(e: &Expr) -> Option<(&'static str, Option<String>)> {
    match e {
        Expr::Column(c) => VALUE_FIELDS
            .iter()
            .find(|f| **f == c.name)
            .map(|f| (*f, None)),
        Expr::ScalarFunction(f) if f.name() == "json_as_text" => match f.args.as_slice() {
            [Expr::Column(c), key] if c.name == "attrs" => {
                Some(("attrs", Some(text_literal(key)?)))
            }
            _ => None,
        },
        Expr::Cast(c) => indexed_operand(&c.expr),
        _ => None,
    }
}

fn terms(field: &'static str, key: Option<String>, values: Vec<String>) -> IndexFilter {
    let terms = match key {
        Some(k) => values.into_iter().map(|v| format!("{k}={v}")).collect(),
        None => values,
    };
    IndexFilter::Terms { field, terms }
}

impl IndexFilter {
    /// The index's reading of `expr`, or `None` if the index cannot narrow it.
    pub fn from_expr(expr: &Expr) -> Option<IndexFilter> {
        match expr {
            Expr::ScalarFunction(f) if f.name() == MATCH => match f.args.as_slice() {
                [Expr::Column(c), q] if c.name == "msg" => {
                    Query::parse(&text_literal(q)?).ok().map(IndexFilter::Match)
                }
                _ => None,
            },
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                let (operand, value) = match (indexed_operand(left), indexed_operand(right)) {
                    (Some(o), None) => (o, text_literal(right)?),
                    (None, Some(o)) => (o, text_literal(left)?),
                    _ => return None,
                };
                Some(terms(operand.0, operand.1, vec![value]))
            }
            Expr::Like(like) if !like.negated && like.escape_char.is_none() => {
                match like.expr.as_ref() {
                    Expr::Column(c) if c.name == "msg" => {
                        substring_words(&text_literal(&like.pattern)?).map(IndexFilter::Substring)
                    }
                    _ => None,
                }
            }
            Expr::InList(l) if !l.negated => {
                let (field, key) = indexed_operand(&l.expr)?;
                let values = l
                    .list
                    .iter()
                    .map(text_literal)
                    .collect::<Option<Vec<_>>>()?;
                Some(terms(field, key, values))
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                let parts: Vec<_> = [left, right]
                    .into_iter()
                    .filter_map(|e| IndexFilter::from_expr(e))
                    .collect();
                (!parts.is_empty()).then_some(IndexFilter::And(parts))
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => Some(IndexFilter::Or(vec![
                IndexFilter::from_expr(left)?,
                IndexFilter::from_expr(right)?,
            ])),
            _ => None,
        }
    }
}

/// The words of a `'%…%'` pattern the index can serve, lowercased.
fn substring_words(pattern: &str) -> Option<Vec<String>> {
    let inner = pattern.strip_prefix('%')?.strip_suffix('%')?;
    let words: Vec<String> = inner.split(' ').map(str::to_lowercase).collect();
    // One word could sit anywhere inside a token: finding it means reading the whole dictionary,
    // which costs about what scanning the segment does (measured). Two or more words pin tokens.
    (words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric())))
    .then_some(words)
}

/// Candidate blocks of `msg LIKE '%w1 … wn%'` (n ≥ 2): the blocks holding the middle words as
/// tokens and a token starting with wn. (w1 may end any token; looking for it would read the
/// whole dictionary, so it does not narrow.)
fn substring_blocks(index: &SegmentIndex, words: &[String]) -> RoaringBitmap {
    let mut blocks = match words {
        [_, middle @ .., last] => {
            let mut acc = middle
                .iter()
                .map(|w| index.term("msg", w))
                .reduce(|a, b| a & b)
                .unwrap_or_else(|| all_blocks(index));
            if !acc.is_empty() {
                acc &= index.scan_from("msg", last, |_| true);
            }
            acc
        }
        _ => all_blocks(index),
    };
    blocks |= index.term("msg", SUBSTRING_ALWAYS);
    blocks
}

fn all_blocks(index: &SegmentIndex) -> RoaringBitmap {
    let mut all = RoaringBitmap::new();
    all.insert_range(0..index.blocks());
    all
}

/// Blocks of `msg` that can satisfy a query. A block is a candidate when some row in it holds
/// the term; so `NOT` cannot narrow (the same block may hold rows without it) and a phrase is
/// the blocks holding all its tokens.
fn query_blocks(index: &SegmentIndex, q: &Query) -> RoaringBitmap {
    match q {
        Query::Term(t) => index.term("msg", t),
        Query::Phrase(ts) => ts
            .iter()
            .map(|t| index.term("msg", t))
            .reduce(|a, b| a & b)
            .unwrap_or_else(|| all_blocks(index)),
        Query::Prefix(p) => index.scan_from("msg", p, |_| true),
        Query::Wildcard(w) => {
            let literal: String = w.chars().take_while(|c| !matches!(c, '*' | '?')).collect();
            index.scan_from("msg", &literal, |t| glob(w, t))
        }
        Query::And(qs) => qs
            .iter()
            .map(|q| query_blocks(index, q))
            .reduce(|a, b| a & b)
            .unwrap_or_else(|| all_blocks(index)),
        Query::Or(qs) => qs
            .iter()
            .fold(RoaringBitmap::new(), |acc, q| acc | query_blocks(index, q)),
        Query::Not(_) => all_blocks(index),
        // Usually planned as a column comparison before it gets here; exact either way.
        Query::Field { field, value } => index.term(field, value),
    }
}

/// Blocks holding any of `terms` in `field`, or `None` when `field` (for attrs: the key) is not
/// indexed in this segment.
fn term_blocks(index: &SegmentIndex, field: &str, terms: &[String]) -> Option<RoaringBitmap> {
    if !index.has(field) {
        return None;
    }
    if field == "attrs" {
        let keys_indexed = terms.iter().all(|t| {
            t.split_once('=')
                .is_some_and(|(k, _)| index.contains("attrs", &attr_key_marker(k)))
        });
        if !keys_indexed {
            return None;
        }
    }
    Some(
        terms
            .iter()
            .fold(RoaringBitmap::new(), |acc, t| acc | index.term(field, t)),
    )
}

fn filter_blocks(index: &SegmentIndex, f: &IndexFilter) -> Option<RoaringBitmap> {
    match f {
        IndexFilter::Match(q) => index.has("msg").then(|| query_blocks(index, q)),
        IndexFilter::Substring(words) => index.has("msg").then(|| substring_blocks(index, words)),
        IndexFilter::Terms { field, terms } => term_blocks(index, field, terms),
        IndexFilter::And(parts) => parts
            .iter()
            .filter_map(|p| filter_blocks(index, p))
            .reduce(|a, b| a & b),
        IndexFilter::Or(parts) => parts
            .iter()
            .map(|p| filter_blocks(index, p))
            .collect::<Option<Vec<_>>>()
            .map(|bs| bs.into_iter().fold(RoaringBitmap::new(), |a, b| a | b)),
    }
}

/// The blocks of the segment (see [`SegmentIndex::block_rows`]) that can hold rows satisfying
/// every filter, or `None` when the index cannot narrow them (then every row is a candidate).
pub fn candidates(index: &SegmentIndex, filters: &[IndexFilter]) -> Option<RoaringBitmap> {
    filters
        .iter()
        .filter_map(|f| filter_blocks(index, f))
        .reduce(|a, b| a & b)
}
