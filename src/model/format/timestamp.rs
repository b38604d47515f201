//! Timestamp parsing shared by the line formats and the JSON decoders.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use crate::model::Micros;

/// Parses RFC 3339 (`2024-01-15T10:30:45.123Z`, `+02:00` offsets, a space for `T`) to µs.
pub fn parse_rfc3339_micros(text: &str) -> Option<Micros> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_micros());
    }
    let t2 = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&t2) {
        return Some(dt.timestamp_micros());
    }
    // No offset at all: read as UTC.
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&t2, f) {
            return Some(n.and_utc().timestamp_micros());
        }
    }
    None
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
    Some(dt.and_utc().timestamp_micros())
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
        parse_ts(&Value::String(s.into_owned()))
    } else if raw.starts_with(|c: char| c.is_ascii_digit()) {
        raw.parse::<f64>().ok().and_then(epoch_micros)
    } else {
        None
    }
}

/// Reads `ts` as RFC 3339 text or an epoch number (s, ms, µs or ns by magnitude).
pub fn parse_ts(v: &Value) -> Option<Micros> {
    match v {
        Value::String(s) => {
            parse_rfc3339_micros(s).or_else(|| s.trim().parse::<f64>().ok().and_then(epoch_micros))
        }
        Value::Number(n) => n.as_f64().and_then(epoch_micros),
        _ => None,
    }
}

fn epoch_micros(x: f64) -> Option<Micros> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    let us = if x < 1e11 {
        x * 1e6
    } else if x < 1e14 {
        x * 1e3
    } else if x < 1e17 {
        x
    } else {
        x / 1e3
    };
    (us < 2.5e17).then_some(us as Micros)
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
        assert_eq!(parse_ts(&serde_json::json!(-5)), None);
    }
}
