//! `LIKE … ESCAPE 'c'` with an escape character other than the backslash (SQLAlchemy escapes
//! with `/`): the pattern rewritten to the backslash-escaped one the engine takes. A constant
//! pattern is rewritten once by the SQL front end; a bound one (`LIKE $1 ESCAPE '/'`) by
//! `pg_like_escape(pattern, escape)` for each value.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};

use super::columnar::{answer, rows, Texts};
use crate::sqlstate;

/// `pattern` written with the one-character (or no) `escape` as the same pattern escaped by
/// backslashes; `None` when it ends with its escape character (an error in PostgreSQL).
pub fn backslash_escaped(pattern: &str, escape: Option<char>) -> Option<String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(next @ ('%' | '_' | '\\')) => {
                    out.push('\\');
                    out.push(next);
                }
                Some(next) => out.push(next),
                None => return None,
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The `pg_like_escape(pattern, escape)` function.
pub fn like_escape_udf() -> ScalarUDF {
    create_udf(
        "pg_like_escape",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let n = rows(
                args,
                args.iter()
                    .find_map(|a| match a {
                        ColumnarValue::Array(x) => Some(x.len()),
                        ColumnarValue::Scalar(_) => None,
                    })
                    .unwrap_or(1),
            );
            let (Some(pattern), Some(escape)) = (args.first(), args.get(1)) else {
                return crate::query_err!(
                    sqlstate::UNDEFINED_FUNCTION,
                    "pg_like_escape takes two arguments"
                );
            };
            let (patterns, escapes) = (Texts::new(pattern)?, Texts::new(escape)?);
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let (Some(p), Some(e)) = (patterns.get(i), escapes.get(i)) else {
                    out.push(None);
                    continue;
                };
                if e.chars().count() > 1 {
                    return crate::query_err!(
                        sqlstate::INVALID_ESCAPE_SEQUENCE,
                        "invalid escape string: escape string must be empty or one character"
                    );
                }
                match backslash_escaped(p, e.chars().next()) {
                    Some(escaped) => out.push(Some(escaped)),
                    None => {
                        return crate::query_err!(
                            sqlstate::INVALID_ESCAPE_SEQUENCE,
                            "LIKE pattern must not end with escape character"
                        )
                    }
                }
            }
            let out: ArrayRef = Arc::new(StringArray::from(out));
            answer(args, out)
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::backslash_escaped;

    #[test]
    fn like_patterns_with_another_escape_use_backslashes() {
        assert_eq!(
            backslash_escaped("pg/_%", Some('/')).as_deref(),
            Some("pg\\_%")
        );
        assert_eq!(backslash_escaped("a//b", Some('/')).as_deref(), Some("a/b"));
        assert_eq!(
            backslash_escaped("a\\b%", Some('/')).as_deref(),
            Some("a\\\\b%")
        );
        assert_eq!(backslash_escaped("50%", None).as_deref(), Some("50%"));
        assert_eq!(backslash_escaped("ab/", Some('/')), None);
    }
}
