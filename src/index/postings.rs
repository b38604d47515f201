//! Collects a field's terms → blocks while rows stream by, cheaply: a term borrows the batch's
//! own bytes when it can (allocating only lowercased or composed terms), and a term seen in one
//! block — most of them: numbers, ids — needs no list of its own (rows arrive in order).

use std::borrow::Cow;
use std::collections::HashMap;

use ahash::RandomState;
use roaring::RoaringBitmap;

/// The blocks of one term: the first, then any later ones, ascending and distinct.
struct Blocks {
    first: u32,
    more: Vec<u32>,
}

impl Blocks {
    fn last(&self) -> u32 {
        self.more.last().copied().unwrap_or(self.first)
    }
}

/// The blocks of one finished term.
pub enum Postings {
    /// A single block (most terms): no bitmap needed.
    One(u32),
    Many(RoaringBitmap),
}

/// Terms and the blocks each occurs in; terms borrow from data living for `'a`.
#[derive(Default)]
pub struct PostingsBuilder<'a> {
    ids: HashMap<Cow<'a, str>, usize, RandomState>,
    blocks: Vec<Blocks>,
}

impl<'a> PostingsBuilder<'a> {
    /// A builder with room for `terms` distinct terms before it grows.
    pub fn with_capacity(terms: usize) -> PostingsBuilder<'a> {
        PostingsBuilder {
            ids: HashMap::with_capacity_and_hasher(terms, RandomState::new()),
            blocks: Vec::with_capacity(terms),
        }
    }

    /// Records `term` in `block`; true if the term is new.
    pub fn add(&mut self, term: Cow<'a, str>, block: u32) -> bool {
        if let Some(&id) = self.ids.get(term.as_ref()) {
            self.touch(id, block);
            return false;
        }
        self.ids.insert(term, self.blocks.len());
        self.blocks.push(Blocks {
            first: block,
            more: Vec::new(),
        });
        true
    }

    /// As [`Self::add`] for a term in a scratch buffer: copied only when new.
    pub fn add_copy(&mut self, term: &str, block: u32) -> bool {
        match self.ids.get(term) {
            Some(&id) => {
                self.touch(id, block);
                false
            }
            None => self.add(Cow::Owned(term.to_owned()), block),
        }
    }

    fn touch(&mut self, id: usize, block: u32) {
        if let Some(b) = self.blocks.get_mut(id) {
            if b.last() != block {
                b.more.push(block);
            }
        }
    }

    /// Terms kept by `keep`, sorted, each with its blocks.
    pub fn finish(self, keep: impl Fn(&str) -> bool) -> Vec<(Cow<'a, str>, Postings)> {
        let mut blocks: Vec<Option<Blocks>> = self.blocks.into_iter().map(Some).collect();
        let mut out: Vec<(Cow<'a, str>, Postings)> = self
            .ids
            .into_iter()
            .filter(|(t, _)| keep(t))
            .map(|(t, id)| {
                let postings = match blocks.get_mut(id).and_then(Option::take) {
                    Some(b) if b.more.is_empty() => Postings::One(b.first),
                    Some(b) => Postings::Many(
                        RoaringBitmap::from_sorted_iter(std::iter::once(b.first).chain(b.more))
                            .unwrap_or_default(),
                    ),
                    None => Postings::Many(RoaringBitmap::new()),
                };
                (t, postings)
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
