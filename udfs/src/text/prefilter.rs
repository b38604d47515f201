//! [`Matcher`]: a query's rows ruled out before they are tokenized. Tokenizing a row costs
//! allocations per token; most rows a search reads hold none of its words. For ASCII text every
//! token is a lowercased piece of the text, so a term, a prefix or a phrase's words can only be
//! found in a row that holds them as ASCII-case-insensitive substrings: one pass of an
//! Aho-Corasick automaton over the row says which do, and the query's necessary condition over
//! that answer rules the row out or sends it on to the exact evaluation. Non-ASCII rows (whose
//! Unicode lowercasing may change bytes) always take the exact path.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder};

use super::query::Query;

/// More distinct words than this and the prefilter is not built (the answer is kept in a u64).
const MAX_WORDS: usize = 64;

/// What a row must hold for the query to possibly match: a necessary condition only.
#[derive(Debug, Clone)]
enum Need {
    /// Nothing can be said (wildcards, negations, fields).
    Nothing,
    /// Word `n` of the automaton, as a substring.
    Word(usize),
    All(Vec<Need>),
    Any(Vec<Need>),
}

impl Need {
    fn holds(&self, found: u64) -> bool {
        match self {
            Need::Nothing => true,
            Need::Word(n) => found & (1 << n) != 0,
            Need::All(ns) => ns.iter().all(|n| n.holds(found)),
            Need::Any(ns) => ns.iter().any(|n| n.holds(found)),
        }
    }
}

/// A parsed query with its prefilter, built once per batch.
#[derive(Debug)]
pub struct Matcher<'q> {
    query: &'q Query,
    prefilter: Option<(AhoCorasick, Need)>,
}

impl<'q> Matcher<'q> {
    pub fn new(query: &'q Query) -> Matcher<'q> {
        let mut words = Vec::new();
        let need = need_of(query, &mut words);
        let prefilter = match need {
            Need::Nothing => None,
            _ if words.len() > MAX_WORDS => None,
            need => AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .build(&words)
                .ok()
                .map(|ac| (ac, need)),
        };
        Matcher { query, prefilter }
    }

    /// Exactly [`Query::matches_text`].
    pub fn matches_text(&self, text: &str) -> bool {
        !self.rules_out(text) && self.query.matches_text(text)
    }

    /// True if the prefilter alone says `text` cannot match.
    fn rules_out(&self, text: &str) -> bool {
        let Some((ac, need)) = &self.prefilter else {
            return false;
        };
        text.is_ascii()
            && !need.holds(
                ac.find_overlapping_iter(text)
                    .fold(0u64, |found, m| found | 1 << m.pattern().as_usize()),
            )
    }
}

/// The necessary condition of `q`, adding the words it names to `words`.
fn need_of(q: &Query, words: &mut Vec<String>) -> Need {
    let mut word = |w: &str| {
        if w.is_empty() {
            return Need::Nothing;
        }
        let n = match words.iter().position(|x| x == w) {
            Some(n) => n,
            None => {
                words.push(w.to_string());
                words.len() - 1
            }
        };
        Need::Word(n)
    };
    match q {
        Query::Term(t) | Query::Prefix(t) => word(t),
        Query::Phrase(p) => Need::All(p.iter().map(|w| word(w)).collect()),
        Query::And(qs) => {
            let all: Vec<Need> = qs
                .iter()
                .map(|q| need_of(q, words))
                .filter(|n| !matches!(n, Need::Nothing))
                .collect();
            match all.is_empty() {
                true => Need::Nothing,
                false => Need::All(all),
            }
        }
        Query::Or(qs) => {
            let any: Vec<Need> = qs.iter().map(|q| need_of(q, words)).collect();
            match any.iter().any(|n| matches!(n, Need::Nothing)) {
                true => Need::Nothing,
                false => Need::Any(any),
            }
        }
        Query::Wildcard(_) | Query::Not(_) | Query::Field { .. } => Need::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const WORDS: [&str; 10] = [
        "timeout", "Reset", "peer", "blk_12", "10.0.0.1", "TIME", "ﬁle", "straße", "K", "a",
    ];

    fn text(rng: &mut StdRng) -> String {
        let seps = [" ", ", ", "=", "_", ".", "-", ": ", "\u{212A}", "é", "İ"];
        (0..rng.gen_range(0..8))
            .map(|_| {
                let w = WORDS[rng.gen_range(0..WORDS.len())];
                let w = if rng.gen_bool(0.3) {
                    w.to_uppercase()
                } else {
                    w.to_string()
                };
                let cut = if rng.gen_bool(0.2) && w.len() > 2 && w.is_ascii() {
                    2
                } else {
                    w.len()
                };
                format!("{}{}", &w[..cut], seps[rng.gen_range(0..seps.len())])
            })
            .collect()
    }

    fn query(rng: &mut StdRng, depth: u32) -> String {
        let pick = |rng: &mut StdRng| WORDS[rng.gen_range(0..8)].to_string();
        match if depth > 2 {
            rng.gen_range(0..4)
        } else {
            rng.gen_range(0..8)
        } {
            0 => pick(rng),
            1 => format!("\"{} {}\"", pick(rng), pick(rng)),
            2 => format!("{}*", pick(rng).chars().next().unwrap_or('a')),
            3 => "t?m*".to_string(),
            4 => format!("({} AND {})", query(rng, depth + 1), query(rng, depth + 1)),
            5 => format!("({} OR {})", query(rng, depth + 1), query(rng, depth + 1)),
            6 => format!("NOT {}", query(rng, depth + 1)),
            _ => format!("{} {}", query(rng, depth + 1), query(rng, depth + 1)),
        }
    }

    #[test]
    fn the_prefilter_never_changes_an_answer() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut ruled_out = 0;
        for _ in 0..3000 {
            let Ok(q) = Query::parse(&query(&mut rng, 0)) else {
                continue;
            };
            let m = Matcher::new(&q);
            for _ in 0..20 {
                let t = text(&mut rng);
                let exact = q.matches_text(&t);
                assert_eq!(m.matches_text(&t), exact, "{q:?} on {t:?}");
                ruled_out += usize::from(m.rules_out(&t));
            }
        }
        assert!(
            ruled_out > 1000,
            "the prefilter ruled out only {ruled_out} rows"
        );
    }

    #[test]
    fn queries_it_cannot_narrow_build_no_prefilter() {
        for q in ["t?me*", "NOT timeout", "timeout OR NOT peer", "-timeout"] {
            let q = Query::parse(q).unwrap();
            assert!(Matcher::new(&q).prefilter.is_none(), "{q:?}");
        }
        let q = Query::parse("timeout -peer").unwrap();
        assert!(Matcher::new(&q).prefilter.is_some());
        assert!(!Matcher::new(&q).matches_text("all quiet"));
        assert!(Matcher::new(&q).matches_text("TimeOut after 3s"));
    }
}
