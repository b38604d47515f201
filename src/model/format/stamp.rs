//! Finding a timestamp near the start of any log line, in the shapes logs are written in: ISO 8601
//! (with or without zone and fraction), `2024/01/15 10:30:45`, `2024-01-15-10.30.45`,
//! `20240115-10:30:45:123`, `240115 103045`, `24/01/15 10:30:45`, `01/15/2024 10:30:45 AM`,
//! `15/Jan/2024:10:30:45 +0000`, `Jan 15 10:30:45`, `Mon Jan 15 10:30:45 2024`,
//! `15-Jan-2024 10:30:45`, `01-15 10:30:45.123`, `01.15 10:30:45`, glog's `I0115 10:30:45`, and
//! epoch seconds or milliseconds.
//!
//! A stamp may start at any of the first tokens of a line (after a space, `[`, `(`, `|`, `"`, `=`
//! or `,`), so a level, a host or a sequence number before it does not hide it. Shapes without a
//! year take the one that does not put the line in the future; shapes without a zone are read in
//! the file's zone (`--tz`, UTC by default).

use std::sync::LazyLock;

use chrono::{Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use regex::{Captures, Regex};

use crate::model::Micros;

/// Where stamps are read from: the reference time, a fixed year, and the zone of zone-less ones.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Now, for year inference and plausibility.
    pub now: Micros,
    /// The year of year-less stamps, when the user gives one.
    pub year: Option<i32>,
    /// The zone zone-less stamps were written in.
    pub zone: Zone,
}

/// A file's time zone: UTC, a fixed offset, or a named zone (DST-aware).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Fixed(chrono::FixedOffset),
    Named(chrono_tz::Tz),
}

impl Zone {
    pub const UTC: Zone = Zone::Named(chrono_tz::UTC);

    /// `UTC`, `+02:00`, `-0500` or an IANA name (`Europe/Berlin`).
    pub fn parse(text: &str) -> Option<Zone> {
        let t = text.trim();
        if let Some(off) = parse_offset(t) {
            return Some(Zone::Fixed(off));
        }
        t.parse::<chrono_tz::Tz>().ok().map(Zone::Named)
    }

    /// µs of a wall-clock time in this zone (an hour skipped by DST moves forward; a repeated
    /// one takes its first instance).
    fn micros(&self, local: NaiveDateTime) -> Option<Micros> {
        let pick = |r: LocalResult<i64>| match r {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
            LocalResult::None => None,
        };
        match self {
            Zone::Fixed(off) => pick(
                off.from_local_datetime(&local)
                    .map(|d| d.timestamp_micros()),
            ),
            Zone::Named(tz) => pick(tz.from_local_datetime(&local).map(|d| d.timestamp_micros()))
                .or_else(|| {
                    let later = local + chrono::Duration::hours(1);
                    pick(tz.from_local_datetime(&later).map(|d| d.timestamp_micros()))
                }),
        }
    }
}

impl Clock {
    pub fn new(now: Micros) -> Clock {
        Clock {
            now,
            year: None,
            zone: Zone::UTC,
        }
    }
}

/// The shapes, in the order they are tried at each position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    Iso,
    Slashed,
    DashDotted,
    Compact,
    Clf,
    Syslog,
    DayMonth,
    UsDate,
    YyMmDd,
    ShortCompact,
    MonthDay,
    MonthDotDay,
    Glog,
    Epoch,
}

/// What kind of stamp a line has: its shape and the token it starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StampKind {
    pub shape: Shape,
    pub token: u8,
}

/// A stamp found in a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    pub ts: Micros,
    pub kind: StampKind,
    /// Byte range of the stamp in the line.
    pub start: usize,
    pub end: usize,
    /// A level the stamp itself carries (glog's `E0115`).
    pub level: Option<&'static str>,
}

const MONTHS: &str = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec";
pub(super) const WEEKDAYS: &str = "Mon|Tue|Wed|Thu|Fri|Sat|Sun";

/// Zone abbreviations logs print (PostgreSQL's `%m`, `date`), with their offsets in minutes.
/// One that names several zones (`CST`: US Central or China; `IST`; `BST`) or is not listed is
/// not read as a zone: the stamp is read in `--tz`.
const ZONES: [(&str, i32); 26] = [
    ("UTC", 0),
    ("GMT", 0),
    ("WET", 0),
    ("WEST", 60),
    ("CET", 60),
    ("CEST", 120),
    ("EET", 120),
    ("EEST", 180),
    ("MSK", 180),
    ("SGT", 480),
    ("HKT", 480),
    ("JST", 540),
    ("KST", 540),
    ("AEST", 600),
    ("AEDT", 660),
    ("NZST", 720),
    ("NZDT", 780),
    ("EST", -300),
    ("EDT", -240),
    ("CDT", -300),
    ("MST", -420),
    ("MDT", -360),
    ("PST", -480),
    ("PDT", -420),
    ("AKST", -540),
    ("HST", -600),
];
const ZONE_NAMES: &str =
    "UTC|GMT|WES?T|CES?T|EES?T|MSK|SGT|HKT|JST|KST|AE[SD]T|NZ[SD]T|[EMP][SD]T|CDT|AKST|HST";

struct ShapeRe {
    shape: Shape,
    re: Regex,
}

static SHAPES: LazyLock<Vec<ShapeRe>> = LazyLock::new(|| {
    let frac = r"(?:[.,](?P<frac>\d{1,9}))?";
    let zone =
        format!(r"(?:\s?(?P<zone>Z|[+-]\d{{2}}:?\d{{2}}|[+-](?:0\d|1[0-4])|{ZONE_NAMES})\b)?");
    // A 12-hour clock's AM/PM, after the seconds and their fraction.
    let hms = r"(?P<h>\d{1,2}):(?P<mi>\d{2}):(?P<s>\d{2})";
    let ampm = r"(?:\s?(?P<ampm>[AaPp][Mm])\b)?";
    // One or two spaces between date and time (apt writes `2025-06-24  14:36:25`).
    let gap = r"(?:T| {1,2})";
    let list = [
        (Shape::Iso, format!(r"^(?P<y>\d{{4}})-(?P<m>\d{{2}})-(?P<d>\d{{2}}){gap}{hms}{frac}{ampm}{zone}")),
        (Shape::Slashed, format!(r"^(?P<y>\d{{4}})/(?P<m>\d{{1,2}})/(?P<d>\d{{1,2}}){gap}{hms}{frac}{ampm}{zone}")),
        (Shape::DashDotted, r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})-(?P<h>\d{2})\.(?P<mi>\d{2})\.(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?".to_string()),
        (Shape::Compact, r"^(?P<y>(?:19|20)\d{2})(?P<m>[01]\d)(?P<d>[0-3]\d)[T -]?(?P<h>[0-2]\d):?(?P<mi>[0-5]\d):?(?P<s>[0-6]\d)(?:[.,:](?P<frac>\d{1,9}))?(?P<zone>Z)?\b".to_string()),
        (Shape::Clf, format!(r"^(?P<d>\d{{2}})/(?P<mon>{MONTHS})/(?P<y>\d{{4}}):{hms}{frac}(?:\s(?P<zone>[+-]\d{{4}}))?")),
        (Shape::Syslog, format!(r"^(?:(?:{WEEKDAYS})[a-z]*,?\s+)?(?P<mon>{MONTHS})[a-z]*\.?\s+(?P<d>\d{{1,2}})(?:,?\s+(?P<y>\d{{4}}))?,?\s+{hms}{frac}{ampm}(?:\s+(?P<y2>\d{{4}})\b)?{zone}")),
        (Shape::DayMonth, format!(r"^(?P<d>\d{{1,2}})[ -](?P<mon>{MONTHS})[a-z]*[ -](?P<y>\d{{4}})[ :T]+{hms}{frac}{ampm}{zone}")),
        (Shape::UsDate, format!(r"^(?P<m>\d{{1,2}})/(?P<d>\d{{1,2}})/(?P<y>\d{{4}}),?\s+{hms}{frac}{ampm}{zone}")),
        (Shape::YyMmDd, format!(r"^(?P<yy>\d{{2}})/(?P<m>\d{{2}})/(?P<d>\d{{2}})\s+{hms}{frac}")),
        (Shape::ShortCompact, r"^(?P<yy>\d{2})(?P<m>[01]\d)(?P<d>[0-3]\d)\s+(?P<h>[0-2]\d)(?P<mi>[0-5]\d)(?P<s>[0-6]\d)\b".to_string()),
        (Shape::MonthDay, format!(r"^(?P<m>\d{{2}})-(?P<d>\d{{2}})\s+{hms}{frac}")),
        (Shape::MonthDotDay, format!(r"^(?P<m>\d{{2}})\.(?P<d>\d{{2}})\s+{hms}{frac}")),
        (Shape::Glog, format!(r"^(?P<lvl>[IWEF])(?P<m>[01]\d)(?P<d>[0-3]\d)\s+{hms}{frac}")),
        (Shape::Epoch, r"^(?P<epoch>1\d{9}|1\d{12})(?:\.(?P<frac>\d{1,9}))?\b".to_string()),
    ];
    list.into_iter()
        .filter_map(|(shape, re)| Regex::new(&re).ok().map(|re| ShapeRe { shape, re }))
        .collect()
});

/// How far into a line a stamp may start, in bytes and in tokens.
const MAX_START: usize = 160;
const MAX_TOKEN: u8 = 10;

/// Byte positions where a stamp may start, with their token index.
fn starts(line: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let bytes = line.as_bytes();
    let mut token = 0u8;
    (0..line.len().min(MAX_START)).filter_map(move |i| {
        let at_start = i == 0
            || matches!(
                bytes[i - 1],
                b' ' | b'\t' | b'[' | b'(' | b'|' | b'"' | b'=' | b',' | b'<'
            );
        if !at_start || matches!(bytes[i], b' ' | b'\t' | b'[' | b'(' | b'|' | b'"' | b'<') {
            return None;
        }
        let t = token;
        token = token.saturating_add(1);
        (t <= MAX_TOKEN && line.is_char_boundary(i)).then_some((i, t))
    })
}

/// The first stamp in `line`; `hint` (the file's usual kind) is tried first.
pub fn find(line: &str, clock: &Clock, hint: Option<StampKind>) -> Option<Found> {
    if let Some(h) = hint {
        if let Some((pos, _)) = starts(line).find(|(_, t)| *t == h.token) {
            if let Some(f) = try_shape(line, pos, h, clock) {
                return Some(f);
            }
        }
    }
    for (pos, token) in starts(line) {
        for s in SHAPES.iter() {
            let kind = StampKind {
                shape: s.shape,
                token,
            };
            if let Some(f) = try_shape(line, pos, kind, clock) {
                return Some(f);
            }
        }
    }
    None
}

/// A stamp of any shape at a line's first token (after a leading `[`, `(` or spaces).
pub fn at_first_token(line: &str, clock: &Clock) -> Option<Found> {
    let (pos, _) = starts(line).next()?;
    // Every shape opens with a digit, a month or weekday name, or glog's level and a digit: a
    // stack frame or a sentence is turned away before any regex runs.
    let token = &line.as_bytes()[pos..];
    let opens = match token {
        [d, ..] if d.is_ascii_digit() => true,
        [b'I' | b'W' | b'E' | b'F', d, ..] if d.is_ascii_digit() => true,
        [a, b, c, ..] => {
            let word = [*a, *b, *c];
            MONTHS
                .split('|')
                .chain(WEEKDAYS.split('|'))
                .any(|n| n.as_bytes() == word)
        }
        _ => false,
    };
    if !opens {
        return None;
    }
    SHAPES.iter().find_map(|s| {
        let kind = StampKind {
            shape: s.shape,
            token: 0,
        };
        try_shape(line, pos, kind, clock)
    })
}

/// A stamp of one of `shapes` at the very start of `line`.
pub fn at_start(line: &str, clock: &Clock, shapes: &[Shape]) -> Option<Found> {
    shapes.iter().find_map(|shape| {
        let kind = StampKind {
            shape: *shape,
            token: 0,
        };
        try_shape(line, 0, kind, clock)
    })
}

fn try_shape(line: &str, pos: usize, kind: StampKind, clock: &Clock) -> Option<Found> {
    let s = SHAPES.iter().find(|s| s.shape == kind.shape)?;
    let caps = s.re.captures(&line[pos..])?;
    let whole = caps.get(0)?;
    let ts = micros_of(kind.shape, &caps, clock)?;
    Some(Found {
        ts,
        kind,
        start: pos,
        end: pos + whole.end(),
        level: caps.name("lvl").and_then(|l| match l.as_str() {
            "I" => Some("INFO"),
            "W" => Some("WARN"),
            "E" => Some("ERROR"),
            "F" => Some("FATAL"),
            _ => None,
        }),
    })
}

fn num<T: std::str::FromStr>(c: &Captures, name: &str) -> Option<T> {
    c.name(name)?.as_str().parse().ok()
}

fn month_of(name: &str) -> Option<u32> {
    MONTHS
        .split('|')
        .position(|m| name.get(..3).is_some_and(|n| n.eq_ignore_ascii_case(m)))
        .map(|i| i as u32 + 1)
}

fn parse_offset(t: &str) -> Option<chrono::FixedOffset> {
    if t.eq_ignore_ascii_case("z") {
        return chrono::FixedOffset::east_opt(0);
    }
    if let Some((_, minutes)) = ZONES.iter().find(|(name, _)| *name == t) {
        return chrono::FixedOffset::east_opt(minutes * 60);
    }
    let sign = match t.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut digits: String = t[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() == 2 {
        digits.push_str("00");
    }
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn micros_of(shape: Shape, c: &Captures, clock: &Clock) -> Option<Micros> {
    let frac_us = match c.name("frac") {
        Some(f) => {
            let f = f.as_str();
            let six: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
            six.parse::<u32>().ok()?
        }
        None => 0,
    };
    if shape == Shape::Epoch {
        // Seconds or milliseconds by magnitude, as every epoch is read.
        let text = match c.name("frac") {
            Some(f) => format!("{}.{}", c.name("epoch")?.as_str(), f.as_str()),
            None => c.name("epoch")?.as_str().to_string(),
        };
        let us = crate::model::epoch::from_text(&text)?;
        // 2000-01-01 to a day ahead of now: an ID that happens to be 10 digits is not a time.
        return (946_684_800_000_000..=clock.now + 86_400_000_000)
            .contains(&us)
            .then_some(us);
    }
    let month = match c.name("mon") {
        Some(m) => month_of(m.as_str())?,
        None => num(c, "m")?,
    };
    let day: u32 = num(c, "d")?;
    let mut hour: u32 = num(c, "h")?;
    // AM/PM moves a 12-hour clock; after a 24-hour one (`14:00:00 PM`) it says nothing more.
    if let Some(ampm) = c.name("ampm").filter(|_| (1..=12).contains(&hour)) {
        let pm = ampm.as_str().eq_ignore_ascii_case("pm");
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    let min: u32 = num(c, "mi")?;
    let sec: u32 = num(c, "s")?;
    let explicit_year = num::<i32>(c, "y")
        .or_else(|| num::<i32>(c, "y2"))
        .or_else(|| num::<i32>(c, "yy").map(|y| 2000 + y));
    let build = |year: i32| -> Option<Micros> {
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        let local = date.and_hms_micro_opt(hour, min, sec.min(59), frac_us)?;
        match c.name("zone").map(|z| z.as_str()) {
            Some(z) => {
                let off = parse_offset(z)?;
                off.from_local_datetime(&local)
                    .single()
                    .map(|d| d.timestamp_micros())
            }
            None => clock.zone.micros(local),
        }
    };
    let us = match explicit_year.or(clock.year) {
        Some(y) => build(y),
        None => {
            // No year: this year's, unless that is more than a day ahead of now.
            let this_year = chrono::DateTime::from_timestamp_micros(clock.now)?.year();
            // The latest year in which the date exists (Feb 29) and is not ahead of now.
            (this_year - 4..=this_year)
                .rev()
                .filter_map(build)
                .find(|t| *t <= clock.now + 86_400_000_000)
        }
    };
    // Year 0000 is a shape's match, not an instant a row can hold.
    crate::model::epoch::in_range(us?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-01T00:00:00Z
    const NOW: Micros = 1_709_251_200_000_000;

    fn at(text: &str) -> Micros {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|d| d.timestamp_micros())
            .unwrap_or(0)
    }

    #[test]
    fn every_shape_at_any_early_token() {
        let clock = Clock::new(NOW);
        for (line, want, shape) in [
            (
                "2024-01-15T10:30:45.123Z INFO x",
                "2024-01-15T10:30:45.123Z",
                Shape::Iso,
            ),
            (
                "2024-01-15 10:30:45,123 ERROR x",
                "2024-01-15T10:30:45.123Z",
                Shape::Iso,
            ),
            (
                "2024-01-15T11:30:45+01:00 x",
                "2024-01-15T10:30:45Z",
                Shape::Iso,
            ),
            (
                "2024-01-15T10:30:45.123456789Z stdout F x",
                "2024-01-15T10:30:45.123456Z",
                Shape::Iso,
            ),
            (
                "2024/01/15 10:30:45 [error] 12#0: x",
                "2024-01-15T10:30:45Z",
                Shape::Slashed,
            ),
            (
                "2024-01-15-10.30.45.675872 x",
                "2024-01-15T10:30:45.675872Z",
                Shape::DashDotted,
            ),
            (
                "20240115-10:30:45:606|x",
                "2024-01-15T10:30:45.606Z",
                Shape::Compact,
            ),
            (
                "240115 103045 INFO x",
                "2024-01-15T10:30:45Z",
                Shape::ShortCompact,
            ),
            (
                "24/01/15 10:30:45 INFO x",
                "2024-01-15T10:30:45Z",
                Shape::YyMmDd,
            ),
            (
                "01/15/2024 10:30:45 PM x",
                "2024-01-15T22:30:45Z",
                Shape::UsDate,
            ),
            (
                "1.2.3.4 - - [15/Jan/2024:10:30:45 +0100] \"GET /\"",
                "2024-01-15T09:30:45Z",
                Shape::Clf,
            ),
            (
                "Jan 15 10:30:45 host app: x",
                "2024-01-15T10:30:45Z",
                Shape::Syslog,
            ),
            (
                "[Mon Jan 15 10:30:45 2024] [error] x",
                "2024-01-15T10:30:45Z",
                Shape::Syslog,
            ),
            (
                "15-Jan-2024 10:30:45.5 x",
                "2024-01-15T10:30:45.5Z",
                Shape::DayMonth,
            ),
            (
                "01-15 10:30:45.811  1702 D x",
                "2024-01-15T10:30:45.811Z",
                Shape::MonthDay,
            ),
            (
                "[01.15 10:30:45] chrome.exe - x",
                "2024-01-15T10:30:45Z",
                Shape::MonthDotDay,
            ),
            (
                "E0115 10:30:45.123456 12 file.go:3] x",
                "2024-01-15T10:30:45.123456Z",
                Shape::Glog,
            ),
            (
                "I0115 10:30:45.123456       1 controller.go:123] klog",
                "2024-01-15T10:30:45.123456Z",
                Shape::Glog,
            ),
            (
                "Jan 15, 2024 7:30:45 PM com.shop.Pay charge",
                "2024-01-15T19:30:45Z",
                Shape::Syslog,
            ),
            (
                "Start-Date: 2024-01-15  10:30:45",
                "2024-01-15T10:30:45Z",
                Shape::Iso,
            ),
            (
                "2024-01-15 11:30:45.207 CET [7] LOG:  x",
                "2024-01-15T10:30:45.207Z",
                Shape::Iso,
            ),
            (
                "2024-01-15 13:30:45 +03 x",
                "2024-01-15T10:30:45Z",
                Shape::Iso,
            ),
            ("- 1705314645 R02 x", "2024-01-15T10:30:45Z", Shape::Epoch),
            (
                "seq=7 ts=1705314645123 x",
                "2024-01-15T10:30:45.123Z",
                Shape::Epoch,
            ),
        ] {
            let f = find(line, &clock, None).unwrap_or_else(|| panic!("no stamp in {line:?}"));
            assert_eq!((f.ts, f.kind.shape), (at(want), shape), "{line}");
        }
        for line in [
            "no time here",
            "id 12345 done",
            "version 1.2.3 10:30",
            "9999999999 too late",
        ] {
            assert_eq!(find(line, &clock, None), None, "{line}");
        }
    }

    #[test]
    fn yearless_stamps_never_land_in_the_future_and_zones_apply() {
        let clock = Clock::new(NOW);
        let f = find("Dec 31 23:59:59 host x", &clock, None).map(|f| f.ts);
        assert_eq!(f, Some(at("2023-12-31T23:59:59Z")));
        // A zone abbreviation that names several zones is read in the file's zone; AM/PM after
        // a 24-hour clock changes nothing.
        let f = find("2024-01-15 10:30:45 CST x", &clock, None).map(|f| f.ts);
        assert_eq!(f, Some(at("2024-01-15T10:30:45Z")));
        let f = find("2024-01-15 14:30:45 PM x", &clock, None).map(|f| f.ts);
        assert_eq!(f, Some(at("2024-01-15T14:30:45Z")));
        let f = find("Feb 29 10:00:00 host x", &clock, None).map(|f| f.ts);
        assert_eq!(f, Some(at("2024-02-29T10:00:00Z")));
        let fixed = Clock {
            year: Some(2005),
            ..clock
        };
        assert_eq!(
            find("Dec 31 23:59:59 h", &fixed, None).map(|f| f.ts),
            Some(at("2005-12-31T23:59:59Z"))
        );
        let berlin = Clock {
            zone: Zone::parse("Europe/Berlin").unwrap_or(Zone::UTC),
            ..clock
        };
        assert_eq!(
            find("2024-01-15 10:30:45 x", &berlin, None).map(|f| f.ts),
            Some(at("2024-01-15T09:30:45Z"))
        );
        assert_eq!(
            find("2024-01-15 10:30:45Z x", &berlin, None).map(|f| f.ts),
            Some(at("2024-01-15T10:30:45Z")),
            "a stamp's own zone wins"
        );
        assert!(Zone::parse("-05:00").is_some() && Zone::parse("Mars/Olympus").is_none());
    }
}
