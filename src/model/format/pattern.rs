//! `--pattern`: a user's own line format, as a regex with named groups (`ts`, `level`, `host`,
//! `service`, `msg`, `trace_id`; any other name goes to `attrs`) or grok-style
//! `%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:msg}`.

use regex::Regex;
use serde_json::{Map, Value};

use super::stamp::{self, Clock};
use super::ParsedLine;

/// The grok names we expand (the common subset of Logstash's patterns).
const GROK: &[(&str, &str)] = &[
    (
        "TIMESTAMP_ISO8601",
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?",
    ),
    ("HTTPDATE", r"\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}"),
    ("SYSLOGTIMESTAMP", r"\w{3} +\d{1,2} \d{2}:\d{2}:\d{2}"),
    (
        "DATESTAMP",
        r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}[- T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?",
    ),
    (
        "LOGLEVEL",
        r"(?i:trace|debug|info|notice|warn(?:ing)?|err(?:or)?|crit(?:ical)?|fatal|severe|emerg|alert)",
    ),
    ("IPORHOST", r"[\w.:-]+"),
    ("HOSTNAME", r"[\w.-]+"),
    ("IP", r"[\d.]+|[\da-fA-F:]+"),
    ("NUMBER", r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"),
    ("POSINT", r"\d+"),
    ("INT", r"[+-]?\d+"),
    ("WORD", r"\w+"),
    ("USERNAME", r"[\w.@-]+"),
    ("NOTSPACE", r"\S+"),
    ("SPACE", r"\s*"),
    ("QS", r#""(?:[^"\\]|\\.)*""#),
    ("PATH", r"[^\s?#]+"),
    ("URIPATHPARAM", r"\S+"),
    ("UUID", r"[\da-fA-F]{8}-(?:[\da-fA-F]{4}-){3}[\da-fA-F]{12}"),
    ("DATA", r".*?"),
    ("GREEDYDATA", r".*"),
];

/// A compiled `--pattern`.
#[derive(Debug, Clone)]
pub struct Pattern {
    re: Regex,
}

/// Expands `%{NAME}` and `%{NAME:field}` into regex groups.
fn expand_grok(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("%{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed %{{ in pattern near {:?}", &rest[i..]))?;
        let (name, field) = match after[..end].split_once(':') {
            Some((n, f)) => (n, Some(f)),
            None => (&after[..end], None),
        };
        let body = GROK
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                let known: Vec<&str> = GROK.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown grok pattern %{{{name}}}; known: {}",
                    known.join(", ")
                )
            })?;
        match field {
            Some(f) => out.push_str(&format!("(?P<{f}>{body})")),
            None => out.push_str(&format!("(?:{body})")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Pattern {
    /// Compiles a pattern; the error says what is wrong with it.
    pub fn compile(text: &str) -> Result<Pattern, String> {
        let expanded = expand_grok(text)?;
        let re =
            Regex::new(&expanded).map_err(|e| format!("--pattern is not a valid regex: {e}"))?;
        if re.capture_names().flatten().next().is_none() {
            return Err("--pattern has no named groups; name at least `ts` and `msg`, e.g. (?P<ts>\\S+ \\S+) (?P<msg>.*)".into());
        }
        Ok(Pattern { re })
    }

    pub fn parse(&self, line: &str, clock: &Clock) -> Option<ParsedLine> {
        let c = self.re.captures(line)?;
        let mut p = ParsedLine::default();
        let mut attrs = Map::new();
        let mut ts = None;
        for name in self.re.capture_names().flatten() {
            let Some(v) = c.name(name).map(|m| m.as_str()) else {
                continue;
            };
            match name {
                "ts" | "timestamp" | "time" => {
                    ts = stamp::find(v, clock, None)
                        .map(|f| f.ts)
                        .or_else(|| super::parse_ts(&Value::String(v.to_string())));
                    ts?;
                }
                "level" => p.level = Some(crate::model::level::normalize(v)),
                "host" => p.host = Some(v.to_string()),
                "service" => p.service = Some(v.to_string()),
                "trace_id" => p.trace_id = Some(v.to_string()),
                "msg" | "message" => p.msg = v.to_string(),
                other => {
                    attrs.insert(other.to_string(), Value::String(v.to_string()));
                }
            }
        }
        // Without a `ts` group, a stamp anywhere near the start; without `msg`, the whole line.
        p.ts = match ts {
            Some(t) => t,
            None => stamp::find(line, clock, None)?.ts,
        };
        if !self
            .re
            .capture_names()
            .flatten()
            .any(|n| n == "msg" || n == "message")
        {
            p.msg = line.to_string();
        }
        p.attrs = attrs;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grok_and_regex_patterns() {
        let clock = Clock::new(1_709_251_200_000_000);
        let p = Pattern::compile(
            "%{TIMESTAMP_ISO8601:ts} <%{WORD:thread}> %{LOGLEVEL:level}: %{GREEDYDATA:msg}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let got = p
            .parse("2024-01-15 10:30:45.5 <main> error: disk full", &clock)
            .unwrap_or_default();
        assert_eq!(got.ts, 1_705_314_645_500_000);
        assert_eq!(
            (got.level.as_deref(), got.msg.as_str()),
            (Some("ERROR"), "disk full")
        );
        assert_eq!(got.attrs.get("thread"), Some(&Value::from("main")));
        let p = Pattern::compile(r"^(?P<host>\S+) @ (?P<ts>\d+) (?P<msg>.*)$")
            .unwrap_or_else(|e| panic!("{e}"));
        let got = p.parse("web-1 @ 1705314645 ok", &clock).unwrap_or_default();
        assert_eq!(
            (got.host.as_deref(), got.ts),
            (Some("web-1"), 1_705_314_645_000_000)
        );
        assert!(Pattern::compile("%{NOPE:x}").is_err_and(|e| e.contains("unknown grok")));
        assert!(Pattern::compile("(unclosed").is_err());
        assert!(Pattern::compile("no groups").is_err());
    }
}
