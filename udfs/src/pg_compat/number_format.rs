//! `to_char(number, pattern)`: PostgreSQL's numeric templates `9` (a digit, blank when
//! leading), `0` (a digit, zero when leading), `.`/`D` (the decimal point), `,`/`G` (a group
//! separator, blank among leading blanks), `FM` (no padding: leading blanks and the trailing
//! zeros of `9` places dropped), and the sign as `S`, `MI`, `PL`, `SG`, or by default a `-`
//! just before the first digit (a blank for a positive value). A value with more integer
//! digits than the pattern prints `#` in every digit place, as PostgreSQL does.

/// One element of a numeric pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Nine,
    Zero,
    Point,
    Group,
    /// `S`: `-` or `+`.
    Sign,
    /// `MI`: `-` or a blank.
    Minus,
    /// `PL`: `+` or a blank.
    Plus,
    /// `SG`: `-` or `+`.
    SignAlways,
    Literal(char),
}

/// The pattern's parts and whether it is in fill mode (`FM`); an unsupported template
/// pattern is an error naming it.
fn parse(pattern: &str) -> Result<(Vec<Part>, bool), String> {
    let mut parts = Vec::new();
    let mut fill = false;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let two: String = chars[i..chars.len().min(i + 2)]
            .iter()
            .collect::<String>()
            .to_ascii_uppercase();
        let (part, width) = match (chars[i], two.as_str()) {
            (_, "FM") => {
                fill = true;
                i += 2;
                continue;
            }
            (_, "MI") => (Part::Minus, 2),
            (_, "PL") => (Part::Plus, 2),
            (_, "SG") => (Part::SignAlways, 2),
            (_, "PR" | "EE" | "RN" | "TH" | "V9") => {
                return Err(format!("to_char() pattern \"{two}\" is not supported"))
            }
            ('9', _) => (Part::Nine, 1),
            ('0', _) => (Part::Zero, 1),
            ('.' | 'D' | 'd', _) => (Part::Point, 1),
            (',' | 'G' | 'g', _) => (Part::Group, 1),
            ('S' | 's', _) => (Part::Sign, 1),
            ('L' | 'l', _) => return Err("to_char() pattern \"L\" is not supported".into()),
            (c, _) => (Part::Literal(c), 1),
        };
        parts.push(part);
        i += width;
    }
    Ok((parts, fill))
}

/// `value` written with `pattern`, as PostgreSQL's `to_char(numeric, text)`.
pub fn format_number(value: f64, pattern: &str) -> Result<String, String> {
    let (parts, fill) = parse(pattern)?;
    let is_digit = |p: &Part| matches!(p, Part::Nine | Part::Zero);
    let point = parts.iter().position(|p| *p == Part::Point);
    let integer_parts = &parts[..point.unwrap_or(parts.len())];
    let int_places = integer_parts.iter().filter(|p| is_digit(p)).count();
    let frac_places = point.map_or(0, |at| parts[at..].iter().filter(|p| is_digit(p)).count());
    let negative = value < 0.0;
    let text = format!("{:.*}", frac_places, value.abs());
    let (int_text, frac_text) = text.split_once('.').unwrap_or((text.as_str(), ""));
    // A zero integer part prints no digit, unless nothing else would print.
    let int_text = match (int_text, frac_places) {
        ("0", 0) => "0",
        ("0", _) => "",
        (t, _) => t,
    };
    let int_digits: Vec<char> = int_text.chars().collect();
    let frac_digits: Vec<char> = frac_text.chars().collect();
    let overflow = int_digits.len() > int_places || !value.is_finite();
    let offset = int_places.saturating_sub(int_digits.len());
    // The first integer place a `0` forces to print.
    let zero_from = integer_parts
        .iter()
        .filter(|p| is_digit(p))
        .position(|p| *p == Part::Zero)
        .unwrap_or(int_places);
    let first_digit = parts.iter().position(is_digit).unwrap_or(parts.len());
    // A sign written before the first digit (`S999`) floats to the number, as the default one.
    let floating_sign = parts[..first_digit.min(parts.len())]
        .iter()
        .find(|p| matches!(p, Part::Sign | Part::SignAlways | Part::Minus | Part::Plus))
        .copied();
    let sign_char = match (floating_sign, negative) {
        (_, true) => Some('-'),
        (Some(Part::Sign | Part::SignAlways | Part::Plus), false) => Some('+'),
        _ => None,
    };
    let mut body = String::new();
    let mut place = 0usize;
    let mut frac_at = 0usize;
    let mut started = false;
    let mut pending_zeros = String::new();
    // Where the floating sign goes: before the first printed digit or point.
    let mut sign_at: Option<usize> = None;
    for (i, part) in parts.iter().enumerate() {
        let in_fraction = point.is_some_and(|at| i > at);
        match part {
            Part::Nine | Part::Zero if !in_fraction => {
                let here = place;
                place += 1;
                if overflow {
                    body.push('#');
                    continue;
                }
                if here < offset && here < zero_from {
                    if !fill {
                        body.push(' ');
                    }
                    continue;
                }
                if !started {
                    sign_at = Some(body.len());
                    started = true;
                }
                body.push(if here >= offset {
                    int_digits[here - offset]
                } else {
                    '0'
                });
            }
            Part::Nine | Part::Zero => {
                let d = if overflow {
                    '#'
                } else {
                    frac_digits.get(frac_at).copied().unwrap_or('0')
                };
                frac_at += 1;
                if fill && *part == Part::Nine && d == '0' {
                    pending_zeros.push(d);
                } else {
                    body.push_str(&pending_zeros);
                    pending_zeros.clear();
                    body.push(d);
                }
            }
            Part::Point => {
                if !started {
                    sign_at = Some(body.len());
                    started = true;
                }
                body.push('.');
            }
            Part::Group => {
                if started || overflow {
                    body.push(',');
                } else if !fill {
                    body.push(' ');
                }
            }
            p if Some(*p) == floating_sign && i < first_digit => {}
            Part::Sign | Part::SignAlways => body.push(if negative { '-' } else { '+' }),
            Part::Minus => match (negative, fill) {
                (true, _) => body.push('-'),
                (false, false) => body.push(' '),
                (false, true) => {}
            },
            Part::Plus => match (negative, fill) {
                (false, _) => body.push('+'),
                (true, false) => body.push(' '),
                (true, true) => {}
            },
            Part::Literal(c) => body.push(*c),
        }
    }
    // The sign's own place: one more column before the number, unless filled.
    let sign_at = sign_at.unwrap_or(0);
    let mut out = String::with_capacity(body.len() + 1);
    // `PL` keeps the default sign's column (PostgreSQL prints `999PL` of 12 as `  12+`).
    let explicit_trailing = floating_sign.is_none()
        && parts
            .iter()
            .any(|p| matches!(p, Part::Sign | Part::SignAlways | Part::Minus));
    match (explicit_trailing, fill) {
        (true, _) => out.push_str(&body),
        (false, true) => {
            out.push_str(&body[..sign_at]);
            if let Some(c) = sign_char {
                out.push(c);
            }
            out.push_str(&body[sign_at..]);
        }
        (false, false) => {
            out.push_str(&body[..sign_at]);
            out.push(sign_char.unwrap_or(' '));
            out.push_str(&body[sign_at..]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_as_in_postgresql() {
        // Each checked against PostgreSQL 15.
        for (value, pattern, want) in [
            (1234.5, "9999.99", " 1234.50"),
            (42.0, "000", " 042"),
            (-42.0, "999", " -42"),
            (42.0, "FM999", "42"),
            (0.5, "9.99", "  .50"),
            (0.5, "0.99", " 0.50"),
            (-1234.5, "9999.99", "-1234.50"),
            (1_234_567.0, "9,999,999", " 1,234,567"),
            (5.0, "9,999", "     5"),
            (1.5, "FM9.99", "1.5"),
            (1.0, "FM9.99", "1."),
            (12345.0, "999", " ###"),
            (-5.0, "S999", "  -5"),
            (5.0, "S999", "  +5"),
            (5.0, "999MI", "  5 "),
            (-5.0, "999MI", "  5-"),
            (2.345, "9.99", " 2.35"),
            (-0.5, "9.99", " -.50"),
            (-5.0, "FM999", "-5"),
            (0.0, "999", "   0"),
            (0.0, "9.99", "  .00"),
            (1234.5, "99G999D9", "  1,234.5"),
            (7.0, "9990", "    7"),
            (-7.5, "FM0.00", "-7.50"),
            (12.0, "999PL", "  12+"),
        ] {
            assert_eq!(
                format_number(value, pattern).as_deref(),
                Ok(want),
                "{value} {pattern}"
            );
        }
        assert!(format_number(1.0, "9.99EEEE").is_err());
    }
}
