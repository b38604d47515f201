//! PostgreSQL's date/time input: the literal shapes `timestamp`, `timestamptz` and `date` accept
//! (`2024-01-15 10:30`, `January 15, 2024`, `15 Jan 2024 10:30:45.5 PM`, `2024-01-15T10:30Z`,
//! `… +05:30`, `… Europe/Berlin`, `epoch`, `today`, …), read as PostgreSQL reads them: a value
//! without a zone is local time in the session's `TimeZone` (DateStyle `ISO, MDY`).

use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{
    DateTime, Days, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use datafusion::arrow::array::timezone::Tz;
use regex::Regex;

/// A date/time literal as written: its local date and time, and the zone it names, if any.
#[derive(Debug, Clone)]
pub struct Input {
    pub local: NaiveDateTime,
    pub zone: Option<Zone>,
}

/// A zone named in a literal.
#[derive(Debug, Clone)]
pub enum Zone {
    Fixed(FixedOffset),
    Named(Tz),
}

/// `date [time [AM|PM] [zone]]`: the date is everything before the time.
static SHAPE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^
        (?P<date>.*?)
        (?:
            (?:^|[\sT])\s*
            (?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?P<frac>\.\d+)?)?
            (?:\s*(?P<ampm>am|pm))?
            \s*(?P<zone>z|utc|gmt|[+-]\d{1,2}(?::?\d{2})?|[a-z_]+/[a-z_/+-]+)?
        )?
        $",
    )
    .ok()
});

/// The date shapes PostgreSQL reads under DateStyle `ISO, MDY`.
const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%m/%d/%Y",
    "%m-%d-%Y",
    "%Y%m%d",
    "%B %d %Y",
    "%d %B %Y",
    "%d-%B-%Y",
    "%Y-%B-%d",
    "%B-%d-%Y",
    "%B %d",
    "%A %B %d %Y",
    "%a %B %d %Y",
];

/// Parses a literal; `None` when it is not one PostgreSQL would read (or names `infinity`).
/// `today` and friends are taken relative to `now` in `zone`.
pub fn parse(text: &str, now: DateTime<Utc>, zone: &Tz) -> Option<Input> {
    let t = text.trim();
    let today = now.with_timezone(zone).date_naive();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
    let special =
        match t.to_ascii_lowercase().as_str() {
            "epoch" => Some(Input {
                local: DateTime::UNIX_EPOCH.naive_utc(),
                zone: Some(Zone::Fixed(FixedOffset::east_opt(0)?)),
            }),
            "now" => Some(Input {
                local: now.with_timezone(zone).naive_local(),
                zone: None,
            }),
            "today" => midnight(today).map(|local| Input { local, zone: None }),
            "yesterday" => midnight(today.checked_sub_days(Days::new(1))?)
                .map(|local| Input { local, zone: None }),
            "tomorrow" => midnight(today.checked_add_days(Days::new(1))?)
                .map(|local| Input { local, zone: None }),
            _ => None,
        };
    if special.is_some() {
        return special;
    }
    let caps = SHAPE.as_ref()?.captures(t)?;
    let date_text = caps.name("date").map_or("", |m| m.as_str());
    let date = parse_date(date_text, today)?;
    let time = match caps.name("h") {
        None => NaiveTime::MIN,
        Some(h) => {
            let mut hour: u32 = h.as_str().parse().ok()?;
            let minute: u32 = caps.name("m")?.as_str().parse().ok()?;
            let second: u32 = caps
                .name("s")
                .map_or(Some(0), |s| s.as_str().parse().ok())?;
            if let Some(ampm) = caps.name("ampm") {
                if !(1..=12).contains(&hour) {
                    return None;
                }
                let pm = ampm.as_str().eq_ignore_ascii_case("pm");
                hour = match (hour, pm) {
                    (12, false) => 0,
                    (12, true) => 12,
                    (h, true) => h + 12,
                    (h, false) => h,
                };
            }
            let nanos = match caps.name("frac") {
                None => 0,
                Some(f) => fraction_nanos(&f.as_str()[1..])?,
            };
            NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?
        }
    };
    let zone = match caps.name("zone") {
        None => None,
        Some(z) => Some(parse_zone(z.as_str())?),
    };
    Some(Input {
        local: date.and_time(time),
        zone,
    })
}

fn parse_date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let cleaned: String = text
        .trim()
        .trim_end_matches(['T', 't'])
        .replace(',', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if cleaned.is_empty() {
        return None;
    }
    let date = DATE_FORMATS.iter().find_map(|f| {
        if *f == "%B %d" {
            // `Jan 15`: this year, as PostgreSQL reads it.
            let with_year = format!("{cleaned} {}", chrono::Datelike::year(&today));
            NaiveDate::parse_from_str(&with_year, "%B %d %Y").ok()
        } else {
            NaiveDate::parse_from_str(&cleaned, f).ok()
        }
    })?;
    // A year written with one or two digits is PostgreSQL's 1970–2069.
    let year_digits = cleaned
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    let year = chrono::Datelike::year(&date);
    if year_digits <= 2 && (0..100).contains(&year) {
        let full = if year < 70 { 2000 + year } else { 1900 + year };
        return chrono::Datelike::with_year(&date, full);
    }
    Some(date)
}

/// Nanoseconds of a fraction's digits, rounded to microseconds as PostgreSQL keeps them.
fn fraction_nanos(digits: &str) -> Option<u32> {
    let mut micros: u64 = 0;
    for (i, c) in digits.chars().take(6).enumerate() {
        micros += u64::from(c.to_digit(10)?) * 10_u64.pow(5 - i as u32);
    }
    if digits
        .chars()
        .nth(6)
        .and_then(|c| c.to_digit(10))
        .is_some_and(|d| d >= 5)
    {
        micros += 1;
    }
    u32::try_from(micros.min(999_999) * 1000).ok()
}

fn parse_zone(text: &str) -> Option<Zone> {
    let lower = text.to_ascii_lowercase();
    if matches!(lower.as_str(), "z" | "utc" | "gmt") {
        return Some(Zone::Fixed(FixedOffset::east_opt(0)?));
    }
    if let Some(rest) = text.strip_prefix(['+', '-']) {
        let sign = if text.starts_with('-') { -1 } else { 1 };
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        let (h, m) = match digits.len() {
            1 | 2 => (digits.parse::<i32>().ok()?, 0),
            3 | 4 => {
                let split = digits.len() - 2;
                (digits[..split].parse().ok()?, digits[split..].parse().ok()?)
            }
            _ => return None,
        };
        return Some(Zone::Fixed(FixedOffset::east_opt(
            sign * (h * 3600 + m * 60),
        )?));
    }
    Tz::from_str(text).ok().map(Zone::Named)
}

impl Input {
    /// The instant this names, reading a value without a zone in `session`: nanoseconds since
    /// the epoch. A local time a DST gap skips is read as PostgreSQL does, an hour later.
    pub fn instant_nanos(&self, session: &Tz) -> Option<i64> {
        let instant = match &self.zone {
            Some(Zone::Fixed(offset)) => resolve(offset, self.local)?.with_timezone(&Utc),
            Some(Zone::Named(tz)) => resolve(tz, self.local)?.with_timezone(&Utc),
            None => resolve(session, self.local)?.with_timezone(&Utc),
        };
        instant.timestamp_nanos_opt()
    }

    /// The local date and time as written (a zone given is ignored, as `timestamp` does).
    pub fn local_nanos(&self) -> Option<i64> {
        self.local.and_utc().timestamp_nanos_opt()
    }
}

fn resolve<Z: TimeZone>(zone: &Z, local: NaiveDateTime) -> Option<DateTime<Z>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t),
        // An ambiguous local time (the hour DST repeats) is standard time, the later instant.
        LocalResult::Ambiguous(_, later) => Some(later),
        LocalResult::None => zone
            .from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> Tz {
        Tz::from_str("UTC").unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()
    }

    fn local(text: &str) -> String {
        parse(text, now(), &utc())
            .map(|i| i.local.format("%Y-%m-%d %H:%M:%S%.f").to_string())
            .unwrap_or_else(|| "none".into())
    }

    #[test]
    fn reads_the_shapes_postgresql_reads() {
        for (text, want) in [
            ("2024-01-15 10:30", "2024-01-15 10:30:00"),
            ("2024-01-15T10:30:45.123456Z", "2024-01-15 10:30:45.123456"),
            ("2024-01-15", "2024-01-15 00:00:00"),
            ("January 15, 2024", "2024-01-15 00:00:00"),
            ("Jan 15 2024 10:30 PM", "2024-01-15 22:30:00"),
            ("15 Jan 2024 12:05 am", "2024-01-15 00:05:00"),
            ("01/15/2024 10:30:00", "2024-01-15 10:30:00"),
            ("2024/01/15 10:30:00", "2024-01-15 10:30:00"),
            ("20240115", "2024-01-15 00:00:00"),
            ("2024-01-15 10:30:00.1234567", "2024-01-15 10:30:00.123457"),
            ("1/15/24", "2024-01-15 00:00:00"),
            ("yesterday", "2024-02-29 00:00:00"),
            ("not a date", "none"),
            ("2024-13-01", "none"),
        ] {
            assert_eq!(local(text), want, "{text}");
        }
    }

    #[test]
    fn a_value_without_a_zone_is_local_to_the_session() {
        let berlin = Tz::from_str("Europe/Berlin").unwrap();
        let at = |text: &str, zone: &Tz| parse(text, now(), zone)?.instant_nanos(zone);
        let utc_10 = at("2024-01-15 10:00:00+00", &utc());
        assert_eq!(at("2024-01-15 11:00:00", &berlin), utc_10);
        assert_eq!(at("2024-01-15 10:00:00Z", &berlin), utc_10);
        assert_eq!(at("2024-01-15 05:00:00-05", &berlin), utc_10);
        assert_eq!(at("2024-01-15 15:30:00+05:30", &berlin), utc_10);
        assert_eq!(at("2024-01-15 11:00:00 Europe/Berlin", &utc()), utc_10);
        assert_eq!(at("epoch", &berlin), Some(0));
    }
}
