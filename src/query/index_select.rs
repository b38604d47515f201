//! Index pruning of a `logs` scan: which segments to open, and which of their rows to decode.
//!
//! For each segment the time pruning kept, its sidecar index turns the scan's indexable filters
//! into candidate blocks of rows. No candidate: the segment is dropped unopened. Otherwise the
//! candidate rows become a Parquet row selection when that is cheaper than reading the segment whole — a choice
//! by cost: a selected run decodes about a page of each column around it, so many scattered
//! runs cost more than a scan.

use std::collections::HashMap;

use datafusion::logical_expr::Expr;
use datafusion::parquet::arrow::arrow_reader::RowSelection;
use roaring::RoaringBitmap;

use crate::catalog::SegmentMeta;
use crate::index::{candidates, BloomCache, IndexCache, IndexFilter};
use crate::storage::SegmentFiles;

/// Rows a selected run costs beyond its own: about one page of the widest column, decoded
/// around it (msg pages hold a few hundred to a few thousand rows).
const ROWS_PER_RUN: u64 = 512;

/// A selection must cut the work by this factor to be used: reading runs costs more per row
/// than a straight scan (page by page around each run, the pushed-down predicate per run), and
/// at 10M rows a selection that kept most blocks of its segments ran about twice as slow as
/// the scan.
const SELECTION_PAYOFF: u64 = 2;

/// What the indexes decided for one scan.
#[derive(Debug, Default)]
pub struct IndexSelection<'a> {
    pub kept: Vec<&'a SegmentMeta>,
    pub selections: HashMap<u64, RowSelection>,
    pub pruned: usize,
    /// Segments ruled out by their blooms alone (their index was never opened).
    pub pruned_bloom: usize,
    pub fallbacks: usize,
    pub rows_selected: u64,
}

/// The row ranges of candidate `blocks` of `block_rows` rows in a `total`-row file, adjacent
/// blocks merged.
fn row_ranges(blocks: &RoaringBitmap, block_rows: u32, total: u64) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for b in blocks {
        let start = u64::from(b) * u64::from(block_rows);
        let end = (start + u64::from(block_rows)).min(total);
        if start >= end {
            continue;
        }
        let (start, end) = (start as usize, end as usize);
        match out.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => out.push(start..end),
        }
    }
    out
}

/// A row selection of `ranges` in a `total`-row file, if decoding only them is cheaper.
fn selection_for(ranges: Vec<std::ops::Range<usize>>, total: u64) -> Option<RowSelection> {
    let rows: u64 = ranges.iter().map(|r| r.len() as u64).sum();
    let cost = ranges.len() as u64 * ROWS_PER_RUN + rows;
    (cost * SELECTION_PAYOFF < total)
        .then(|| RowSelection::from_consecutive_ranges(ranges.into_iter(), total as usize))
}

/// Applies the segments' indexes to `filters` over the `segments` time pruning kept.
pub fn select<'a>(
    files: &SegmentFiles,
    cache: &IndexCache,
    blooms: &BloomCache,
    segments: Vec<&'a SegmentMeta>,
    filters: &[Expr],
) -> IndexSelection<'a> {
    let index_filters: Vec<IndexFilter> =
        filters.iter().filter_map(IndexFilter::from_expr).collect();
    let mut out = IndexSelection::default();
    for seg in segments {
        let has_blooms = seg.index.as_ref().is_some_and(|i| !i.blooms.is_empty());
        if has_blooms && !index_filters.is_empty() {
            let excluded = files
                .bloom(&seg.location)
                .ok()
                .and_then(|path| blooms.get(&path))
                .is_some_and(|b| b.excludes(&index_filters));
            if excluded {
                out.pruned_bloom += 1;
                continue;
            }
        }
        let narrowed = if index_filters.is_empty() || seg.index.is_none() {
            None
        } else {
            match files.index(&seg.location).ok().and_then(|p| cache.get(&p)) {
                Some(ix) if u64::from(ix.rows()) == seg.rows => candidates(&ix, &index_filters)
                    .map(|blocks| row_ranges(&blocks, ix.block_rows(), seg.rows)),
                _ => {
                    out.fallbacks += 1;
                    None
                }
            }
        };
        match narrowed {
            Some(ranges) if ranges.is_empty() => out.pruned += 1,
            Some(ranges) => {
                out.rows_selected += ranges.iter().map(|r| r.len() as u64).sum::<u64>();
                if let Some(sel) = selection_for(ranges, seg.rows) {
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
