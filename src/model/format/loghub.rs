//! The loghub system formats: all 16 systems of loghub's 2k samples (HDFS, Hadoop, Spark,
//! Zookeeper, BGL, HPC, Thunderbird, Windows, Linux, Mac, Android, HealthApp, Apache, OpenSSH,
//! OpenStack, Proxifier).
//!
//! Each format is the `log_format` string of logpai/logparser's benchmark, turned into a regex
//! exactly as Drain does it (`<Header>` → lazy named group, runs of spaces → `\s+`, anchored, the
//! line trimmed first), so the fields we extract equal loghub's structured CSVs.

use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
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

/// Every supported loghub system; more specific formats first (OpenSSH and Mac lines also fit
/// Linux's; many lines fit HPC's six loose fields, so it comes last). Each timestamp function
/// is strict, so a line of one system does not parse as another's.
pub static LOGHUB_SYSTEMS: [LoghubSystem; 16] = [
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
            let y: i32 = d.next().filter(|y| y.len() == 2)?.parse().ok()?;
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
        "Thunderbird",
        r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>",
        None,
        Some("User"),
        &["Timestamp", "Date", "Month", "Day", "Time"],
        |c, _| {
            let epoch = epoch_seconds(c.name("Timestamp")?.as_str())?;
            month_number(c.name("Month")?.as_str())?;
            clock(c.name("Time")?.as_str())?;
            Some(epoch)
        }
    ),
    system!(
        "BGL",
        "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
        Some("Level"),
        Some("Node"),
        &["Timestamp", "Date", "Time"],
        |c, _| {
            // `2005-06-03-15.42.50.675872`: local time; the epoch seconds are the instant.
            let epoch = epoch_seconds(c.name("Timestamp")?.as_str())?;
            let (date, rest) = c.name("Time")?.as_str().split_at_checked(10)?;
            NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            let mut p = rest.strip_prefix('-')?.split('.');
            let (_h, _m) = (p.next()?, p.next()?);
            let sec: i64 = p.next()?.parse().ok()?;
            let frac = p.next().map_or(Some(0), fraction_micros)?;
            let same_second = epoch / 1_000_000 % 60 == sec;
            Some(if same_second { epoch + i64::from(frac) } else { epoch })
        }
    ),
    system!(
        "Windows",
        "<Date> <Time>, <Level>                  <Component>    <Content>",
        Some("Level"),
        None,
        &["Date", "Time"],
        |c, _| iso_date_time(c)
    ),
    system!(
        "OpenStack",
        r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
        Some("Level"),
        None,
        &["Date", "Time"],
        |c, _| iso_date_time(c)
    ),
    system!(
        "Hadoop",
        r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
        Some("Level"),
        None,
        &["Date", "Time"],
        |c, _| iso_date_time(c)
    ),
    system!(
        "Android",
        "<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
        Some("Level"),
        None,
        &["Date", "Time"],
        |c, year| {
            // `03-17 16:13:38.811`, no year.
            let (m, d) = c.name("Date")?.as_str().split_once('-')?;
            let (h, mi, s, us) = clock(c.name("Time")?.as_str())?;
            civil_micros(year, m.parse().ok()?, d.parse().ok()?, h, mi, s, us)
        }
    ),
    system!(
        "HealthApp",
        r"<Time>\|<Component>\|<Pid>\|<Content>",
        None,
        None,
        &["Time"],
        |c, _| {
            // `20171223-22:15:29:606` (milliseconds not always padded: `:6` is 6 ms).
            let (date, clock) = c.name("Time")?.as_str().split_once('-')?;
            let d = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
            let mut p = clock.split(':');
            let h = p.next()?.parse().ok()?;
            let mi = p.next()?.parse().ok()?;
            let s = p.next()?.parse().ok()?;
            let ms: u32 = p.next()?.parse().ok()?;
            if ms > 999 || p.next().is_some() {
                return None;
            }
            civil_micros(d.year(), d.month(), d.day(), h, mi, s, ms * 1000)
        }
    ),
    system!(
        "Proxifier",
        r"\[<Time>\] <Program> - <Content>",
        None,
        None,
        &["Time"],
        |c, year| {
            // `10.30 16:49:06`: month.day, no year.
            let (md, t) = c.name("Time")?.as_str().split_once(' ')?;
            let (m, d) = md.split_once('.')?;
            let (h, mi, s, us) = clock(t)?;
            civil_micros(year, m.parse().ok()?, d.parse().ok()?, h, mi, s, us)
        }
    ),
    system!(
        "Mac",
        r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
        None,
        Some("User"),
        &["Month", "Date", "Time"],
        |c, year| {
            let m = month_number(c.name("Month")?.as_str())?;
            let day = c.name("Date")?.as_str().parse().ok()?;
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
    system!(
        "HPC",
        "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
        None,
        Some("Node"),
        &["Time"],
        |c, _| epoch_seconds(c.name("Time")?.as_str())
    ),
];

/// `Date` as `yyyy-MM-dd` and `Time` as `HH:mm:ss` with an optional fraction (Windows,
/// OpenStack, Hadoop).
fn iso_date_time(c: &Captures) -> Option<Micros> {
    let d = NaiveDate::parse_from_str(c.name("Date")?.as_str(), "%Y-%m-%d").ok()?;
    let (h, mi, s, us) = clock(c.name("Time")?.as_str())?;
    civil_micros(d.year(), d.month(), d.day(), h, mi, s, us)
}

/// Epoch seconds as loghub writes them (9 or 10 digits, 1973–2286) to µs.
fn epoch_seconds(s: &str) -> Option<Micros> {
    if !(9..=10).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    crate::model::epoch::from_text(s)
}

/// A decimal fraction of a second (`675872`, `5`) to µs.
fn fraction_micros(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u32>().ok()? * 10u32.pow(6 - s.len() as u32))
}

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
