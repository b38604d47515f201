//! Collects a field's terms → blocks while rows stream by, cheaply: a term allocates once, when
//! first seen, and a block is recorded once per term (rows arrive in order).

use std::collections::HashMap;

use ahash::RandomState;
use roaring::RoaringBitmap;

/// Terms and the blocks each occurs in.
#[derive(Default)]
pub struct PostingsBuilder {
    ids: HashMap<String, usize, RandomState>,
    blocks: Vec<Vec<u32>>,
}

impl PostingsBuilder {
    /// Records `term` in `block`; true if the term is new.
    pub fn add(&mut self, term: &str, block: u32) -> bool {
        let (id, new) = match self.ids.get(term) {
            Some(&id) => (id, false),
            None => {
                let id = self.blocks.len();
                self.ids.insert(term.to_owned(), id);
                self.blocks.push(Vec::new());
                (id, true)
            }
        };
        if let Some(list) = self.blocks.get_mut(id) {
            if list.last() != Some(&block) {
                list.push(block);
            }
        }
        new
    }

    /// Terms kept by `keep`, sorted, each with its blocks.
    pub fn finish(self, keep: impl Fn(&str) -> bool) -> Vec<(String, RoaringBitmap)> {
        let mut blocks: Vec<Option<Vec<u32>>> = self.blocks.into_iter().map(Some).collect();
        let mut out: Vec<(String, RoaringBitmap)> = self
            .ids
            .into_iter()
            .filter(|(t, _)| keep(t))
            .map(|(t, id)| {
                let list = blocks
                    .get_mut(id)
                    .and_then(Option::take)
                    .unwrap_or_default();
                // Blocks were pushed in row order: sorted and distinct.
                let bitmap = RoaringBitmap::from_sorted_iter(list).unwrap_or_default();
                (t, bitmap)
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
