//! What a tail stream sends ([`TailEvent`]): each row as one JSON object, and the event id a
//! client resumes from (`Last-Event-ID`).
//!
//! A live row's id is `SEQ.ROW.INGEST.TS`: the WAL sequence number of its batch, its place in
//! the batch, its `ingest_ts` and its `ts` (µs). A backfilled row's is `bTHROUGH.TS.K`: the sequence number
//! the backfill's view ends at, the row's `ts` (µs), and how many rows with that same `ts` the
//! backfill sent before it.

use datafusion::arrow::array::{Array, AsArray, BooleanArray, StringArray};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::query::pinned::RowFilter;

/// Where a stream stood when its client last heard from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Live {
        seq: u64,
        row: u32,
        ingest: i64,
        ts: i64,
    },
    Backfill {
        through: u64,
        ts: i64,
        k: u32,
    },
}

/// A `Last-Event-ID` that is no id of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Last-Event-ID {0:?} is not an event id of this stream (SEQ.ROW.INGEST.TS or bSEQ.TS.K)")]
pub struct BadCursor(pub String);

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, BadCursor> {
        let bad = || BadCursor(text.chars().take(80).collect());
        let (backfill, rest) = match text.trim().strip_prefix('b') {
            Some(rest) => (true, rest),
            None => (false, text.trim()),
        };
        let parts: Vec<&str> = rest.split('.').collect();
        match (backfill, parts.as_slice()) {
            (true, [through, ts, k]) => Ok(Cursor::Backfill {
                through: through.parse().map_err(|_| bad())?,
                ts: ts.parse().map_err(|_| bad())?,
                k: k.parse().map_err(|_| bad())?,
            }),
            (false, [seq, row, ingest, ts]) => Ok(Cursor::Live {
                seq: seq.parse().map_err(|_| bad())?,
                row: row.parse().map_err(|_| bad())?,
                ingest: ingest.parse().map_err(|_| bad())?,
                ts: ts.parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }

    pub fn render(&self) -> String {
        match self {
            Cursor::Live {
                seq,
                row,
                ingest,
                ts,
            } => format!("{seq}.{row}.{ingest}.{ts}"),
            Cursor::Backfill { through, ts, k } => format!("b{through}.{ts}.{k}"),
        }
    }
}

/// One row as a client reads it.
#[derive(Serialize)]
struct Row<'a> {
    ts: String,
    ingest_ts: String,
    service: &'a str,
    host: &'a str,
    level: &'a str,
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    attrs: AttrsJson<'a>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    parse_failed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

/// `attrs` as the object it holds (or as text when it holds no JSON object).
#[derive(Serialize)]
#[serde(untagged)]
enum AttrsJson<'a> {
    Object(&'a RawValue),
    Text(&'a str),
}

/// The columns of a `logs` batch a row is written from.
pub struct Columns<'a> {
    ts: &'a [i64],
    ingest: &'a [i64],
    service: &'a StringArray,
    host: &'a StringArray,
    level: &'a StringArray,
    msg: &'a StringArray,
    trace_id: &'a StringArray,
    attrs: &'a StringArray,
    parse_failed: &'a BooleanArray,
    truncated: &'a BooleanArray,
}

impl<'a> Columns<'a> {
    /// The columns of `batch`, when it has the `logs` schema.
    pub fn of(batch: &'a RecordBatch) -> Option<Columns<'a>> {
        let text = |n: &str| batch.column_by_name(n)?.as_string_opt::<i32>();
        let flag = |n: &str| batch.column_by_name(n)?.as_boolean_opt();
        let time = |n: &str| {
            batch
                .column_by_name(n)?
                .as_primitive_opt::<TimestampMicrosecondType>()
                .map(|a| a.values().as_ref())
        };
        Some(Columns {
            ts: time("ts")?,
            ingest: time("ingest_ts")?,
            service: text("service")?,
            host: text("host")?,
            level: text("level")?,
            msg: text("msg")?,
            trace_id: text("trace_id")?,
            attrs: text("attrs")?,
            parse_failed: flag("parse_failed")?,
            truncated: flag("truncated")?,
        })
    }

    pub fn ts(&self, i: usize) -> i64 {
        self.ts[i]
    }

    pub fn ingest(&self, i: usize) -> i64 {
        self.ingest[i]
    }

    /// Row `i` as JSON.
    pub fn json(&self, i: usize) -> String {
        let attrs_text = self.attrs.value(i);
        let attrs = match serde_json::from_str::<&RawValue>(attrs_text) {
            Ok(raw) if attrs_text.trim_start().starts_with('{') => AttrsJson::Object(raw),
            _ => AttrsJson::Text(attrs_text),
        };
        let row = Row {
            ts: time_text(self.ts[i]),
            ingest_ts: time_text(self.ingest[i]),
            service: self.service.value(i),
            host: self.host.value(i),
            level: self.level.value(i),
            msg: self.msg.value(i),
            trace_id: (!self.trace_id.is_null(i)).then(|| self.trace_id.value(i)),
            attrs,
            parse_failed: self.parse_failed.value(i),
            truncated: self.truncated.value(i),
        };
        serde_json::to_string(&row).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// What a stream sends its client.
#[derive(Debug, Clone, PartialEq)]
pub enum TailEvent {
    /// A row: its id and its JSON.
    Row { id: String, json: String },
    /// Rows that matched but were not sent: `count` of them (`None` when they left the hot
    /// buffer before the stream read them, uncounted), and why.
    Dropped {
        count: Option<u64>,
        reason: &'static str,
    },
    /// The backfill held more rows than its limit: only the newest `sent` are sent, the
    /// oldest of them at `from`.
    Truncated { sent: usize, from: String },
    /// The backfill is over: from here on rows arrive as they are ingested.
    Live,
}

/// Calls `emit` with the time, id and JSON of each row of batch `seq` (from row `skip` on)
/// that passes `filter`.
pub fn matching(
    filter: &RowFilter,
    seq: u64,
    batch: &RecordBatch,
    skip: usize,
    emit: &mut dyn FnMut(i64, Cursor, String),
) -> Result<(), DataFusionError> {
    if skip >= batch.num_rows() {
        return Ok(());
    }
    let mask = filter.mask(batch)?;
    let Some(c) = Columns::of(batch) else {
        return Ok(());
    };
    for i in skip..batch.num_rows() {
        if !mask.value(i) {
            continue;
        }
        let id = Cursor::Live {
            seq,
            row: i as u32,
            ingest: c.ingest(i),
            ts: c.ts(i),
        };
        emit(c.ts(i), id, c.json(i));
    }
    Ok(())
}

/// A time as RFC 3339 in UTC with microseconds.
pub fn time_text(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| us.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_and_foreign_ones_are_refused() {
        for c in [
            Cursor::Live {
                seq: 7,
                row: 3,
                ingest: 1_700_000_000_000_000,
                ts: -1,
            },
            Cursor::Backfill {
                through: 9,
                ts: -5,
                k: 2,
            },
        ] {
            assert_eq!(Cursor::parse(&c.render()), Ok(c));
        }
        for bad in [
            "",
            "1.2",
            "x.1.2.3",
            "1.2.3",
            "1.2.3.4.5",
            "b1.2",
            "b1.2.3.4",
            "1.-2.3.4",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_row_is_one_json_object_with_attrs_as_an_object() {
        let records = vec![crate::model::LogRecord {
            ts: 1_000_000,
            ingest_ts: 2_000_000,
            tenant: "t".into(),
            service: "api".into(),
            host: "h".into(),
            level: "ERROR".into(),
            msg: "card declined".into(),
            trace_id: None,
            attrs: r#"{"region":"eu"}"#.into(),
            parse_failed: false,
            truncated: false,
        }];
        let batch = crate::model::records_to_batch(&records).expect("batch");
        let cols = Columns::of(&batch).expect("logs columns");
        let v: serde_json::Value = serde_json::from_str(&cols.json(0)).expect("json");
        assert_eq!(v["service"], "api");
        assert_eq!(v["attrs"]["region"], "eu");
        assert_eq!(v["ts"], "1970-01-01T00:00:01.000000Z");
        assert!(v.get("parse_failed").is_none());
    }
}
