//! The `match()` query language, parsed into a [`Query`] and evaluated over one text's tokens.
//!
//! ```text
//! query  := or
//! or     := and ( "OR" and )*
//! and    := unary ( ["AND"] unary )*          -- terms side by side are AND-ed
//! unary  := ("NOT" | "-") unary | atom
//! atom   := "(" query ")" | "\"" phrase "\"" | word
//! ```
//! A word is tokenized like the text (see [`super::tokenize`]): one token is a term, several are a
//! phrase (`ext4_find_entry`). A word ending in `*` (and no other wildcard) is a prefix;
//! `*` / `?` elsewhere make a wildcard pattern matched against single tokens. `AND`, `OR` and
//! `NOT` are operators only in capitals. A query that matches everything by itself (only `NOT`s)
//! is allowed: it is evaluated as written.
//!
//! `field:value` (or `field:"value"`) with a field of [`FIELDS`] tests another column of the row
//! for equality (`level` values are compared upper-cased); any other `a:b` is text. Such terms
//! cannot be evaluated on the text alone: `match()` rewrites them into column comparisons
//! while planning (see [`Query::to_parts`]).

use super::tokenize::tokens;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// One token.
    Term(String),
    /// Tokens at consecutive positions.
    Phrase(Vec<String>),
    /// Any token starting with this.
    Prefix(String),
    /// Any token matching this pattern (`*` any run, `?` one character).
    Wildcard(String),
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
    /// `field:value`: equality on another column of the row.
    Field {
        field: String,
        value: String,
    },
}

/// The columns `field:value` may name.
pub const FIELDS: [&str; 4] = ["service", "host", "level", "trace_id"];

/// A query split at its field terms (see [`Query::to_parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A subquery over the text only, written back as query text.
    Text(String),
    Field {
        field: String,
        value: String,
    },
    And(Vec<Part>),
    Or(Vec<Part>),
    Not(Box<Part>),
}

/// Why a query does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid match() query {query:?}: {reason}")]
pub struct MatchSyntaxError {
    pub query: String,
    pub reason: String,
}

/// The longest query text accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;

impl Query {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Query, MatchSyntaxError> {
        let err = |reason: &str| MatchSyntaxError {
            query: text.chars().take(200).collect(),
            reason: reason.to_string(),
        };
        if text.len() > MAX_QUERY_LEN {
            return Err(err(&format!("longer than {MAX_QUERY_LEN} bytes")));
        }
        let lexemes = lex(text).map_err(|r| err(&r))?;
        let mut p = Parser {
            lexemes,
            at: 0,
            depth: 0,
        };
        let q = p.or().map_err(|r| err(&r))?;
        match p.peek() {
            None => q.ok_or_else(|| err("it has no search terms")),
            Some(Lexeme::Close) => Err(err("unbalanced ')'")),
            Some(other) => Err(err(&format!("unexpected {other:?}"))),
        }
    }

    /// True if any `field:value` term is in the query.
    pub fn has_fields(&self) -> bool {
        match self {
            Query::Field { .. } => true,
            Query::And(qs) | Query::Or(qs) => qs.iter().any(Query::has_fields),
            Query::Not(q) => q.has_fields(),
            _ => false,
        }
    }

    /// The query as text that parses back to it (fields included).
    pub fn render(&self) -> String {
        let group = |qs: &[Query], op: &str| {
            let parts: Vec<String> = qs.iter().map(|q| format!("({})", q.render())).collect();
            parts.join(op)
        };
        match self {
            Query::Term(t) => format!("\"{t}\""),
            Query::Phrase(p) => format!("\"{}\"", p.join(" ")),
            Query::Prefix(p) => format!("{p}*"),
            Query::Wildcard(w) => w.clone(),
            Query::And(qs) => group(qs, " AND "),
            Query::Or(qs) => group(qs, " OR "),
            Query::Not(q) => format!("NOT ({})", q.render()),
            Query::Field { field, value } => format!("{field}:\"{value}\""),
        }
    }

    /// Splits the query at its field terms: the largest subtrees without fields become
    /// [`Part::Text`], to be matched against the text.
    pub fn to_parts(&self) -> Part {
        if !self.has_fields() {
            return Part::Text(self.render());
        }
        match self {
            Query::Field { field, value } => Part::Field {
                field: field.clone(),
                value: value.clone(),
            },
            Query::And(qs) => Part::And(qs.iter().map(Query::to_parts).collect()),
            Query::Or(qs) => Part::Or(qs.iter().map(Query::to_parts).collect()),
            Query::Not(q) => Part::Not(Box::new(q.to_parts())),
            other => Part::Text(other.render()),
        }
    }

    /// True if the tokens of a text (see [`tokens`]) satisfy the query. A `field:value` term
    /// never matches here: it is not about the text (`match()` plans it as a comparison).
    pub fn matches(&self, toks: &[String]) -> bool {
        match self {
            Query::Field { .. } => false,
            Query::Term(t) => toks.iter().any(|x| x == t),
            Query::Phrase(p) => p.is_empty() || toks.windows(p.len()).any(|w| w == p.as_slice()),
            Query::Prefix(p) => toks.iter().any(|x| x.starts_with(p.as_str())),
            Query::Wildcard(w) => toks.iter().any(|x| glob(w, x)),
            Query::And(qs) => qs.iter().all(|q| q.matches(toks)),
            Query::Or(qs) => qs.iter().any(|q| q.matches(toks)),
            Query::Not(q) => !q.matches(toks),
        }
    }

    /// True if `text` satisfies the query.
    pub fn matches_text(&self, text: &str) -> bool {
        self.matches(&tokens(text))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lexeme {
    Word(String),
    Quoted(String),
    Open,
    Close,
    And,
    Or,
    Not,
}

fn lex(text: &str) -> Result<Vec<Lexeme>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Lexeme::Open);
            }
            ')' => {
                chars.next();
                out.push(Lexeme::Close);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("unterminated '\"'".into()),
                    }
                }
                out.push(Lexeme::Quoted(s));
            }
            '-' => {
                // Reached only at the start of a word: `-term` is `NOT term`.
                chars.next();
                match chars.peek() {
                    Some(n) if !n.is_whitespace() && *n != ')' => out.push(Lexeme::Not),
                    _ => return Err("'-' must be followed by a term".into()),
                }
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"') {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(match w.as_str() {
                    "AND" => Lexeme::And,
                    "OR" => Lexeme::Or,
                    "NOT" => Lexeme::Not,
                    _ => Lexeme::Word(w),
                });
            }
        }
    }
    Ok(out)
}

struct Parser {
    lexemes: Vec<Lexeme>,
    at: usize,
    /// Open groups and NOTs around the current position.
    depth: usize,
}

/// The deepest nesting of groups and NOTs accepted (evaluation recurses that deep).
pub const MAX_DEPTH: usize = 32;

impl Parser {
    fn peek(&self) -> Option<&Lexeme> {
        self.lexemes.get(self.at)
    }

    fn next(&mut self) -> Option<Lexeme> {
        let l = self.lexemes.get(self.at).cloned();
        self.at += 1;
        l
    }

    /// `None` when the group holds no terms at all (e.g. `"..."` of punctuation).
    fn or(&mut self) -> Result<Option<Query>, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Lexeme::Or) {
            self.next();
            parts.push(self.and()?);
        }
        Ok(combine(parts, Query::Or))
    }

    fn and(&mut self) -> Result<Option<Query>, String> {
        let mut parts = Vec::new();
        loop {
            match self.peek() {
                None | Some(Lexeme::Or) | Some(Lexeme::Close) => break,
                Some(Lexeme::And) => {
                    self.next();
                    if matches!(self.peek(), None | Some(Lexeme::Or) | Some(Lexeme::Close)) {
                        return Err("AND needs a term after it".into());
                    }
                }
                _ => parts.push(self.unary()?),
            }
        }
        if parts.is_empty() {
            return Err(match self.peek() {
                Some(Lexeme::Or) => "OR needs a term on both sides".into(),
                _ => "empty query or group".into(),
            });
        }
        Ok(combine(parts, Query::And))
    }

    fn unary(&mut self) -> Result<Option<Query>, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("groups and NOTs nested deeper than {MAX_DEPTH}"));
        }
        self.depth += 1;
        let q = self.unary_inner();
        self.depth -= 1;
        q
    }

    fn unary_inner(&mut self) -> Result<Option<Query>, String> {
        match self.next() {
            Some(Lexeme::Not) => {
                let inner = self.unary()?;
                Ok(inner.map(|q| Query::Not(Box::new(q))))
            }
            Some(Lexeme::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Lexeme::Close) => Ok(inner),
                    _ => Err("unbalanced '('".into()),
                }
            }
            Some(Lexeme::Quoted(s)) => Ok(phrase(tokens(&s))),
            Some(Lexeme::Word(w)) => {
                if let Some(field) = field_name(&w) {
                    let value = match w.split_once(':') {
                        Some((_, "")) => match self.next() {
                            Some(Lexeme::Quoted(v)) => v,
                            _ => return Err(format!("{w} needs a value")),
                        },
                        Some((_, v)) => v.to_string(),
                        None => return Err(format!("{w} needs a value")),
                    };
                    if value.is_empty() {
                        return Err(format!("{w} needs a value"));
                    }
                    let value = if field == "level" {
                        value.to_uppercase()
                    } else {
                        value
                    };
                    return Ok(Some(Query::Field {
                        field: field.to_string(),
                        value,
                    }));
                }
                Ok(word(&w))
            }
            Some(other) => Err(format!("unexpected {other:?}")),
            None => Err("a term is missing at the end".into()),
        }
    }
}

/// The field a `field:value` word names, if it is one of [`FIELDS`].
fn field_name(w: &str) -> Option<&'static str> {
    let (name, _) = w.split_once(':')?;
    FIELDS.into_iter().find(|f| f.eq_ignore_ascii_case(name))
}

fn combine(parts: Vec<Option<Query>>, make: fn(Vec<Query>) -> Query) -> Option<Query> {
    let mut parts: Vec<Query> = parts.into_iter().flatten().collect();
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(make(parts)),
    }
}

fn phrase(mut toks: Vec<String>) -> Option<Query> {
    match toks.len() {
        0 => None,
        1 => toks.pop().map(Query::Term),
        _ => Some(Query::Phrase(toks)),
    }
}

fn word(w: &str) -> Option<Query> {
    let stars = w.matches(['*', '?']).count();
    if stars == 0 {
        return phrase(tokens(w));
    }
    let lower = w.to_lowercase();
    let body = lower.trim_end_matches('*');
    if !body.contains(['*', '?']) && !body.is_empty() {
        // A prefix of one token: tokenize the part before the star.
        let toks = tokens(body);
        return match toks.as_slice() {
            [one] if body.ends_with(|c: char| c.is_alphanumeric()) => {
                Some(Query::Prefix(one.clone()))
            }
            _ => Some(Query::Wildcard(lower)),
        };
    }
    if lower.chars().all(|c| c == '*') {
        return None;
    }
    Some(Query::Wildcard(lower))
}

/// True if the token `text` matches the wildcard `pattern` (`*` any run, `?` one character).
pub fn glob(pattern: &str, text: &str) -> bool {
    glob_bytes(pattern.as_bytes(), text.as_bytes())
}

fn glob_bytes(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            if pattern[p] == b'?' {
                // Step over one whole UTF-8 character.
                t += utf8_len(text[t]);
            } else {
                t += 1;
            }
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        b if b < 0x80 => 1,
        b if b >= 0xF0 => 4,
        b if b >= 0xE0 => 3,
        _ => 2,
    }
}
