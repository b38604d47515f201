//! The tokenizer shared by `match()` and (later) the segment index: the same text always yields
//! the same tokens, in the same positions, on both sides.
//!
//! Rules:
//! - Text is lowercased (ASCII and Unicode) and split into *chunks* at whitespace and at every
//!   punctuation character except `.`, `-`, `_` and `:`; `=` also splits, so `key=value` yields
//!   the key and the value as tokens of their own.
//! - A chunk that people search for whole stays one token: an IPv4 address (`10.0.0.1`, also
//!   with a `:port`, which becomes a second token), a UUID (`8-4-4-4-12` hex digits), a block id
//!   (`blk_-6952295868487656571`, `blk_123`).
//! - Any other chunk is split further at every non-alphanumeric character, so `ext4_find_entry`
//!   is `ext4`, `find`, `entry` — a query word is tokenized by these same rules, so searching
//!   for `ext4_find_entry` looks for those three tokens next to each other.
//! - Long hex and numeric ids are alphanumeric and stay whole. Tokens longer than
//!   [`MAX_TOKEN_LEN`] bytes are cut to that length (on a char boundary).
//!
//! Positions count tokens from 0; a phrase matches tokens at consecutive positions.

use std::borrow::Cow;

/// The longest token kept, in bytes; longer ones are cut.
pub const MAX_TOKEN_LEN: usize = 64;

/// The tokens of `text`, lowercased, in order (position = index).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_token(text, |t, _| out.push(t.into_owned()));
    out
}

/// Calls `f` with each token of `text` in order (borrowed when the text already is the token),
/// and whether it was cut.
pub fn for_each_token<'t>(text: &'t str, mut f: impl FnMut(Cow<'t, str>, bool)) {
    let mut emit = |raw: &'t str| {
        let (t, cut) = normalize(raw);
        f(t, cut);
    };
    for chunk in text.split(is_chunk_separator).filter(|c| !c.is_empty()) {
        let chunk = chunk.trim_matches(|c| matches!(c, '.' | '-' | '_' | ':'));
        if chunk.is_empty() {
            continue;
        }
        if let Some((ip, port)) = ipv4_with_port(chunk) {
            emit(ip);
            if let Some(p) = port {
                emit(p);
            }
        } else if is_uuid(chunk) || is_block_id(chunk) {
            emit(chunk);
        } else {
            for word in chunk
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                emit(word);
            }
        }
    }
}

/// A raw token lowercased and cut to [`MAX_TOKEN_LEN`]; true if it was cut.
fn normalize(raw: &str) -> (Cow<'_, str>, bool) {
    if raw.len() <= MAX_TOKEN_LEN && raw.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return (Cow::Borrowed(raw), false);
    }
    let mut t = raw.to_lowercase();
    let long = t.len() > MAX_TOKEN_LEN;
    if long {
        let mut cut = MAX_TOKEN_LEN;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
    }
    (Cow::Owned(t), long)
}

fn is_chunk_separator(c: char) -> bool {
    !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
}

/// `a.b.c.d` (each 0-255) with an optional `:port`.
fn ipv4_with_port(chunk: &str) -> Option<(&str, Option<&str>)> {
    let (ip, port) = match chunk.split_once(':') {
        Some((ip, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (ip, Some(port))
        }
        Some(_) => return None,
        None => (chunk, None),
    };
    let parts: Vec<&str> = ip.split('.').collect();
    let octet = |p: &&str| {
        !p.is_empty()
            && p.len() <= 3
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|v| v <= 255)
    };
    (parts.len() == 4 && parts.iter().all(octet)).then_some((ip, port))
}

fn is_uuid(chunk: &str) -> bool {
    let groups: Vec<&str> = chunk.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// HDFS block ids: `blk_` then an optionally negative number.
fn is_block_id(chunk: &str) -> bool {
    let lower = chunk.to_ascii_lowercase();
    lower
        .strip_prefix("blk_")
        .map(|n| n.strip_prefix('-').unwrap_or(n))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
