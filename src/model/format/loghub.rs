//! The loghub system formats (HDFS, Zookeeper, Spark, Linux, OpenSSH, Apache).
//!
//! Each format is the `log_format` string of logpai/logparser's benchmark, turned into a regex
//! exactly as Drain does it (`<Header>` → lazy named group, runs of spaces → `\s+`, anchored, the
//! line trimmed first), so the fields we extract equal loghub's structured CSVs.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::{Map, Value};

use super::timestamp::{civil_micros, clock, month_number};
use super::ParsedLine;
use crate::model::Micros;

/// One loghub system: its header template and how its headers map onto our columns.
pub struct LoghubSystem {
    pub name: &'static str,
    /// The logparser `log_format`.
    pub log_format: &'static str,
    regex: LazyLock<Regex>,
    /// Header holding the level, if the system has one.
    level_header: Option<&'static str>,
    /// Header holding the host name, if the system has one.
    host_header: Option<&'static str>,
    /// Headers that make up the timestamp (not copied into `attrs`).
    time_headers: &'static [&'static str],
    ts: fn(&Captures, i32) -> Option<Micros>,
}

impl std::fmt::Debug for LoghubSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoghubSystem")
            .field("name", &self.name)
            .finish()
    }
}

/// Turns a logparser `log_format` into its Drain regex.
fn drain_regex(log_format: &str) -> Regex {
    let mut re = String::from("^");
    let mut rest = log_format;
    let spaces = |s: &str| {
        let mut out = String::new();
        let mut in_space = false;
        for c in s.chars() {
            if c == ' ' {
                if !in_space {
                    out.push_str(r"\s+");
                }
                in_space = true;
            } else {
                out.push(c);
                in_space = false;
            }
        }
        out
    };
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        re.push_str(&spaces(&rest[..start]));
        let header = &rest[start + 1..start + len];
        re.push_str(&format!("(?P<{header}>.*?)"));
        rest = &rest[start + len + 1..];
    }
    re.push_str(&spaces(rest));
    re.push('$');
    // The formats are constants of this file; the unit test below compiles every one.
    Regex::new(&re).unwrap_or_else(|_| Regex::new("$^").expect("empty regex compiles"))
}

macro_rules! system {
    ($name:expr, $fmt:expr, $level:expr, $host:expr, $time:expr, $ts:expr) => {
        LoghubSystem {
            name: $name,
            log_format: $fmt,
            regex: LazyLock::new(|| drain_regex($fmt)),
            level_header: $level,
            host_header: $host,
            time_headers: $time,
            ts: $ts,
        }
    };
}

/// Every supported loghub system; more specific formats first (OpenSSH lines also fit Linux's).
pub static LOGHUB_SYSTEMS: [LoghubSystem; 6] = [
    system!(
        "HDFS",
        "<Date> <Time> <Pid> <Level> <Component>: <Content>",
        Some("Level"),
        None,
        &["Date", "Time"],
        |c, _| {
            let d = digits(c.name("Date")?.as_str(), 6)?;
            let t = digits(c.name("Time")?.as_str(), 6)?;
            civil_micros(
                2000 + d / 10000,
                (d / 100 % 100) as u32,
                (d % 100) as u32,
                (t / 10000) as u32,
                (t / 100 % 100) as u32,
                (t % 100) as u32,
                0,
            )
        }
    ),
    system!(
        "Zookeeper",
        r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
        Some("Level"),
        None,
        &["Date", "Time"],
        |c, _| {
            let mut d = c.name("Date")?.as_str().split('-');
            let (y, m, day) = (
                d.next()?.parse().ok()?,
                d.next()?.parse().ok()?,
                d.next()?.parse().ok()?,
            );
            let (h, mi, s, us) = clock(c.name("Time")?.as_str())?;
            civil_micros(y, m, day, h, mi, s, us)
        }
    ),
    system!(
        "Spark",
        "<Date> <Time> <Level> <Component>: <Content>",
        Some("Level"),
        None,
        &["Date", "Time"],
        |c, _| {
            let mut d = c.name("Date")?.as_str().split('/');
            let y: i32 = d.next()?.parse().ok()?;
            let (m, day) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?);
            let (h, mi, s, us) = clock(c.name("Time")?.as_str())?;
            civil_micros(2000 + y, m, day, h, mi, s, us)
        }
    ),
    system!(
        "OpenSSH",
        r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
        None,
        Some("Component"),
        &["Date", "Day", "Time"],
        |c, year| {
            let m = month_number(c.name("Date")?.as_str())?;
            let day = c.name("Day")?.as_str().parse().ok()?;
            let (h, mi, s, us) = clock(c.name("Time")?.as_str())?;
            civil_micros(year, m, day, h, mi, s, us)
        }
    ),
    system!(
        "Linux",
        r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
        None,
        Some("Level"),
        &["Month", "Date", "Time"],
        |c, year| {
            let m = month_number(c.name("Month")?.as_str())?;
            let day = c.name("Date")?.as_str().parse().ok()?;
            let (h, mi, s, us) = clock(c.name("Time")?.as_str())?;
            civil_micros(year, m, day, h, mi, s, us)
        }
    ),
    system!(
        "Apache",
        r"\[<Time>\] \[<Level>\] <Content>",
        Some("Level"),
        None,
        &["Time"],
        |c, _| {
            // `Sun Dec 04 04:47:44 2005`
            let mut p = c.name("Time")?.as_str().split_whitespace();
            let _weekday = p.next()?;
            let m = month_number(p.next()?)?;
            let day = p.next()?.parse().ok()?;
            let (h, mi, s, us) = clock(p.next()?)?;
            let y = p.next()?.parse().ok()?;
            civil_micros(y, m, day, h, mi, s, us)
        }
    ),
];

fn digits(s: &str, len: usize) -> Option<i32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl LoghubSystem {
    /// The raw header fields of a line, as loghub's structured CSV has them.
    pub fn fields(&self, line: &str) -> Option<Vec<(String, String)>> {
        let caps = self.regex.captures(line.trim())?;
        Some(
            self.regex
                .capture_names()
                .flatten()
                .map(|n| {
                    let v = caps.name(n).map_or("", |m| m.as_str());
                    (n.to_string(), v.to_string())
                })
                .collect(),
        )
    }

    /// Parses a line into our columns; `year` is used where the format has none.
    pub fn parse(&self, line: &str, year: i32) -> Option<ParsedLine> {
        let caps = self.regex.captures(line.trim())?;
        let ts = (self.ts)(&caps, year)?;
        let mut parsed = ParsedLine {
            ts,
            ..ParsedLine::default()
        };
        let mut attrs = Map::new();
        for name in self.regex.capture_names().flatten() {
            let value = caps.name(name).map_or("", |m| m.as_str());
            if name == "Content" {
                parsed.msg = value.to_string();
            } else if Some(name) == self.level_header {
                parsed.level = Some(value.to_string());
            } else if Some(name) == self.host_header {
                parsed.host = Some(value.to_string());
            } else if !self.time_headers.contains(&name) && !value.is_empty() {
                attrs.insert(name.to_ascii_lowercase(), Value::String(value.to_string()));
            }
        }
        parsed.attrs = attrs;
        Some(parsed)
    }
}
