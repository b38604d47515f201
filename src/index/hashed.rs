//! A field of near-unique values (`trace_id`) kept as hashes instead of an fst: a random
//! 32-character id costs an fst about 24 bytes, a hash and its block 8.
//!
//! The section's fst holds the one key [`HASHED_MARKER`]; its postings are ascending u64s, each
//! the top 48 bits of the value's FNV-1a hash above a 16-bit block number. Two values sharing
//! 48 bits share their blocks, a superset the re-applied filter removes. A segment with more
//! than 65,536 blocks keeps the fst instead.

use std::borrow::Cow;

use roaring::RoaringBitmap;

use super::postings::Postings;

/// The fst key that marks a hashed section.
pub const HASHED_MARKER: &str = "\u{1}hashed";

/// The fields stored hashed.
pub const HASHED_FIELDS: [&str; 1] = ["trace_id"];

const BLOCK_BITS: u32 = 16;
const BLOCK_MASK: u64 = (1 << BLOCK_BITS) - 1;

/// 64-bit FNV-1a: stable across builds and machines, as an on-disk hash must be.
fn fnv1a(value: &str) -> u64 {
    value.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The hashed table of `terms`, or `None` if a block number does not fit its 16 bits.
pub fn encode_hashed(terms: &[(Cow<'_, str>, Postings)]) -> Option<Vec<u8>> {
    let mut entries: Vec<u64> = Vec::with_capacity(terms.len());
    for (term, postings) in terms {
        let hash = fnv1a(term) & !BLOCK_MASK;
        let mut push = |block: u32| {
            (u64::from(block) <= BLOCK_MASK).then(|| entries.push(hash | u64::from(block)))
        };
        match postings {
            Postings::One(b) => push(*b)?,
            Postings::Many(bitmap) => {
                for b in bitmap {
                    push(b)?;
                }
            }
        }
    }
    entries.sort_unstable();
    entries.dedup();
    Some(entries.iter().flat_map(|e| e.to_le_bytes()).collect())
}

/// The blocks of `value` in a table written by [`encode_hashed`].
pub fn hashed_blocks(table: &[u8], value: &str) -> RoaringBitmap {
    let entry = |i: usize| {
        table
            .get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(u64::MAX, u64::from_le_bytes)
    };
    let n = table.len() / 8;
    let hash = fnv1a(value) & !BLOCK_MASK;
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if entry(mid) < hash {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    (lo..n)
        .map(entry)
        .take_while(|e| e & !BLOCK_MASK == hash)
        .map(|e| (e & BLOCK_MASK) as u32)
        .collect()
}
