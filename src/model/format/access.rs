//! Web server access logs in the Common and Combined Log Formats (nginx and Apache defaults):
//! `1.2.3.4 - user [15/Jan/2024:10:30:45 +0000] "GET /x HTTP/1.1" 500 1234 "ref" "agent"`.
//! The level follows the status: 5xx ERROR, 4xx WARN, else INFO.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::stamp::{self, Clock};
use super::ParsedLine;

static CLF: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"^(?P<client>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\S+)(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?"#,
    )
    .ok()
});

pub(super) fn parse(line: &str, clock: &Clock) -> Option<ParsedLine> {
    let c = CLF.as_ref()?.captures(line)?;
    let time = c.name("time")?.as_str();
    let ts = stamp::find(time, clock, None)?.ts;
    let status: u16 = c.name("status")?.as_str().parse().ok()?;
    let mut attrs = Map::new();
    let mut put = |k: &str, v: Value| {
        attrs.insert(k.to_string(), v);
    };
    put("client", Value::from(c.name("client")?.as_str()));
    if let Some(u) = c.name("user").map(|u| u.as_str()).filter(|u| *u != "-") {
        put("user", Value::from(u));
    }
    let request = c.name("request")?.as_str();
    let mut parts = request.splitn(3, ' ');
    if let (Some(method), Some(path)) = (parts.next(), parts.next()) {
        put("method", Value::from(method));
        put("path", Value::from(path));
        if let Some(proto) = parts.next() {
            put("protocol", Value::from(proto));
        }
    }
    put("status", Value::from(status));
    if let Ok(bytes) = c.name("bytes")?.as_str().parse::<u64>() {
        put("bytes", Value::from(bytes));
    }
    for k in ["referer", "agent"] {
        if let Some(v) = c.name(k).map(|v| v.as_str()).filter(|v| *v != "-") {
            put(if k == "agent" { "user_agent" } else { k }, Value::from(v));
        }
    }
    let level = match status {
        500..=599 => "ERROR",
        400..=499 => "WARN",
        _ => "INFO",
    };
    Some(ParsedLine {
        ts,
        level: Some(level.into()),
        msg: line.to_string(),
        attrs,
        ..ParsedLine::default()
    })
}
