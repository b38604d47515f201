//! PostgreSQL's text functions DataFusion lacks or answers differently: `quote_literal(text)`,
//! `quote_ident(text)` (quoting upper case and keywords), `format(fmt, …)` with
//! `%s`, `%I`, `%L`, `%%` and positional `%n$s`, and `jsonb_typeof(json)`.

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::columnar::{answer, rows, Texts};
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

/// Why `format()` refused.
#[derive(Debug, PartialEq)]
pub enum FormatError {
    /// A bad specifier or too few arguments (22023).
    Invalid(String),
    /// The result would pass PostgreSQL's 1 GB field limit (54000): `%1$s` repeated over a
    /// large argument multiplies it, so the size is checked as the result grows.
    TooLarge,
}

impl From<&str> for FormatError {
    fn from(s: &str) -> FormatError {
        FormatError::Invalid(s.to_string())
    }
}

impl From<String> for FormatError {
    fn from(s: String) -> FormatError {
        FormatError::Invalid(s)
    }
}

/// One part of a `format()` result.
enum Piece<'a> {
    Char(char),
    Arg(char, Option<&'a str>),
}

/// PostgreSQL's `format()`. The pieces are read first and the result's size bounded before it
/// is built: `%1$s` repeated over a large argument multiplies it.
pub fn format(fmt: &str, args: &[Option<&str>]) -> std::result::Result<String, FormatError> {
    let mut pieces = Vec::new();
    let mut chars = fmt.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            pieces.push(Piece::Char(c));
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
            pieces.push(Piece::Char('%'));
            continue;
        }
        if !matches!(kind, 's' | 'I' | 'L') {
            return Err(format!("unrecognized format() type specifier \"{kind}\"").into());
        }
        let i = index.unwrap_or(next);
        next = i + 1;
        let arg = args.get(i).ok_or("too few arguments for format()")?;
        pieces.push(Piece::Arg(kind, *arg));
    }
    // Quoting at most doubles an argument and adds `E''`.
    let bound: u128 = pieces
        .iter()
        .map(|p| match p {
            Piece::Char(c) => c.len_utf8() as u128,
            Piece::Arg(_, a) => 2 * a.map_or(4, str::len) as u128 + 3,
        })
        .sum();
    if bound > crate::limits::MAX_VALUE_BYTES {
        return Err(FormatError::TooLarge);
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Char(c) => out.push(c),
            Piece::Arg('I', arg) => out.push_str(&quote_ident(
                arg.ok_or("null values cannot be formatted as an SQL identifier")?,
            )),
            Piece::Arg('L', arg) => out.push_str(&arg.map_or("NULL".into(), quote_literal)),
            Piece::Arg(_, arg) => out.push_str(arg.unwrap_or("")),
        }
    }
    Ok(out)
}

/// Every argument as text, row by row; the answer a scalar when every argument was one.
fn text_rows(
    args: &ScalarFunctionArgs,
    row: impl Fn(&[Option<&str>]) -> Result<Option<String>>,
) -> Result<ColumnarValue> {
    let len = rows(&args.args, args.number_rows);
    let columns: Vec<Texts> = args.args.iter().map(Texts::new).collect::<Result<_>>()?;
    let mut total: u128 = 0;
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let values: Vec<Option<&str>> = columns.iter().map(|c| c.get(i)).collect();
        let value = row(&values)?;
        // Arrow's offsets are 32-bit: the batch's text stays within 1 GB.
        total += value.as_ref().map_or(0, |v| v.len() as u128);
        if total > crate::limits::MAX_VALUE_BYTES {
            return crate::query_err!(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                "the result exceeds the maximum size of 1 GB"
            );
        }
        out.push(value);
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
                Ok(v.first().copied().flatten().map(quote_literal))
            }),
            Which::QuoteIdent => {
                text_rows(&args, |v| Ok(v.first().copied().flatten().map(quote_ident)))
            }
            Which::JsonbTypeof => text_rows(&args, |v| {
                let Some(text) = v.first().copied().flatten() else {
                    return Ok(None);
                };
                Ok(serde_json::from_str::<serde_json::Value>(text)
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
                let Some(fmt) = v.first().copied().flatten() else {
                    return Ok(None);
                };
                match format(fmt, v.get(1..).unwrap_or(&[])) {
                    Ok(text) => Ok(Some(text)),
                    Err(FormatError::Invalid(e)) => {
                        crate::query_err!(sqlstate::INVALID_PARAMETER_VALUE, "{e}")
                    }
                    Err(FormatError::TooLarge) => crate::query_err!(
                        sqlstate::PROGRAM_LIMIT_EXCEEDED,
                        "format() result exceeds the maximum value size of 1 GB"
                    ),
                }
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
        let args = |v: &[Option<&'static str>]| v.to_vec();
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
        let big = "x".repeat(1 << 20);
        let many = "%1$s".repeat(2048);
        assert_eq!(
            format(&many, &[Some(big.as_str())]),
            Err(FormatError::TooLarge)
        );
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
        assert_eq!(quote_ident("Logs"), "\"Logs\"");
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_ident("logs_2"), "logs_2");
        assert_eq!(quote_ident("level"), "level");
    }
}
