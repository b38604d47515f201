//! PostgreSQL's date/time functions where DataFusion's differ: `to_char(timestamp, pattern)`
//! with PostgreSQL's template patterns (`YYYY-MM-DD HH24:MI`, `Dy DD Mon`, `FM`, quoted text),
//! in the session's `TimeZone`; and `x AT TIME ZONE zone` (`pg_at_time_zone`), which turns a
//! `timestamptz` into the local `timestamp` of `zone` and a `timestamp` read as local time in
//! `zone` into a `timestamptz`.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, AsArray, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::columnar::{answer, rows, Texts};
use super::PgSession;
use crate::sqlstate;

/// The session's zone (`None`: UTC, or a name the zone database does not know).
fn session_zone(args: &ScalarFunctionArgs) -> Option<Tz> {
    let session = args.config_options.extensions.get::<PgSession>()?;
    session.time_zone().map(|(_, zone)| zone)
}

const MICRO: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// `to_char(timestamp|timestamptz|date, pattern)`.
pub fn to_char_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToChar {
        signature: Signature::user_defined(Volatility::Stable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [DataType::Timestamp(_, tz), pattern] => Ok(vec![
                DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
                text_type(pattern)?,
            ]),
            [DataType::Date32 | DataType::Date64 | DataType::Utf8 | DataType::Utf8View, p] => {
                Ok(vec![MICRO, text_type(p)?])
            }
            [DataType::Null, p] => Ok(vec![MICRO, text_type(p)?]),
            [n, p] if n.is_numeric() => Ok(vec![DataType::Float64, text_type(p)?]),
            [other, _] => crate::query_err!(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "to_char({other}, text) is not supported: only numbers, timestamps and dates are formatted"
            ),
            _ => crate::query_err!(
                sqlstate::UNDEFINED_FUNCTION,
                "to_char() takes a value and a pattern"
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let zone = session_zone(&args);
        let [value, pattern] = args.args.as_slice() else {
            return crate::query_err!(sqlstate::UNDEFINED_FUNCTION, "to_char() takes 2 arguments");
        };
        let n = rows(&args.args, args.number_rows);
        if value.data_type() == DataType::Float64 {
            return to_char_number(value, pattern, n, &args.args);
        }
        let zoned = matches!(value.data_type(), DataType::Timestamp(_, Some(_)));
        let values = value.to_array(n)?;
        let values = cast(&values, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let values = values.as_primitive::<TimestampMicrosecondType>();
        let patterns = Texts::new(pattern)?;
        // A pattern's text is at most 9 bytes per pattern byte (`Month` padded): bound the
        // batch's output before building it.
        let bound: u128 = (0..values.len())
            .map(|i| 9 * patterns.get(i).map_or(0, str::len) as u128)
            .sum();
        if bound > crate::limits::MAX_VALUE_BYTES {
            return crate::query_err!(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                "to_char() output would exceed 1 GB"
            );
        }
        let out: StringArray = (0..values.len())
            .map(|i| {
                let pattern = patterns.get(i)?;
                if values.is_null(i) {
                    return None;
                }
                let instant = DateTime::from_timestamp_micros(values.value(i))?;
                let (local, offset) = match &zone {
                    Some(zone) if zoned => {
                        let at = instant.with_timezone(zone);
                        (at.naive_local(), at.offset().fix().local_minus_utc())
                    }
                    _ => (instant.naive_utc(), 0),
                };
                Some(format(&local, offset, pattern))
            })
            .collect();
        answer(&args.args, Arc::new(out))
    }
}

/// `to_char(number, pattern)` ([`super::number_format`]).
fn to_char_number(
    value: &ColumnarValue,
    pattern: &ColumnarValue,
    n: usize,
    all: &[ColumnarValue],
) -> Result<ColumnarValue> {
    let values = value.to_array(n)?;
    let values = values.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let patterns = Texts::new(pattern)?;
    // At most a column per pattern character, and the sign's.
    let bound: u128 = (0..values.len())
        .map(|i| patterns.get(i).map_or(0, str::len) as u128 + 1)
        .sum();
    if bound > crate::limits::MAX_VALUE_BYTES {
        return crate::query_err!(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            "to_char() output would exceed 1 GB"
        );
    }
    let mut out = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        let (Some(p), false) = (patterns.get(i), values.is_null(i)) else {
            out.push(None);
            continue;
        };
        match super::number_format::format_number(values.value(i), p) {
            Ok(text) => out.push(Some(text)),
            Err(reason) => return crate::query_err!(sqlstate::FEATURE_NOT_SUPPORTED, "{reason}"),
        }
    }
    answer(all, Arc::new(StringArray::from(out)))
}

fn text_type(t: &DataType) -> Result<DataType> {
    match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
            Ok(DataType::Utf8)
        }
        other => crate::query_err!(
            sqlstate::DATATYPE_MISMATCH,
            "to_char(): the pattern must be text, not {other}"
        ),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats `t` (local time, `offset` seconds east of UTC) with a PostgreSQL template pattern.
pub fn format(t: &NaiveDateTime, offset: i32, pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    let mut fill = false;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("FM").or_else(|| rest.strip_prefix("fm")) {
            fill = true;
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            out.push_str(&r[..end]);
            rest = r.get(end + 1..).unwrap_or("");
            continue;
        }
        if let Some(r) = rest.strip_prefix('\\') {
            let mut chars = r.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
            continue;
        }
        match token(t, offset, rest, fill) {
            Some((text, len)) => {
                out.push_str(&text);
                rest = &rest[len..];
            }
            None => {
                let mut chars = rest.chars();
                if let Some(c) = chars.next() {
                    out.push(c);
                }
                rest = chars.as_str();
            }
        }
        fill = false;
    }
    out
}

/// One template pattern's text, computed only for the pattern that matches.
type Render<'a> = Box<dyn Fn() -> String + 'a>;

/// The text of the template pattern at the start of `p`, and the pattern's length.
fn token(t: &NaiveDateTime, offset: i32, p: &str, fill: bool) -> Option<(String, usize)> {
    let num = |v: i64, width: usize| {
        if fill {
            v.to_string()
        } else {
            format!("{v:0width$}")
        }
    };
    let word = |w: &str, upper: bool, lower: bool, pad: usize| {
        let w = if upper {
            w.to_uppercase()
        } else if lower {
            w.to_lowercase()
        } else {
            w.to_string()
        };
        if fill {
            w
        } else {
            format!("{w:<pad$}")
        }
    };
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let pm = t.hour() >= 12;
    let month = MONTHS[t.month0() as usize];
    let day = DAYS[t.weekday().num_days_from_sunday() as usize];
    let iso = t.iso_week();
    let micros = i64::from(t.nanosecond() / 1000);
    let candidates: [(&str, Render); 44] = [
        ("HH24", Box::new(|| num(i64::from(t.hour()), 2))),
        ("HH12", Box::new(|| num(i64::from(hour12), 2))),
        ("HH", Box::new(|| num(i64::from(hour12), 2))),
        ("MI", Box::new(|| num(i64::from(t.minute()), 2))),
        (
            "SSSSS",
            Box::new(|| num(i64::from(t.num_seconds_from_midnight()), 1)),
        ),
        (
            "SSSS",
            Box::new(|| num(i64::from(t.num_seconds_from_midnight()), 1)),
        ),
        ("SS", Box::new(|| num(i64::from(t.second()), 2))),
        ("MS", Box::new(|| num(micros / 1000, 3))),
        ("US", Box::new(|| num(micros, 6))),
        (
            "A.M.",
            Box::new(|| (if pm { "P.M." } else { "A.M." }).into()),
        ),
        (
            "P.M.",
            Box::new(|| (if pm { "P.M." } else { "A.M." }).into()),
        ),
        (
            "a.m.",
            Box::new(|| (if pm { "p.m." } else { "a.m." }).into()),
        ),
        (
            "p.m.",
            Box::new(|| (if pm { "p.m." } else { "a.m." }).into()),
        ),
        ("AM", Box::new(|| (if pm { "PM" } else { "AM" }).into())),
        ("PM", Box::new(|| (if pm { "PM" } else { "AM" }).into())),
        ("am", Box::new(|| (if pm { "pm" } else { "am" }).into())),
        ("pm", Box::new(|| (if pm { "pm" } else { "am" }).into())),
        ("IYYY", Box::new(|| num(i64::from(iso.year()), 4))),
        ("YYYY", Box::new(|| num(i64::from(t.year()), 4))),
        (
            "YYY",
            Box::new(|| num(i64::from(t.year().rem_euclid(1000)), 3)),
        ),
        (
            "YY",
            Box::new(|| num(i64::from(t.year().rem_euclid(100)), 2)),
        ),
        ("Y", Box::new(|| num(i64::from(t.year().rem_euclid(10)), 1))),
        ("MONTH", Box::new(|| word(month, true, false, 9))),
        ("Month", Box::new(|| word(month, false, false, 9))),
        ("month", Box::new(|| word(month, false, true, 9))),
        ("MON", Box::new(|| word(&month[..3], true, false, 3))),
        ("Mon", Box::new(|| word(&month[..3], false, false, 3))),
        ("mon", Box::new(|| word(&month[..3], false, true, 3))),
        ("MM", Box::new(|| num(i64::from(t.month()), 2))),
        ("DAY", Box::new(|| word(day, true, false, 9))),
        ("Day", Box::new(|| word(day, false, false, 9))),
        ("day", Box::new(|| word(day, false, true, 9))),
        ("DY", Box::new(|| word(&day[..3], true, false, 3))),
        ("Dy", Box::new(|| word(&day[..3], false, false, 3))),
        ("dy", Box::new(|| word(&day[..3], false, true, 3))),
        ("DDD", Box::new(|| num(i64::from(t.ordinal()), 3))),
        ("DD", Box::new(|| num(i64::from(t.day()), 2))),
        (
            "ID",
            Box::new(|| num(i64::from(t.weekday().number_from_monday()), 1)),
        ),
        (
            "D",
            Box::new(|| num(i64::from(t.weekday().number_from_sunday()), 1)),
        ),
        ("IW", Box::new(|| num(i64::from(iso.week()), 2))),
        (
            "WW",
            Box::new(|| num(i64::from((t.ordinal() - 1) / 7 + 1), 2)),
        ),
        ("Q", Box::new(|| num(i64::from(t.month0() / 3 + 1), 1))),
        (
            "CC",
            Box::new(|| num(i64::from((t.year() - 1).div_euclid(100) + 1), 2)),
        ),
        ("OF", Box::new(|| offset_text(offset))),
    ];
    candidates
        .iter()
        .find(|(name, _)| {
            // Numeric patterns take any case (`yyyy-mm-dd hh24:mi`); words and AM/PM spell
            // their output's case.
            let worded = name.chars().any(|c| c.is_ascii_lowercase())
                || ["MONTH", "MON", "DAY", "DY", "AM", "PM", "A.M.", "P.M."].contains(name);
            if !worded {
                p.get(..name.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(name))
            } else {
                p.starts_with(name)
            }
        })
        .map(|(name, text)| (text(), name.len()))
}

/// `x AT TIME ZONE zone` as `pg_at_time_zone(x, zone)`.
pub fn at_time_zone_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(AtTimeZone {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AtTimeZone {
    signature: Signature,
}

impl ScalarUDFImpl for AtTimeZone {
    fn name(&self) -> &str {
        "pg_at_time_zone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args.first() {
            Some(DataType::Timestamp(_, Some(_))) => MICRO,
            _ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        })
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let zone = DataType::Utf8;
        match args {
            [DataType::Timestamp(_, tz), _] => Ok(vec![
                DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
                zone,
            ]),
            [DataType::Date32 | DataType::Utf8 | DataType::Utf8View | DataType::Null, _] => {
                Ok(vec![MICRO, zone])
            }
            [other, _] => crate::query_err!(
                sqlstate::UNDEFINED_FUNCTION,
                "AT TIME ZONE needs a timestamp, not {other}"
            ),
            _ => crate::query_err!(sqlstate::UNDEFINED_FUNCTION, "AT TIME ZONE takes a zone"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value, zone] = args.args.as_slice() else {
            return crate::query_err!(sqlstate::UNDEFINED_FUNCTION, "AT TIME ZONE takes a zone");
        };
        let n = rows(&args.args, args.number_rows);
        let to_local = matches!(value.data_type(), DataType::Timestamp(_, Some(_)));
        let values = value.to_array(n)?;
        let values = values.as_primitive::<TimestampMicrosecondType>();
        let zones = cast(&zone.to_array(n)?, &DataType::Utf8)?;
        let zones = zones.as_string::<i32>();
        let mut out = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            if values.is_null(i) || zones.is_null(i) {
                out.push(None);
                continue;
            }
            let name = zones.value(i);
            let Ok(tz) = Tz::from_str(name) else {
                return crate::query_err!(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "time zone \"{name}\" not recognized"
                );
            };
            let micros = values.value(i);
            out.push(if to_local {
                DateTime::<Utc>::from_timestamp_micros(micros).map(|t| {
                    t.with_timezone(&tz)
                        .naive_local()
                        .and_utc()
                        .timestamp_micros()
                })
            } else {
                DateTime::<Utc>::from_timestamp_micros(micros).and_then(|t| {
                    let local = t.naive_utc();
                    let at = match tz.from_local_datetime(&local) {
                        // An ambiguous local time is standard time (the later), as in PostgreSQL.
                        LocalResult::Single(x) | LocalResult::Ambiguous(_, x) => Some(x),
                        LocalResult::None => tz
                            .from_local_datetime(&(local + chrono::Duration::hours(1)))
                            .earliest(),
                    };
                    at.map(|x| x.with_timezone(&Utc).timestamp_micros())
                })
            });
        }
        let array = TimestampMicrosecondArray::from(out);
        let array = if to_local {
            array
        } else {
            array.with_timezone("UTC")
        };
        answer(&args.args, Arc::new(array))
    }
}

/// `micros` since the epoch as PostgreSQL prints a `timestamptz` (in `zone`, UTC when `None`,
/// with its offset) or a `timestamp` (as is): `2024-01-15 10:04:11.23757+01`.
pub fn timestamp_text(micros: i64, zoned: bool, zone: Option<&Tz>) -> String {
    let Some(utc) = DateTime::from_timestamp_micros(micros) else {
        return micros.to_string();
    };
    if zoned {
        let (local, offset) = match zone {
            Some(zone) => {
                let local = zone.from_utc_datetime(&utc.naive_utc());
                (local.naive_local(), local.offset().fix().local_minus_utc())
            }
            None => (utc.naive_utc(), 0),
        };
        let mut out = wall_clock(&local);
        out.push_str(&offset_text(offset));
        out
    } else {
        wall_clock(&utc.naive_utc())
    }
}

/// `YYYY-MM-DD HH:MM:SS[.fraction without trailing zeros]`.
fn wall_clock(t: &NaiveDateTime) -> String {
    let mut out = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = t.nanosecond() / 1_000;
    if micros != 0 {
        let fraction = format!("{micros:06}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out
}

/// PostgreSQL's ISO offset: `+01`, `-03:30`, `+05:45`.
fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    match (m, sec) {
        (0, 0) => format!("{sign}{h:02}"),
        (_, 0) => format!("{sign}{h:02}:{m:02}"),
        _ => format!("{sign}{h:02}:{m:02}:{sec:02}"),
    }
}

/// `pg_timestamp_text(ts)`: a timestamp cast to text, as PostgreSQL writes it.
pub fn timestamp_text_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(TimestampText {
        signature: Signature::user_defined(Volatility::Stable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampText {
    signature: Signature,
}

impl ScalarUDFImpl for TimestampText {
    fn name(&self) -> &str {
        "pg_timestamp_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [DataType::Timestamp(_, tz)] => {
                Ok(vec![DataType::Timestamp(TimeUnit::Microsecond, tz.clone())])
            }
            _ => crate::query_err!(
                sqlstate::UNDEFINED_FUNCTION,
                "pg_timestamp_text() takes one timestamp"
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let zone = session_zone(&args);
        let [value] = args.args.as_slice() else {
            return crate::query_err!(sqlstate::UNDEFINED_FUNCTION, "one timestamp expected");
        };
        let zoned = matches!(value.data_type(), DataType::Timestamp(_, Some(_)));
        let values = value.to_array(rows(&args.args, args.number_rows))?;
        let values = values.as_primitive::<TimestampMicrosecondType>();
        let out: StringArray = values
            .iter()
            .map(|v| v.map(|v| timestamp_text(v, zoned, zone.as_ref())))
            .collect();
        answer(&args.args, Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_postgresql_template_patterns() {
        let t = NaiveDateTime::parse_from_str("2024-01-15 09:58:00.123456", "%Y-%m-%d %H:%M:%S%.f")
            .unwrap();
        for (pattern, want) in [
            ("YYYY-MM-DD HH24:MI:SS", "2024-01-15 09:58:00"),
            ("HH12:MI AM", "09:58 AM"),
            ("Dy DD Mon YYYY", "Mon 15 Jan 2024"),
            ("Day, Month DD", "Monday   , January   15"),
            ("FMDay, FMMonth FMDD", "Monday, January 15"),
            ("YYYY\"-W\"IW", "2024-W03"),
            ("HH24:MI:SS.MS", "09:58:00.123"),
            ("HH24:MI:SS.US", "09:58:00.123456"),
            ("DDD Q", "015 1"),
            ("yyyy-mm-dd hh24:mi:ss", "2024-01-15 09:58:00"),
            ("YYYY-MM-DD\"T\"HH24:MI:SSOF", "2024-01-15T09:58:00+01"),
        ] {
            assert_eq!(format(&t, 3600, pattern), want, "{pattern}");
        }
    }
}
