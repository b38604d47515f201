//! Timestamp parsing shared by the line formats and the JSON decoders.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use crate::model::{epoch, Micros};

/// Parses RFC 3339 (`2024-01-15T10:30:45.123Z`, `+02:00` offsets, a space for `T`) to µs, if
/// a row can hold the instant (years 1 to 9999).
pub fn parse_rfc3339_micros(text: &str) -> Option<Micros> {
    // PostgreSQL's jsonlog and csvlog write `2026-12-07 14:26:28.177 UTC`.
    let utc = text
        .trim()
        .strip_suffix(" UTC")
        .or_else(|| text.trim().strip_suffix(" GMT"));
    let zulu = utc.map(|t| format!("{t}Z"));
    let t = zulu.as_deref().unwrap_or(text.trim());
    let us = if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        dt.timestamp_micros()
    } else {
        let t2 = t.replacen(' ', "T", 1);
        if let Ok(dt) = DateTime::parse_from_rfc3339(&t2) {
            dt.timestamp_micros()
        } else {
            // No offset at all: read as UTC.
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(&t2, f).ok())?
                .and_utc()
                .timestamp_micros()
        }
    };
    // `0000-…` or a `+23:59` offset can step outside the years a row holds.
    epoch::in_range(us.into())
}

/// Builds µs since the epoch from calendar parts read as UTC.
pub(super) fn civil_micros(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    micros: u32,
) -> Option<Micros> {
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let dt = date.and_hms_micro_opt(hour, min, sec, micros)?;
    epoch::in_range(dt.and_utc().timestamp_micros().into())
}

/// `Jan` … `Dec` to 1 … 12.
pub(super) fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.get(..3)?.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == lower)
        .map(|i| i as u32 + 1)
}

/// Splits `HH:MM:SS` with an optional `,mmm` or `.ffffff` fraction into (h, m, s, µs).
pub(super) fn clock(text: &str) -> Option<(u32, u32, u32, u32)> {
    let (hms, frac) = match text.find([',', '.']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    let mut parts = hms.split(':');
    let h = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let s = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    let micros = if frac.is_empty() {
        0
    } else {
        if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: u32 = frac.parse().ok()?;
        v * 10u32.pow(6 - frac.len() as u32)
    };
    Some((h, m, s, micros))
}

/// Reads the raw JSON text of a `ts` value (a string or a number).
pub fn parse_ts_text(raw: &str) -> Option<Micros> {
    let raw = raw.trim();
    if raw.starts_with('"') {
        let s: Cow<str> = serde_json::from_str(raw).ok()?;
        parse_ts_str(&s)
    } else if raw.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        epoch::from_text(raw)
    } else {
        None
    }
}

/// Reads `ts` as RFC 3339 text or an epoch number (its unit by magnitude: [`epoch`]); `None`
/// when it is neither, or names an instant outside years 1 to 9999.
pub fn parse_ts(v: &Value) -> Option<Micros> {
    match v {
        Value::String(s) => parse_ts_str(s),
        // The number's own text: exact where an f64 would round.
        Value::Number(n) => epoch::from_text(&n.to_string()),
        _ => None,
    }
}

fn parse_ts_str(s: &str) -> Option<Micros> {
    parse_rfc3339_micros(s).or_else(|| epoch::from_text(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_unit() {
        let want = 1_705_314_645_123_000;
        for v in [
            serde_json::json!("2024-01-15T10:30:45.123Z"),
            serde_json::json!("2024-01-15T11:30:45.123+01:00"),
            serde_json::json!("2024-01-15 10:30:45.123"),
            serde_json::json!(1_705_314_645.123),
            serde_json::json!(1_705_314_645_123i64),
            serde_json::json!(1_705_314_645_123_000i64),
            serde_json::json!(1_705_314_645_123_000_000i64),
        ] {
            assert_eq!(parse_ts(&v), Some(want), "{v}");
        }
        assert_eq!(parse_ts(&serde_json::json!("soon")), None);
        // Before 1970 is an instant too; year 9999 in seconds is not 1978 in milliseconds.
        assert_eq!(parse_ts(&serde_json::json!(-5)), Some(-5_000_000));
        assert_eq!(parse_ts_text("-5"), Some(-5_000_000));
        let last = Some(253_402_300_799_000_000);
        assert_eq!(parse_ts(&serde_json::json!(253_402_300_799i64)), last);
        assert_eq!(parse_ts_text("253402300799"), last);
        assert_eq!(parse_ts_text("\"253402300799\""), last);
        assert_eq!(parse_ts(&serde_json::json!("9999-12-31T23:59:59Z")), last);
        assert_eq!(parse_ts(&serde_json::json!("0000-12-31T23:59:59Z")), None);
        assert_eq!(parse_ts(&serde_json::json!(1e30)), None);
    }
}
