//! Collects a field's terms → blocks while rows stream by, cheaply: a term borrows the batch's
//! own bytes when it can (allocating only lowercased or composed terms), and a term seen in one
//! block — most of them: numbers, ids — needs no list of its own (rows arrive in order).

use std::borrow::Cow;
use std::collections::hash_map::Entry;
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
        // One hash and probe per token: most tokens of a segment are ids seen once.
        match self.ids.entry(term) {
            Entry::Occupied(e) => {
                let id = *e.get();
                self.touch(id, block);
                false
            }
            Entry::Vacant(e) => {
                e.insert(self.blocks.len());
                self.blocks.push(Blocks {
                    first: block,
                    more: Vec::new(),
                });
                true
            }
        }
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

/// How a block list is stored (version 3), by its first byte: whichever is smallest of a
/// delta-varint list (sparse terms), a bitset over the blocks (terms in most blocks) and a
/// serialized roaring bitmap. Blocks number in the hundreds, so the first two are a few bytes
/// where roaring spends a header and two bytes a block.
const AS_DELTAS: u8 = 1;
const AS_BITSET: u8 = 2;
const AS_ROARING: u8 = 3;

/// Appends `blocks` to `out` in the smallest of the encodings above.
pub fn encode_blocks(blocks: &RoaringBitmap, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut deltas = Vec::new();
    let mut prev = 0u32;
    for (i, b) in blocks.iter().enumerate() {
        let mut d = if i == 0 { b } else { b - prev };
        prev = b;
        while d >= 0x80 {
            deltas.push((d as u8) | 0x80);
            d >>= 7;
        }
        deltas.push(d as u8);
    }
    let bitset_len = blocks.max().map_or(0, |m| m as usize / 8 + 1);
    let roaring_len = blocks.serialized_size();
    if deltas.len() <= bitset_len && deltas.len() <= roaring_len {
        out.push(AS_DELTAS);
        out.extend_from_slice(&deltas);
    } else if bitset_len <= roaring_len {
        out.push(AS_BITSET);
        let start = out.len();
        out.resize(start + bitset_len, 0);
        for b in blocks {
            out[start + b as usize / 8] |= 1 << (b % 8);
        }
    } else {
        out.push(AS_ROARING);
        blocks.serialize_into(&mut *out)?;
    }
    Ok(())
}

/// The blocks of a list written by [`encode_blocks`]; `None` if it is malformed.
pub fn decode_blocks(bytes: &[u8]) -> Option<RoaringBitmap> {
    let (tag, body) = bytes.split_first()?;
    match *tag {
        AS_DELTAS => {
            let mut out = Vec::with_capacity(body.len());
            let (mut shift, mut d, mut prev) = (0u32, 0u32, 0u32);
            for byte in body {
                d |= u32::from(byte & 0x7f).checked_shl(shift)?;
                if byte & 0x80 != 0 {
                    shift += 7;
                    continue;
                }
                prev = if out.is_empty() {
                    d
                } else {
                    prev.checked_add(d)?
                };
                out.push(prev);
                (shift, d) = (0, 0);
            }
            RoaringBitmap::from_sorted_iter(out).ok()
        }
        AS_BITSET => Some(
            body.iter()
                .enumerate()
                .flat_map(|(i, byte)| {
                    (0..8u32)
                        .filter(move |bit| byte & (1 << bit) != 0)
                        .map(move |bit| i as u32 * 8 + bit)
                })
                .collect(),
        ),
        AS_ROARING => RoaringBitmap::deserialize_from(body).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn block_lists_round_trip_in_every_encoding() {
        use super::{decode_blocks, encode_blocks};
        use rand::{Rng, SeedableRng};
        use roaring::RoaringBitmap;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut tags = std::collections::BTreeSet::new();
        for case in 0..500 {
            // Sparse, dense and very large block numbers, so each encoding gets chosen.
            let (span, n) = match case % 5 {
                0 => (200, rng.gen_range(1..5)),
                1 => (200, rng.gen_range(100..200)),
                2 => (5_000_000, rng.gen_range(1..50)),
                3 => (70_000, rng.gen_range(1..70_000)),
                _ => (65_536, rng.gen_range(40_000..60_000)),
            };
            let mut blocks: RoaringBitmap = (0..n).map(|_| rng.gen_range(0..span)).collect();
            if case % 5 == 4 {
                // Dense blocks and one far away: roaring's bitmap container beats both others.
                blocks.insert(rng.gen_range(1_000_000..5_000_000));
            }
            let mut bytes = vec![0xee];
            encode_blocks(&blocks, &mut bytes).expect("encode");
            tags.insert(bytes[1]);
            assert_eq!(
                decode_blocks(&bytes[1..]),
                Some(blocks.clone()),
                "case {case}"
            );
            // Cut short or garbled, a list decodes to something or nothing; it never panics.
            for cut in [1, bytes.len() / 2] {
                let _ = decode_blocks(&bytes[1..cut.max(1)]);
            }
            let mut bad = bytes[1..].to_vec();
            bad.iter_mut().skip(1).for_each(|b| *b = !*b);
            let _ = decode_blocks(&bad);
        }
        assert_eq!(
            tags.len(),
            3,
            "deltas, bitset and roaring were all used: {tags:?}"
        );
        assert_eq!(decode_blocks(&[9, 1, 2]), None, "unknown encoding");
        assert_eq!(decode_blocks(&[]), None);
    }
}
