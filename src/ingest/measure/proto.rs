//! The protobuf side of [`measure`](super): a walk over the wire format (tags, varints,
//! lengths) that builds no struct, led by a [`Shape`] to tell which fields are messages,
//! strings and records; fields the shape does not name are skipped, as prost skips them.

use super::{charge, text, Kind, MeasureError, Open, Shape, Tally};
use crate::ingest::limits::Budget;

/// Deepest nesting of messages accepted (prost's own recursion limit).
const MAX_DEPTH: u32 = 100;

/// Measures a protobuf message of `shape`: what decoding it would build, refused once over a
/// limit, or a wire-format error for a body prost could not decode either.
pub fn measure(body: &[u8], shape: &'static Shape) -> Result<Budget, MeasureError> {
    let mut budget = Budget::default();
    message(body, shape, &mut budget, 0)?;
    Ok(budget)
}

fn message(
    mut buf: &[u8],
    shape: &'static Shape,
    budget: &mut Budget,
    depth: u32,
) -> Result<Tally, MeasureError> {
    if depth > MAX_DEPTH {
        return Err(MeasureError::Wire("messages nested too deeply"));
    }
    let mut open = Open::start(shape, budget)?;
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let number = key >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(MeasureError::Wire("invalid field number"));
        }
        match key & 7 {
            0 => {
                varint(&mut buf)?;
            }
            1 => {
                take(&mut buf, 8)?;
            }
            5 => {
                take(&mut buf, 4)?;
            }
            2 => {
                let len = varint(&mut buf)?;
                let len = usize::try_from(len).map_err(|_| truncated())?;
                let value = take(&mut buf, len)?;
                let Some(field) = shape.field(number) else {
                    continue;
                };
                let t = match field.kind {
                    Kind::Message(child) => message(value, child, budget, depth + 1)?,
                    Kind::Text | Kind::Any => text(budget, len)?,
                    // Packed numbers: a one-byte varint becomes up to eight bytes.
                    Kind::Scalar => charge(budget, len.saturating_mul(8))?,
                };
                open.add(Some(field), t);
            }
            3 => {
                if shape.field(number).is_some() {
                    return Err(MeasureError::Wire("a group where a field was expected"));
                }
                skip_group(&mut buf, number, depth)?;
            }
            _ => return Err(MeasureError::Wire("an invalid wire type")),
        }
    }
    Ok(open.close(budget)?)
}

/// Skips an unknown group (deprecated, built into nothing) up to its end tag.
fn skip_group(buf: &mut &[u8], number: u64, depth: u32) -> Result<(), MeasureError> {
    if depth > MAX_DEPTH {
        return Err(MeasureError::Wire("groups nested too deeply"));
    }
    loop {
        let key = varint(buf)?;
        let inner = key >> 3;
        match key & 7 {
            0 => {
                varint(buf)?;
            }
            1 => {
                take(buf, 8)?;
            }
            5 => {
                take(buf, 4)?;
            }
            2 => {
                let len = varint(buf)?;
                take(buf, usize::try_from(len).map_err(|_| truncated())?)?;
            }
            3 => skip_group(buf, inner, depth + 1)?,
            4 if inner == number => return Ok(()),
            _ => return Err(MeasureError::Wire("a group ends where it did not start")),
        }
    }
}

fn truncated() -> MeasureError {
    MeasureError::Wire("a field runs past the end of its message")
}

/// The next `len` bytes.
fn take<'a>(buf: &mut &'a [u8], len: usize) -> Result<&'a [u8], MeasureError> {
    if len > buf.len() {
        return Err(truncated());
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

/// A base-128 varint of at most ten bytes.
fn varint(buf: &mut &[u8]) -> Result<u64, MeasureError> {
    let mut value = 0u64;
    for i in 0..10 {
        let Some((&byte, rest)) = buf.split_first() else {
            return Err(truncated());
        };
        *buf = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(MeasureError::Wire("a varint longer than ten bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::limits::{LimitError, MAX_RECORDS};
    use crate::ingest::measure::shapes::OTLP_LOGS;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;

    fn records(n: usize) -> Vec<u8> {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn records_are_counted_and_the_one_past_the_limit_refused() {
        let b = measure(&records(1000), &OTLP_LOGS).unwrap_or_default();
        assert_eq!(b.records(), 1000);
        assert!(b.total_bytes() >= 1000 * std::mem::size_of::<LogRecord>());
        assert_eq!(
            measure(&records(MAX_RECORDS + 1), &OTLP_LOGS),
            Err(MeasureError::Limit(LimitError::Records {
                records: MAX_RECORDS + 1
            }))
        );
    }

    #[test]
    fn malformed_wire_format_is_refused_like_prost_refuses_it() {
        let body = records(3);
        for cut in 1..body.len() {
            let head = &body[..cut];
            if ExportLogsServiceRequest::decode(head).is_err() {
                assert!(measure(head, &OTLP_LOGS).is_err(), "cut at {cut}");
            }
        }
        assert!(measure(&[0xff; 11], &OTLP_LOGS).is_err());
        assert!(
            measure(&[0x0b], &OTLP_LOGS).is_err(),
            "a group that does not end"
        );
        // An unknown field 9 as a group holding a varint: skipped, as prost skips it.
        let group = [0x4b, 0x08, 0x01, 0x4c];
        assert!(ExportLogsServiceRequest::decode(&group[..]).is_ok());
        assert_eq!(measure(&group, &OTLP_LOGS).map(|b| b.records()), Ok(0));
    }
}
