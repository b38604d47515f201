//! Index pruning of a `logs` scan: which segments to open, and which of their rows to decode.
//!
//! For each segment the time pruning kept, its sidecar index turns the scan's indexable filters
//! into candidate rows. No candidate: the segment is dropped unopened. Otherwise the candidates
//! become a Parquet row selection when that is cheaper than reading the segment whole — a choice
//! by cost: a selected run decodes about a page of each column around it, so many scattered
//! runs cost more than a scan.

use std::collections::HashMap;
use std::path::Path;

use datafusion::logical_expr::Expr;
use datafusion::parquet::arrow::arrow_reader::RowSelection;
use roaring::RoaringBitmap;

use crate::catalog::SegmentMeta;
use crate::index::{candidates, index_path, IndexCache, IndexFilter};

/// Rows a selected run costs beyond its own: about one page of the widest column, decoded
/// around it (msg pages hold a few hundred to a few thousand rows).
const ROWS_PER_RUN: u64 = 512;

/// What the indexes decided for one scan.
#[derive(Debug, Default)]
pub struct IndexSelection<'a> {
    pub kept: Vec<&'a SegmentMeta>,
    pub selections: HashMap<u64, RowSelection>,
    pub pruned: usize,
    pub fallbacks: usize,
    pub rows_selected: u64,
}

/// The runs of consecutive rows in `rows`.
fn runs(rows: &RoaringBitmap) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for r in rows.iter().map(|r| r as usize) {
        match out.last_mut() {
            Some(last) if last.end == r => last.end = r + 1,
            _ => out.push(r..r + 1),
        }
    }
    out
}

/// A row selection for `rows` of a `total`-row file, if decoding only them is cheaper.
pub fn selection_for(rows: &RoaringBitmap, total: u64) -> Option<RowSelection> {
    let runs = runs(rows);
    let cost = runs.len() as u64 * ROWS_PER_RUN + rows.len();
    (cost < total).then(|| RowSelection::from_consecutive_ranges(runs.into_iter(), total as usize))
}

/// Applies the segments' indexes to `filters` over the `segments` time pruning kept.
pub fn select<'a>(
    data_dir: &Path,
    cache: &IndexCache,
    segments: Vec<&'a SegmentMeta>,
    filters: &[Expr],
) -> IndexSelection<'a> {
    let index_filters: Vec<IndexFilter> =
        filters.iter().filter_map(IndexFilter::from_expr).collect();
    let mut out = IndexSelection::default();
    for seg in segments {
        let narrowed = if index_filters.is_empty() || seg.index.is_none() {
            None
        } else {
            match cache.get(&index_path(&data_dir.join(&seg.path))) {
                Some(ix) if u64::from(ix.rows()) == seg.rows => candidates(&ix, &index_filters),
                _ => {
                    out.fallbacks += 1;
                    None
                }
            }
        };
        match narrowed {
            Some(rows) if rows.is_empty() => out.pruned += 1,
            Some(rows) => {
                out.rows_selected += rows.len();
                if let Some(sel) = selection_for(&rows, seg.rows) {
                    out.selections.insert(seg.id, sel);
                }
                out.kept.push(seg);
            }
            None => {
                out.rows_selected += seg.rows;
                out.kept.push(seg);
            }
        }
    }
    out
}
