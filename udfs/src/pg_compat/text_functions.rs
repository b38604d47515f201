//! PostgreSQL's text functions DataFusion lacks or answers differently: `quote_literal(text)`,
//! `quote_ident(text)` (quoting upper case and keywords), `format(fmt, …)` with
//! `%s`, `%I`, `%L`, `%%` and positional `%n$s`, and `jsonb_typeof(json)`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::columnar::{answer, rows};
use crate::sqlstate;

/// `'it''s'`; with a backslash, PostgreSQL's escape-string form `E'a\\b'`.
pub fn quote_literal(s: &str) -> String {
    let body = s.replace('\'', "''");
    if s.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// PostgreSQL's keywords that are not unreserved (reserved, type/function-name and column-name
/// keywords): `quote_ident` quotes these.
const QUOTED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// An identifier quoted only when it must be, as PostgreSQL's `quote_ident` does: anything
/// but lower-case letters, digits and `_` (not leading with a digit), or a keyword.
pub fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !QUOTED_KEYWORDS.contains(&s) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// PostgreSQL's `format()`.
pub fn format(fmt: &str, args: &[Option<String>]) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        let index = if digits.is_empty() {
            None
        } else if chars.next_if_eq(&'$').is_some() {
            let n: usize = digits.parse().map_err(|_| "bad argument position")?;
            Some(
                n.checked_sub(1)
                    .ok_or("format argument positions start at 1")?,
            )
        } else {
            return Err("format widths are not supported".into());
        };
        let kind = chars.next().ok_or("unterminated format() type specifier")?;
        if kind == '%' && index.is_none() {
            out.push('%');
            continue;
        }
        let i = index.unwrap_or(next);
        next = i + 1;
        let arg = args.get(i).ok_or("too few arguments for format()")?;
        match kind {
            's' => out.push_str(arg.as_deref().unwrap_or("")),
            'I' => out.push_str(&quote_ident(
                arg.as_deref()
                    .ok_or("null values cannot be formatted as an SQL identifier")?,
            )),
            'L' => out.push_str(&arg.as_deref().map_or("NULL".into(), quote_literal)),
            other => return Err(format!("unrecognized format() type specifier \"{other}\"")),
        }
    }
    Ok(out)
}

/// Every argument as text, row by row; the answer a scalar when every argument was one.
fn text_rows(
    args: &ScalarFunctionArgs,
    row: impl Fn(&[Option<String>]) -> Result<Option<String>>,
) -> Result<ColumnarValue> {
    let n = rows(&args.args, args.number_rows);
    let columns: Vec<_> = args
        .args
        .iter()
        .map(|a| cast(&a.to_array(n)?, &DataType::Utf8).map_err(Into::into))
        .collect::<Result<_>>()?;
    let len = columns.first().map_or(1, |c| c.len());
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let values: Vec<Option<String>> = columns
            .iter()
            .map(|c| {
                let c = c.as_string::<i32>();
                (!c.is_null(i)).then(|| c.value(i).to_string())
            })
            .collect();
        out.push(row(&values)?);
    }
    answer(&args.args, Arc::new(StringArray::from(out)))
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Which {
    QuoteLiteral,
    QuoteIdent,
    Format,
    JsonbTypeof,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TextFn {
    which: Which,
    signature: Signature,
}

impl ScalarUDFImpl for TextFn {
    fn name(&self) -> &str {
        match self.which {
            Which::QuoteLiteral => "quote_literal",
            Which::QuoteIdent => "quote_ident",
            Which::Format => "format",
            Which::JsonbTypeof => "jsonb_typeof",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let arity_ok = match self.which {
            Which::Format => !args.is_empty(),
            _ => args.len() == 1,
        };
        if !arity_ok {
            return crate::query_err!(
                sqlstate::UNDEFINED_FUNCTION,
                "function {}() does not take {} arguments",
                self.name(),
                args.len()
            );
        }
        Ok(vec![DataType::Utf8; args.len()])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match self.which {
            Which::QuoteLiteral => text_rows(&args, |v| {
                Ok(v.first().cloned().flatten().map(|s| quote_literal(&s)))
            }),
            Which::QuoteIdent => text_rows(&args, |v| {
                Ok(v.first().cloned().flatten().map(|s| quote_ident(&s)))
            }),
            Which::JsonbTypeof => text_rows(&args, |v| {
                let Some(text) = v.first().cloned().flatten() else {
                    return Ok(None);
                };
                Ok(serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .map(|j| {
                        match j {
                            serde_json::Value::Null => "null",
                            serde_json::Value::Bool(_) => "boolean",
                            serde_json::Value::Number(_) => "number",
                            serde_json::Value::String(_) => "string",
                            serde_json::Value::Array(_) => "array",
                            serde_json::Value::Object(_) => "object",
                        }
                        .to_string()
                    }))
            }),
            Which::Format => text_rows(&args, |v| {
                let Some(fmt) = v.first().cloned().flatten() else {
                    return Ok(None);
                };
                format(&fmt, v.get(1..).unwrap_or(&[]))
                    .map(Some)
                    .or_else(|e| crate::query_err!(sqlstate::INVALID_PARAMETER_VALUE, "{e}"))
            }),
        }
    }
}

/// `quote_literal`, `quote_ident`, `format`, `jsonb_typeof`.
pub fn text_function_udfs() -> Vec<ScalarUDF> {
    [
        Which::QuoteLiteral,
        Which::QuoteIdent,
        Which::Format,
        Which::JsonbTypeof,
    ]
    .into_iter()
    .map(|which| {
        ScalarUDF::new_from_impl(TextFn {
            which,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_quote_as_postgresql_does() {
        let args = |v: &[Option<&str>]| v.iter().map(|s| s.map(str::to_string)).collect::<Vec<_>>();
        assert_eq!(
            format("%s-%s", &args(&[Some("a"), Some("1")])),
            Ok("a-1".into())
        );
        assert_eq!(
            format("%I.%L %% %2$s", &args(&[Some("Logs"), Some("it's")])),
            Ok("\"Logs\".'it''s' % it's".into())
        );
        assert_eq!(format("%L", &args(&[None])), Ok("NULL".into()));
        assert!(format("%s %s", &args(&[Some("a")])).is_err());
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
        assert_eq!(quote_ident("Logs"), "\"Logs\"");
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_ident("logs_2"), "logs_2");
        assert_eq!(quote_ident("level"), "level");
    }
}
