//! PostgreSQL's text output for the values arrow-pg prints its own way: timestamps in the
//! session's `TimeZone`, with the fraction's trailing zeros dropped (`10:04:11.23757+01`, not
//! `09:04:11.237570+00`), floats in PostgreSQL's shortest form (`1705312680`, `1e+20`), and
//! `int2vector`/`oidvector` columns space-separated (`1 2`).
//! Text-format columns of those types are turned into their text here, before arrow-pg encodes
//! the rows; the columns keep their declared PostgreSQL types. Unsigned counts are `bigint`.

use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Schema, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use timberline_udfs::pg_compat::timestamp_text;

/// `plan` with its unsigned integer columns (`row_number()`, `rank()`, …) as `bigint`:
/// PostgreSQL has no unsigned types, and arrow-pg would describe them as `numeric`.
pub fn signed_counts(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    let unsigned = |t: &DataType| {
        matches!(
            t,
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64
        )
    };
    if !matches!(
        plan,
        LogicalPlan::Projection(_) | LogicalPlan::Sort(_) | LogicalPlan::Limit(_)
    ) || !plan
        .schema()
        .fields()
        .iter()
        .any(|f| unsigned(f.data_type()))
    {
        return Ok(plan);
    }
    let columns: Vec<Expr> = plan
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            if unsigned(field.data_type()) {
                datafusion::logical_expr::cast(column, DataType::Int64)
                    .alias_qualified(qualifier.cloned(), field.name())
            } else {
                column
            }
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(columns)?.build()
}

/// How one connection's text output is written.
#[derive(Debug, Clone)]
pub struct TextOutput {
    /// `None`: UTC.
    zone: Option<Tz>,
    /// Per column: whether it is sent as text (binary columns are left to arrow-pg).
    text: Arc<[bool]>,
    /// Per column: whether it is an `int2vector`/`oidvector`, printed `1 2` rather than `{1,2}`.
    vector: Arc<[bool]>,
}

impl TextOutput {
    /// For the columns `fields` in the session zone `time_zone` (UTC when it is not a zone
    /// arrow knows).
    pub fn new(time_zone: &str, fields: &[FieldInfo]) -> TextOutput {
        TextOutput {
            zone: Tz::from_str(time_zone).ok(),
            text: fields
                .iter()
                .map(|f| f.format() == FieldFormat::Text)
                .collect(),
            vector: fields
                .iter()
                .map(|f| matches!(*f.datatype(), Type::INT2_VECTOR | Type::OID_VECTOR))
                .collect(),
        }
    }

    /// The fields the rows are encoded with: as described, but a vector column (already its
    /// text here) encoded as plain text, which arrow-pg would quote as an array's element.
    pub fn encoding_fields(&self, fields: &Arc<Vec<FieldInfo>>) -> Arc<Vec<FieldInfo>> {
        if !self
            .vector
            .iter()
            .zip(self.text.iter())
            .any(|(v, t)| *v && *t)
        {
            return fields.clone();
        }
        Arc::new(
            fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let vector = self.vector.get(i).copied().unwrap_or(false);
                    if vector && f.format() == FieldFormat::Text {
                        FieldInfo::new(
                            f.name().to_string(),
                            f.table_id(),
                            f.column_id(),
                            Type::TEXT,
                            f.format(),
                        )
                    } else {
                        f.clone()
                    }
                })
                .collect(),
        )
    }

    /// `batch` with its text-format timestamp, float and vector columns as PostgreSQL's text.
    pub fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
        let schema = batch.schema();
        let mut changed = false;
        let mut columns = Vec::with_capacity(batch.num_columns());
        let mut fields = Vec::with_capacity(batch.num_columns());
        for (i, (column, field)) in batch.columns().iter().zip(schema.fields()).enumerate() {
            let as_text = self.text.get(i).copied().unwrap_or(false);
            let vector = self.vector.get(i).copied().unwrap_or(false);
            match as_text
                .then(|| self.column_text(column, vector))
                .transpose()?
            {
                Some(Some(text)) => {
                    changed = true;
                    fields.push(Field::new(field.name(), DataType::Utf8, true));
                    columns.push(text);
                }
                _ => {
                    fields.push(field.as_ref().clone());
                    columns.push(column.clone());
                }
            }
        }
        if !changed {
            return Ok(batch);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
    }

    fn column_text(&self, column: &ArrayRef, vector: bool) -> Result<Option<ArrayRef>, ArrowError> {
        let text: StringArray = match column.data_type() {
            DataType::List(_) if vector => {
                let lists = column.as_list::<i32>();
                let mut out = Vec::with_capacity(lists.len());
                for i in 0..lists.len() {
                    if lists.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    let items = cast(&lists.value(i), &DataType::Utf8)?;
                    let items = items.as_string::<i32>();
                    let words: Vec<&str> = items.iter().map(|v| v.unwrap_or("0")).collect();
                    out.push(Some(words.join(" ")));
                }
                out.into_iter().collect()
            }
            DataType::Timestamp(_, zone) => {
                let micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
                let micros = micros.as_primitive::<TimestampMicrosecondType>();
                let zoned = zone.is_some();
                micros
                    .iter()
                    .map(|v| v.map(|v| self.timestamp(v, zoned)))
                    .collect()
            }
            DataType::Float64 => column
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map(float8))
                .collect(),
            DataType::Float32 => column
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(float4))
                .collect(),
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(text)))
    }

    /// `micros` since the epoch as PostgreSQL prints a `timestamptz` (in the session zone, with
    /// its offset) or a `timestamp` (as is).
    fn timestamp(&self, micros: i64, zoned: bool) -> String {
        timestamp_text(micros, zoned, self.zone.as_ref())
    }
}

/// A `float8` as PostgreSQL prints it (shortest exact form; exponent from 1e15 up and below 1e-4).
pub fn float8(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    shortest(format!("{v}"), format!("{v:e}"), v.abs(), 1e15)
}

/// A `float4` as PostgreSQL prints it.
pub fn float4(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    shortest(format!("{v}"), format!("{v:e}"), f64::from(v.abs()), 1e6)
}

fn shortest(plain: String, exp: String, abs: f64, big: f64) -> String {
    if abs != 0.0 && (abs >= big || abs < 1e-4) {
        // Rust writes `1e20` and `1.5e-5`; PostgreSQL `1e+20` and `1.5e-05`.
        let (mantissa, exponent) = exp.split_once('e').unwrap_or((&exp, "0"));
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exponent),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    if plain == "-0" {
        return "-0".into();
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_postgresql_prints_them() {
        let out = |zone: &str, micros: i64, zoned: bool| {
            TextOutput::new(zone, &[]).timestamp(micros, zoned)
        };
        let t = 1_705_312_680_000_000; // 2024-01-15 09:58:00 UTC
        assert_eq!(out("UTC", t, true), "2024-01-15 09:58:00+00");
        assert_eq!(
            out("UTC", t + 237_570, true),
            "2024-01-15 09:58:00.23757+00"
        );
        assert_eq!(out("Europe/Berlin", t, true), "2024-01-15 10:58:00+01");
        assert_eq!(out("Asia/Kolkata", t, true), "2024-01-15 15:28:00+05:30");
        assert_eq!(
            out("America/St_Johns", t, true),
            "2024-01-15 06:28:00-03:30"
        );
        assert_eq!(
            out("Europe/Berlin", t + 1, false),
            "2024-01-15 09:58:00.000001"
        );
        assert_eq!(out("no/such_zone", t, true), "2024-01-15 09:58:00+00");
    }

    #[test]
    fn floats_print_as_postgresql_prints_them() {
        assert_eq!(float8(1_705_312_680.0), "1705312680");
        assert_eq!(float8(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(float8(2.5), "2.5");
        assert_eq!(float8(1e20), "1e+20");
        assert_eq!(float8(1.5e-5), "1.5e-05");
        assert_eq!(float8(123_456_789_012_345.0), "123456789012345");
        assert_eq!(float8(1e15), "1e+15");
        assert_eq!(float8(-0.0), "-0");
        assert_eq!(float8(f64::NAN), "NaN");
        assert_eq!(float8(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(float4(1.5), "1.5");
        assert_eq!(float4(1e7), "1e+07");
    }
}
