//! PII redaction at ingest, before the WAL: built-in detectors (emails, card numbers with a
//! Luhn check, JWTs, AWS access keys, bearer tokens, passwords in URLs; IPv4 and IPv6 opt-in)
//! and a tenant's own regexes replace what they find with `[REDACTED:kind]` in `msg` and in
//! every string value of `attrs`. One Aho-Corasick pass and a digit scan decide which
//! detectors can match a text at all; the tenant's own rules run as one `RegexSet` first.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Captures, Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::model::LogRecord;

/// The built-in detectors, by the name rules and metrics use, in the order they run (a
/// password in a URL before the email its `user:password@host` looks like).
pub const DETECTORS: [&str; 8] = [
    "url_password",
    "bearer",
    "jwt",
    "aws_key",
    "email",
    "card",
    "ipv4",
    "ipv6",
];

/// The detectors `default` names: all but the IP addresses, which are opt-in.
pub const DEFAULT_DETECTORS: [&str; 6] =
    ["email", "card", "jwt", "aws_key", "bearer", "url_password"];

/// Most custom rules a tenant may have.
pub const MAX_CUSTOM_RULES: usize = 32;
/// Longest custom rule pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// Compiled size limit of each custom rule and of their set (the regex crate's `size_limit`):
/// the regex crate never backtracks, so this bounds the time a rule takes per byte of a log.
const COMPILED_LIMIT: usize = 1 << 20;

/// A rule set that cannot be built.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("unknown detector {0:?}; the detectors are {d}, or `default`, or `none`", d = DETECTORS.join(", "))]
    UnknownDetector(String),
    #[error("a custom rule is name=regex, got {0:?}")]
    Shape(String),
    #[error("a custom rule's name is 1 to 32 of a-z, 0-9 and _, got {0:?}")]
    Name(String),
    #[error("at most {MAX_CUSTOM_RULES} custom rules")]
    TooMany,
    #[error("rule {name}: the pattern is {len} bytes, more than {MAX_PATTERN_BYTES}")]
    TooLong { name: String, len: usize },
    #[error("rule {name}: {why}")]
    Pattern { name: String, why: String },
    #[error(
        "rule {name}: it can match the empty string (or only a position, such as \\b or ^), which would redact between characters"
    )]
    Empty { name: String },
}

/// One detector: its regex, and what must be true of a match for it to count.
struct Rule {
    kind: String,
    regex: Regex,
    valid: Validator,
}

/// What a built-in detector's cheap prefilter needs in a text.
#[derive(Clone, Copy)]
enum Gate {
    /// An `@` (found with `memchr`, far faster than any automaton for one byte).
    At,
    /// One of the literal needles (indices into [`NEEDLES`]).
    Needle(&'static [usize]),
    /// A run of this many digits, single spaces or dashes between them allowed.
    DigitRun(usize),
    /// At least three dots.
    Dots,
    /// At least two colons.
    Colons,
}

/// The literal needles of the prefilter, matched ASCII case-insensitively.
const NEEDLES: [&str; 7] = ["eyj", "akia", "asia", "abia", "acca", "bearer", "://"];

/// What makes a finding count, beyond the regex (a Luhn check, an address that parses): the
/// part of the match to redact, or `None` when it is no finding.
type Validator = fn(&str) -> Option<std::ops::Range<usize>>;

fn builtin(name: &str) -> Option<(&'static str, Gate, Validator)> {
    let any = |s: &str| Some(0..s.len());
    Some(match name {
        "email" => (
            r"(?i)\b[a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*\.[a-z]{2,24}\b",
            Gate::At,
            any,
        ),
        "card" => (r"\b\d(?:[ -]?\d){12,}\b", Gate::DigitRun(13), luhn),
        "jwt" => (
            r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}",
            Gate::Needle(&[0]),
            any,
        ),
        "aws_key" => (
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
            Gate::Needle(&[1, 2, 3, 4]),
            any,
        ),
        "bearer" => (
            r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/-]{8,}=*)",
            Gate::Needle(&[5]),
            any,
        ),
        "url_password" => (
            r"(?i)\b[a-z][a-z0-9+.-]{0,20}://[^\s:/@]{0,128}:(?P<secret>[^\s@/]{1,256})@",
            Gate::Needle(&[6]),
            any,
        ),
        "ipv4" => (r"\b(?:\d{1,3}\.){3}\d{1,3}\b", Gate::Dots, |s| {
            s.parse::<std::net::Ipv4Addr>().is_ok().then(|| 0..s.len())
        }),
        // Ending in a hex digit, so `fe80::1:` (an address, then a colon) is the address; a
        // zone (`%eth0`) is left after it.
        "ipv6" => (
            r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{1,4}",
            Gate::Colons,
            |s| s.parse::<std::net::Ipv6Addr>().is_ok().then(|| 0..s.len()),
        ),
        _ => return None,
    })
}

/// The card number in a run of digits (single spaces or dashes between them): the whole run
/// if it passes the Luhn check, else the longest group-aligned part of 13 to 19 digits that
/// does (`4111 1111 1111 1111 123`: the first four groups).
fn luhn(candidate: &str) -> Option<std::ops::Range<usize>> {
    let digits: Vec<(usize, u32)> = candidate
        .char_indices()
        .filter_map(|(i, c)| c.to_digit(10).map(|d| (i, d)))
        .collect();
    let n = digits.len();
    if (13..=19).contains(&n) && luhn_ok(digits.iter().map(|d| d.1).collect()) {
        return Some(0..candidate.len());
    }
    // A window may start where a group starts and end where one ends.
    let bytes = candidate.as_bytes();
    let starts_group = |k: usize| k == 0 || !bytes[digits[k].0 - 1].is_ascii_digit();
    let ends_group = |k: usize| k + 1 == n || !bytes[digits[k].0 + 1].is_ascii_digit();
    for len in (13..=19.min(n)).rev() {
        for start in 0..=(n - len) {
            let end = start + len - 1;
            if starts_group(start)
                && ends_group(end)
                && luhn_ok(digits[start..=end].iter().map(|d| d.1).collect())
            {
                return Some(digits[start].0..digits[end].0 + 1);
            }
        }
    }
    None
}

/// The Luhn check of a card number's digits.
fn luhn_ok(digits: Vec<u32>) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The longest run of digits in `text` with at most one space or dash between two of them.
fn digit_run(text: &[u8]) -> usize {
    let (mut best, mut run, mut sep) = (0, 0, false);
    for &b in text {
        if b.is_ascii_digit() {
            run += 1;
            sep = false;
            best = best.max(run);
        } else if (b == b' ' || b == b'-') && run > 0 && !sep {
            sep = true;
        } else {
            run = 0;
            sep = false;
        }
    }
    best
}

/// A compiled rule set: the tenant's detectors and custom rules.
pub struct Redactor {
    builtins: Vec<(Rule, Gate)>,
    needles: Option<AhoCorasick>,
    custom: Vec<Rule>,
    custom_set: Option<RegexSet>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self
            .builtins
            .iter()
            .map(|(r, _)| r.kind.as_str())
            .chain(self.custom.iter().map(|r| r.kind.as_str()))
            .collect();
        f.debug_struct("Redactor").field("rules", &kinds).finish()
    }
}

/// The detector names a setting asks for: `default`, `none`, or a comma list (which may
/// include `default`).
pub fn detectors(setting: &str) -> Result<Vec<&'static str>, RuleError> {
    let mut out: Vec<&'static str> = Vec::new();
    for word in setting.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let word = word.to_ascii_lowercase();
        match word.as_str() {
            "none" | "off" => {}
            "default" | "on" => out.extend(DEFAULT_DETECTORS),
            w => match DETECTORS.iter().find(|d| **d == w) {
                Some(d) => out.push(d),
                None => return Err(RuleError::UnknownDetector(word)),
            },
        }
    }
    out.sort_unstable_by_key(|d| DETECTORS.iter().position(|x| x == d));
    out.dedup();
    Ok(out)
}

/// A custom rule, `name=regex`, checked and compiled.
fn custom_rule(spec: &str) -> Result<Rule, RuleError> {
    let (name, pattern) = spec
        .split_once('=')
        .ok_or_else(|| RuleError::Shape(spec.chars().take(64).collect()))?;
    let name = name.trim();
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(RuleError::Name(name.chars().take(64).collect()));
    }
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(RuleError::TooLong {
            name: name.into(),
            len: pattern.len(),
        });
    }
    let regex = RegexBuilder::new(pattern)
        .size_limit(COMPILED_LIMIT)
        .dfa_size_limit(COMPILED_LIMIT)
        .build()
        .map_err(|e| RuleError::Pattern {
            name: name.into(),
            why: e.to_string(),
        })?;
    // Matching nothing anywhere (`a*`, `\b`, `^`) would redact between characters.
    let zero_width = regex_syntax::parse(pattern)
        .map(|h| h.properties().minimum_len() == Some(0))
        .unwrap_or(true);
    if zero_width || regex.is_match("") {
        return Err(RuleError::Empty { name: name.into() });
    }
    Ok(Rule {
        kind: name.to_string(),
        regex,
        valid: |s| Some(0..s.len()),
    })
}

impl Redactor {
    /// The rule set of `detectors` (see [`detectors`]) and `custom` rules (`name=regex`).
    pub fn new(detector_setting: &str, custom: &[String]) -> Result<Redactor, RuleError> {
        let mut builtins = Vec::new();
        for name in detectors(detector_setting)? {
            let Some((pattern, gate, valid)) = builtin(name) else {
                continue;
            };
            let regex = Regex::new(pattern).map_err(|e| RuleError::Pattern {
                name: name.into(),
                why: e.to_string(),
            })?;
            builtins.push((
                Rule {
                    kind: name.to_string(),
                    regex,
                    valid,
                },
                gate,
            ));
        }
        if custom.len() > MAX_CUSTOM_RULES {
            return Err(RuleError::TooMany);
        }
        let custom: Vec<Rule> = custom
            .iter()
            .map(|c| custom_rule(c))
            .collect::<Result<_, _>>()?;
        let custom_set = if custom.is_empty() {
            None
        } else {
            let set = RegexSetBuilder::new(custom.iter().map(|r| r.regex.as_str()))
                .size_limit(COMPILED_LIMIT * 4)
                .dfa_size_limit(COMPILED_LIMIT * 4)
                .build()
                .map_err(|e| RuleError::Pattern {
                    name: "(the set of custom rules)".into(),
                    why: e.to_string(),
                })?;
            Some(set)
        };
        let needles = if builtins.iter().any(|(_, g)| matches!(g, Gate::Needle(_))) {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(NEEDLES)
                .ok()
        } else {
            None
        };
        Ok(Redactor {
            builtins,
            needles,
            custom,
            custom_set,
        })
    }

    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.builtins.is_empty() && self.custom.is_empty()
    }

    /// `text` with every finding replaced; each finding's kind goes to `found`.
    pub fn redact<'t>(&self, text: &'t str, found: &mut Vec<String>) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        if let Some(set) = &self.custom_set {
            for i in set.matches(text).iter() {
                if let Some(rule) = self.custom.get(i) {
                    out = apply(rule, out, found);
                }
            }
        }
        if self.builtins.is_empty() {
            return out;
        }
        let mut seen = [false; NEEDLES.len()];
        if let Some(ac) = &self.needles {
            for m in ac.find_iter(out.as_bytes()) {
                seen[m.pattern().as_usize()] = true;
            }
        }
        let mut run = None;
        for (rule, gate) in &self.builtins {
            let open = match gate {
                Gate::Needle(ids) => ids.iter().any(|&i| seen[i]),
                Gate::DigitRun(n) => *run.get_or_insert_with(|| digit_run(out.as_bytes())) >= *n,
                Gate::At => memchr::memchr(b'@', out.as_bytes()).is_some(),
                Gate::Dots => memchr::memchr_iter(b'.', out.as_bytes()).nth(2).is_some(),
                Gate::Colons => memchr::memchr_iter(b':', out.as_bytes()).nth(1).is_some(),
            };
            if open {
                out = apply(rule, out, found);
            }
        }
        out
    }

    /// Redacts a record's `msg` and the string values of its `attrs`; the kinds found, one
    /// entry a finding.
    pub fn redact_record(&self, r: &mut LogRecord) -> Vec<String> {
        let mut found = Vec::new();
        if self.is_empty() {
            return found;
        }
        if let Cow::Owned(msg) = self.redact(&r.msg, &mut found) {
            r.msg = msg;
        }
        if r.attrs.len() > 2 {
            let before = found.len();
            // Attribute text is JSON. Without escapes (`\u0040`, `\/`, `\t`) it holds each
            // value's text as is: a finding in it is a finding in a value or a key, and only
            // then is it parsed and its values rewritten. With escapes, or with custom rules
            // (which may be anchored to a whole value), every value is looked at decoded.
            let decode =
                self.custom_set.is_some() || memchr::memchr(b'\\', r.attrs.as_bytes()).is_some();
            let hit = decode || {
                let mut probe = Vec::new();
                !matches!(self.redact(&r.attrs, &mut probe), Cow::Borrowed(_))
            };
            if hit {
                if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&r.attrs) {
                    self.redact_value(&mut v, &mut found);
                    if found.len() > before {
                        r.attrs = v.to_string();
                    }
                }
            }
        }
        found
    }

    fn redact_value(&self, v: &mut serde_json::Value, found: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => {
                if let Cow::Owned(new) = self.redact(s, found) {
                    *s = new;
                }
            }
            serde_json::Value::Array(items) => {
                for i in items {
                    self.redact_value(i, found);
                }
            }
            serde_json::Value::Object(map) => {
                for (_, i) in map.iter_mut() {
                    self.redact_value(i, found);
                }
            }
            _ => {}
        }
    }
}

/// `text` with `rule`'s valid matches replaced (only the `secret` group when it has one).
fn apply<'t>(rule: &Rule, text: Cow<'t, str>, found: &mut Vec<String>) -> Cow<'t, str> {
    let secret = rule.regex.capture_names().any(|n| n == Some("secret"));
    let mut count = 0usize;
    let replaced = rule.regex.replace_all(&text, |c: &Captures| {
        let whole = c.get(0).map_or("", |m| m.as_str());
        let target = if secret { c.name("secret") } else { c.get(0) };
        let Some(t) = target else {
            return whole.to_string();
        };
        let Some(part) = (rule.valid)(t.as_str()) else {
            return whole.to_string();
        };
        count += 1;
        // Offsets within the whole match: the target's, then the part of it to redact.
        let at = t.start() - c.get(0).map_or(0, |m| m.start());
        let (from, to) = (at + part.start, at + part.end);
        format!("{}[REDACTED:{}]{}", &whole[..from], rule.kind, &whole[to..])
    });
    if count == 0 {
        return text;
    }
    found.extend(std::iter::repeat_n(rule.kind.clone(), count));
    Cow::Owned(replaced.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(setting: &str, custom: &[&str], text: &str) -> (String, Vec<String>) {
        let custom: Vec<String> = custom.iter().map(|s| s.to_string()).collect();
        let r = Redactor::new(setting, &custom).expect("rules");
        let mut found = Vec::new();
        let out = r.redact(text, &mut found).into_owned();
        (out, found)
    }

    #[test]
    fn each_detector_finds_its_kind_and_leaves_lookalikes() {
        let cases = [
            (
                "mail bob.smith+x@example.co.uk now",
                "mail [REDACTED:email] now",
            ),
            ("card 4111 1111 1111 1111 ok", "card [REDACTED:card] ok"),
            (
                "card 4111-1111-1111-1112 fails luhn",
                "card 4111-1111-1111-1112 fails luhn",
            ),
            ("order 1234567890123 id", "order 1234567890123 id"),
            (
                "at 2024-01-01 12:00:00.123456 ok",
                "at 2024-01-01 12:00:00.123456 ok",
            ),
            (
                "tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX2hlcmU end",
                "tok [REDACTED:jwt] end",
            ),
            (
                "key AKIAIOSFODNN7EXAMPLE used",
                "key [REDACTED:aws_key] used",
            ),
            (
                "Authorization: Bearer abc.DEF-123_xyz==",
                "Authorization: Bearer [REDACTED:bearer]",
            ),
            (
                "dial postgres://app:s3cr3t@db:5432/x",
                "dial postgres://app:[REDACTED:url_password]@db:5432/x",
            ),
            ("from 10.0.0.1 port", "from 10.0.0.1 port"),
            (
                "via https://svc:hunter22@db.internal/x",
                "via https://svc:[REDACTED:url_password]@db.internal/x",
            ),
            (
                "cache redis://:s3cret@cache:6379",
                "cache redis://:[REDACTED:url_password]@cache:6379",
            ),
            (
                "paid 4111 1111 1111 1111 123 ok",
                "paid [REDACTED:card] 123 ok",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(red("default", &[], text).0, want, "{text}");
        }
        assert_eq!(
            red("ipv4,ipv6", &[], "from 10.0.0.1 and fe80::1 and 2001:db8::8a2e:370:7334, not 999.1.1.1 or 12:30:45").0,
            "from [REDACTED:ipv4] and [REDACTED:ipv6] and [REDACTED:ipv6], not 999.1.1.1 or 12:30:45"
        );
        assert_eq!(
            red("ipv6", &[], "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334 and 2001:db8:0:0:0:0:0:1, fe80::1: refused, fe80::1%eth0 up, mac aa:bb:cc:dd:ee:ff").0,
            "full [REDACTED:ipv6] and [REDACTED:ipv6], [REDACTED:ipv6]: refused, [REDACTED:ipv6]%eth0 up, mac aa:bb:cc:dd:ee:ff"
        );
        assert_eq!(red("none", &[], "bob@example.com").0, "bob@example.com");
    }

    #[test]
    fn custom_rules_run_first_and_bad_ones_are_refused() {
        let (out, found) = red(
            "default",
            &["employee=EMP-\\d{6}", "ssn=\\b\\d{3}-\\d{2}-\\d{4}\\b"],
            "EMP-123456 ssn 123-45-6789 mail a@b.io",
        );
        assert_eq!(
            out,
            "[REDACTED:employee] ssn [REDACTED:ssn] mail [REDACTED:email]"
        );
        assert_eq!(found, ["employee", "ssn", "email"]);
        let bad = |c: &str| Redactor::new("none", &[c.to_string()]).err();
        assert!(matches!(bad("noequals"), Some(RuleError::Shape(_))));
        assert!(matches!(bad("Bad Name=x"), Some(RuleError::Name(_))));
        assert!(matches!(bad("x=("), Some(RuleError::Pattern { .. })));
        assert!(matches!(bad("x=a*"), Some(RuleError::Empty { .. })));
        assert!(matches!(bad(r"x=\b"), Some(RuleError::Empty { .. })));
        assert!(matches!(bad("x=(?m)^"), Some(RuleError::Empty { .. })));
        assert!(matches!(
            bad(&format!("x={}", "a".repeat(2000))),
            Some(RuleError::TooLong { .. })
        ));
        // A pattern whose compiled form is huge is refused, not built.
        assert!(matches!(
            bad("x=(\\w{100}){100}"),
            Some(RuleError::Pattern { .. })
        ));
        assert!(matches!(
            Redactor::new("email,phone", &[]).err(),
            Some(RuleError::UnknownDetector(_))
        ));
        let many: Vec<String> = (0..40).map(|i| format!("r{i}=x{i}y")).collect();
        assert!(matches!(
            Redactor::new("none", &many).err(),
            Some(RuleError::TooMany)
        ));
    }

    #[test]
    fn attrs_values_are_redacted_and_keys_and_shape_kept() {
        let r = Redactor::new("default", &[]).expect("rules");
        let mut rec = LogRecord {
            msg: "login by carol@example.org".into(),
            attrs: r#"{"user":{"email":"carol@example.org","id":7},"tags":["x","AKIAIOSFODNN7EXAMPLE"],"@timestamp":"t"}"#.into(),
            ..LogRecord::default()
        };
        let found = r.redact_record(&mut rec);
        assert_eq!(rec.msg, "login by [REDACTED:email]");
        let v: serde_json::Value = serde_json::from_str(&rec.attrs).expect("json");
        assert_eq!(v["user"]["email"], "[REDACTED:email]");
        assert_eq!(v["user"]["id"], 7);
        assert_eq!(v["tags"][1], "[REDACTED:aws_key]");
        assert_eq!(v["@timestamp"], "t");
        assert_eq!(found.len(), 3);
        // Escaped JSON is read decoded: `\u0040` is an `@`, `\/` a `/`, `\t` a tab.
        let mut escaped = LogRecord {
            attrs: r#"{"e":"bob\u0040example.com","u":"postgres:\/\/app:pw1@db","h":"Bearer\tabcdefgh12345"}"#.into(),
            ..LogRecord::default()
        };
        assert_eq!(r.redact_record(&mut escaped).len(), 3, "{}", escaped.attrs);
        let v: serde_json::Value = serde_json::from_str(&escaped.attrs).expect("json");
        assert_eq!(v["e"], "[REDACTED:email]");
        assert_eq!(v["u"], "postgres://app:[REDACTED:url_password]@db");
        assert_eq!(v["h"], "Bearer\t[REDACTED:bearer]");
        // A tenant's anchored rule sees each value whole.
        let anchored = Redactor::new("none", &[r"acct=^\d{8}$".to_string()]).expect("rules");
        let mut acct = LogRecord {
            attrs: r#"{"a":"12345678","b":"x12345678"}"#.into(),
            ..LogRecord::default()
        };
        assert_eq!(anchored.redact_record(&mut acct), ["acct"]);
        assert!(acct.attrs.contains("[REDACTED:acct]") && acct.attrs.contains("x12345678"));
        // A record with nothing to find is not rewritten.
        let mut clean = LogRecord {
            msg: "GET /health 200".into(),
            attrs: r#"{"path":"/health"}"#.into(),
            ..LogRecord::default()
        };
        let before = clean.clone();
        assert!(r.redact_record(&mut clean).is_empty());
        assert_eq!(clean, before);
    }

    #[test]
    fn digit_runs_allow_single_separators() {
        assert_eq!(digit_run(b"4111 1111-1111 1111"), 16);
        assert_eq!(digit_run(b"12  34"), 2);
        assert_eq!(digit_run(b"2024-01-01 12:00"), 10);
    }
}
