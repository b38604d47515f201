//! Epoch numbers to instants, one way for every protocol: the unit is decided by the number's
//! magnitude (or fixed by the protocol's spec), and every instant a row takes is checked against
//! the range a row can hold.
//!
//! | magnitude of the number (integer part)       | read as      | instants read right  |
//! |----------------------------------------------|--------------|----------------------|
//! | ≤ 253 402 300 799                            | seconds      | 0001-01-01 … 9999-12-31 |
//! | ≤ 253 402 300 799 999                        | milliseconds | from 1978-01-11 (and before 1961-12-23) |
//! | ≤ 253 402 300 799 999 999                    | microseconds | likewise             |
//! | ≤ 253 402 300 799 999 999 999                | nanoseconds  | likewise             |
//! | larger                                       | not an instant |                    |
//!
//! `253 402 300 799` is 9999-12-31T23:59:59Z in seconds; each unit's bound is the same instant
//! in that unit, so a number is read in the coarsest unit that puts it before year 10000. A
//! negative number is an instant before 1970, its unit decided by its magnitude the same way.
//! The result must lie in [`MIN_MICROS`]`..=`[`MAX_MICROS`] (years 1 to 9999); anything else
//! cannot be placed, and the caller flags the row and keeps the receive time. Fractions below a
//! microsecond are rounded down (toward the past), so order is kept.

use super::Micros;

/// 9999-12-31T23:59:59Z in seconds since the epoch: the magnitude bound of each unit.
pub const MAX_SECONDS: i64 = 253_402_300_799;
/// The first instant a row can hold, 0001-01-01T00:00:00Z, in µs.
pub const MIN_MICROS: Micros = -62_135_596_800_000_000;
/// The last instant a row can hold, 9999-12-31T23:59:59.999999Z, in µs.
pub const MAX_MICROS: Micros = 253_402_300_799_999_999;

/// Most fraction digits read exactly (nanoseconds of a second); later ones only round down.
const MAX_FRACTION_DIGITS: u32 = 9;

/// The unit of an epoch number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl Unit {
    /// How many of this unit make a second.
    pub fn per_second(self) -> i128 {
        match self {
            Unit::Seconds => 1,
            Unit::Millis => 1_000,
            Unit::Micros => 1_000_000,
            Unit::Nanos => 1_000_000_000,
        }
    }

    /// The unit of a number whose integer part has this magnitude: the coarsest in which it
    /// is at most 9999-12-31T23:59:59Z; `None` past nanoseconds of that instant.
    pub fn of(magnitude: u128) -> Option<Unit> {
        [Unit::Seconds, Unit::Millis, Unit::Micros, Unit::Nanos]
            .into_iter()
            .find(|u| magnitude < (MAX_SECONDS as u128 + 1) * u.per_second() as u128)
    }
}

/// `us` if a row can hold it (years 1 to 9999), else `None`.
pub fn in_range(us: i128) -> Option<Micros> {
    (i128::from(MIN_MICROS)..=i128::from(MAX_MICROS))
        .contains(&us)
        .then_some(us as Micros)
}

/// An integer epoch, its unit by magnitude.
pub fn from_int(v: i128) -> Option<Micros> {
    from_int_in(v, Unit::of(v.unsigned_abs())?)
}

/// An integer epoch in a unit its protocol fixes (OTLP and Loki send nanoseconds).
pub fn from_int_in(v: i128, unit: Unit) -> Option<Micros> {
    let per = unit.per_second();
    let us = if per <= 1_000_000 {
        v.checked_mul(1_000_000 / per)?
    } else {
        v.div_euclid(per / 1_000_000)
    };
    in_range(us)
}

/// A decimal number as text (`1705314645`, `1705314645.123`, `-5`, `+17e8`), its unit by the
/// magnitude of its integer part; read exactly unless it has an exponent.
pub fn from_text(text: &str) -> Option<Micros> {
    let t = text.trim();
    if t.contains(['e', 'E']) {
        return from_f64(t.parse().ok()?);
    }
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int = int.trim_start_matches('0');
    // Longer than the largest bound (21 digits of nanoseconds): not an instant.
    if int.len() > 21 {
        return None;
    }
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let unit = Unit::of(whole)?;
    let kept = &frac[..frac.len().min(MAX_FRACTION_DIGITS as usize)];
    let dropped_nonzero = frac[kept.len()..].bytes().any(|b| b != b'0');
    let scale = 10i128.pow(kept.len() as u32);
    let fraction: i128 = if kept.is_empty() {
        0
    } else {
        kept.parse().ok()?
    };
    // The number times `scale`, exactly; a nonzero digit past the kept ones makes a negative
    // number a little smaller, so the floor below still rounds toward the past.
    let mut scaled = (whole as i128).checked_mul(scale)?.checked_add(fraction)?;
    if negative {
        scaled = -scaled - i128::from(dropped_nonzero);
    }
    let us = (scaled.checked_mul(1_000_000)?).div_euclid(scale.checked_mul(unit.per_second())?);
    in_range(us)
}

/// A floating-point epoch, its unit by magnitude, to the nearest microsecond.
pub fn from_f64(x: f64) -> Option<Micros> {
    if !x.is_finite() || x.abs() >= 1e22 {
        return None;
    }
    let unit = Unit::of(x.abs().trunc() as u128)?;
    let us = match unit {
        Unit::Seconds => x * 1e6,
        Unit::Millis => x * 1e3,
        Unit::Micros => x,
        Unit::Nanos => x / 1e3,
    };
    in_range(us.round() as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    /// Every unit's boundary, either side of it, and the range limits.
    #[test]
    fn the_unit_follows_the_magnitude_and_every_bound_is_year_9999() {
        let cases: &[(&str, Option<Micros>)] = &[
            ("0", Some(0)),
            ("1", Some(S)),
            ("1705314645", Some(1_705_314_645 * S)),
            // The last second of 9999 in seconds, not milliseconds of 1978.
            ("253402300799", Some(253_402_300_799 * S)),
            // One more is milliseconds: 1978-01-11T21:31:40.800Z.
            ("253402300800", Some(253_402_300_800_000)),
            ("1705314645123", Some(1_705_314_645_123_000)),
            ("253402300799999", Some(MAX_MICROS - 999)),
            ("253402300800000", Some(253_402_300_800_000)),
            ("1705314645123456", Some(1_705_314_645_123_456)),
            ("253402300799999999", Some(MAX_MICROS)),
            ("253402300800000000", Some(253_402_300_800_000)),
            ("1705314645123456789", Some(1_705_314_645_123_456)),
            ("253402300799999999999", Some(MAX_MICROS)),
            // Past nanoseconds of year 9999: not an instant.
            ("253402300800000000000", None),
            ("99999999999999999999999999", None),
            // Fractions, exactly.
            ("1705314645.123", Some(1_705_314_645_123_000)),
            ("1705314645.1234567", Some(1_705_314_645_123_456)),
            ("1705314645123.5", Some(1_705_314_645_123_500)),
            ("0.000001", Some(1)),
            (".5", Some(S / 2)),
            ("+5", Some(5 * S)),
            ("17e8", Some(1_700_000_000 * S)),
            ("1.705314645123E12", Some(1_705_314_645_123_000)),
            // Before 1970: the same rule on the magnitude.
            ("-5", Some(-5 * S)),
            ("-1.5", Some(-3 * S / 2)),
            ("-0.0000005", Some(-1)),
            ("-62135596800", Some(MIN_MICROS)),
            ("-62135596801", None),
            ("-253402300799", None),
            ("-253402300800", Some(-253_402_300_800_000)),
            ("-62135596800000", Some(MIN_MICROS)),
            // Not numbers.
            ("", None),
            ("-", None),
            (".", None),
            ("12a", None),
            ("1.2.3", None),
            ("0x10", None),
            ("NaN", None),
            ("inf", None),
            ("1e400", None),
        ];
        for (text, want) in cases {
            assert_eq!(from_text(text), *want, "{text:?}");
        }
    }

    #[test]
    fn integers_and_floats_agree_with_text() {
        for v in [
            0i128,
            1_705_314_645,
            253_402_300_799,
            253_402_300_800,
            1_705_314_645_123,
            1_705_314_645_123_456_789,
            -5,
            -62_135_596_800,
        ] {
            assert_eq!(from_int(v), from_text(&v.to_string()), "{v}");
        }
        assert_eq!(from_f64(1_705_314_645.123), Some(1_705_314_645_123_000));
        assert_eq!(from_f64(253_402_300_799.0), Some(253_402_300_799 * S));
        assert_eq!(from_f64(-5.0), Some(-5 * S));
        assert_eq!(from_f64(f64::NAN), None);
        assert_eq!(from_f64(1e30), None);
    }

    #[test]
    fn fixed_units_keep_their_unit_and_the_range_check() {
        // Loki's "-5": five nanoseconds before 1970, not 1970 and not the receive time.
        assert_eq!(from_int_in(-5, Unit::Nanos), Some(-1));
        assert_eq!(
            from_int_in(1_705_314_645_123_456_789, Unit::Nanos),
            Some(1_705_314_645_123_456)
        );
        assert_eq!(
            from_int_in(i128::from(u64::MAX), Unit::Nanos),
            Some(18_446_744_073_709_551)
        );
        assert_eq!(
            from_int_in(i128::from(i64::MAX) * 1_000_000, Unit::Nanos),
            None
        );
        assert_eq!(
            from_int_in(MAX_SECONDS.into(), Unit::Seconds),
            Some(MAX_SECONDS * S)
        );
        assert_eq!(
            from_int_in(i128::from(MAX_SECONDS) + 1, Unit::Seconds),
            None
        );
        assert_eq!(from_int_in(i128::MAX, Unit::Seconds), None);
    }
}
