//! Pass `operators`: PostgreSQL operators DataFusion reads differently or not at all, rewritten
//! on the parsed statement into what it plans with PostgreSQL's answer:
//!
//! - `x SIMILAR TO 'pattern'` becomes `x ~ '^(?s:regex)$'` with PostgreSQL's translation of the
//!   pattern (`%` → `.*`, `_` → `.`, `.` `^` `$` literal, the escape character honoured).
//! - `attrs #>> '{a,b}'` and `attrs #> '{a,b}'` become `json_as_text(attrs, 'a', 'b')` and
//!   `json_get_json(…)`; a chain `attrs -> 'a' ->> 'b'` becomes one call, so `->` yields JSON
//!   text rather than a union no client can read.
//! - `substring(x from 'regex')` is PostgreSQL's regex substring: the first parenthesized
//!   group's match, else the whole match (`regexp_match(x, 'regex')[1]`).
//! - `::json` and `::jsonb` casts are dropped: JSON values here are their text.
//! - `x LIKE 'p' ESCAPE '/'` becomes the same pattern escaped by backslashes; `::name` is
//!   `::text`.
//! - `timezone(z, x)` is `x AT TIME ZONE z`.
//! - `x AT TIME ZONE z` becomes `pg_at_time_zone(x, z)`: a `timestamptz` becomes the local
//!   `timestamp` of `z`, a `timestamp` is read as local time in `z`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement,
    Value, ValueWithSpan, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use timberline_udfs::pg_compat::backslash_escaped;

/// Applies the operator rewrites to `stmt`.
pub fn rewrite(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut Operators);
    stmt
}

/// Rewrites on the way down, so a JSON chain is seen whole before its links.
struct Operators;

impl VisitorMut for Operators {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Some(new) = rewritten(e) {
            *e = new;
        }
        ControlFlow::Continue(())
    }
}

fn rewritten(e: &Expr) -> Option<Expr> {
    match e {
        Expr::SimilarTo {
            negated,
            expr,
            pattern,
            escape_char,
        } => {
            let pattern = string_literal(pattern)?;
            let escape = match escape_char {
                None => Some('\\'),
                Some(v) => match &v.value {
                    Value::SingleQuotedString(s) if s.is_empty() => None,
                    Value::SingleQuotedString(s) if s.chars().count() == 1 => s.chars().next(),
                    _ => return None,
                },
            };
            let regex = similar_to_regex(pattern, escape);
            let op = if *negated { "!~" } else { "~" };
            parse(&format!("({expr}) {op} {}", quoted(&regex)))
        }
        Expr::BinaryOp { op, .. } if is_json_path_op(op) => {
            let (base, path, text) = json_chain(e)?;
            let func = if text {
                "json_as_text"
            } else {
                "json_get_json"
            };
            let args: Vec<String> = path.iter().map(|k| k.to_sql()).collect();
            parse(&format!("{func}({base}, {})", args.join(", ")))
        }
        Expr::Cast {
            expr, data_type, ..
        } if is_json_type(data_type) => Some(Expr::Nested(expr.clone())),
        // `name` is PostgreSQL's identifier type: its values are text here.
        Expr::Cast {
            kind,
            expr,
            data_type: DataType::Custom(name, _),
            array,
            format,
        } if name.to_string().eq_ignore_ascii_case("name")
            || name.to_string().eq_ignore_ascii_case("pg_catalog.name") =>
        {
            Some(Expr::Cast {
                kind: kind.clone(),
                expr: expr.clone(),
                data_type: DataType::Text,
                array: *array,
                format: format.clone(),
            })
        }
        Expr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: Some(escape),
        } => {
            let pattern = escaped_pattern(pattern, escape)?;
            Some(Expr::Like {
                negated: *negated,
                any: false,
                expr: expr.clone(),
                pattern,
                escape_char: None,
            })
        }
        Expr::ILike {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: Some(escape),
        } => {
            let pattern = escaped_pattern(pattern, escape)?;
            Some(Expr::ILike {
                negated: *negated,
                any: false,
                expr: expr.clone(),
                pattern,
                escape_char: None,
            })
        }
        Expr::Substring {
            expr,
            substring_from: Some(pattern),
            substring_for: None,
            ..
        } if string_literal(pattern).is_some() => {
            parse(&format!("(regexp_match({expr}, {pattern}))[1]"))
        }
        Expr::AtTimeZone {
            timestamp,
            time_zone,
        } => parse(&format!("pg_at_time_zone({timestamp}, {time_zone})")),
        // `timezone(zone, ts)` is the function form of `ts AT TIME ZONE zone` (Metabase).
        Expr::Function(f)
            if f.name.to_string().eq_ignore_ascii_case("timezone")
                || f.name
                    .to_string()
                    .eq_ignore_ascii_case("pg_catalog.timezone") =>
        {
            let FunctionArguments::List(list) = &f.args else {
                return None;
            };
            let [FunctionArg::Unnamed(FunctionArgExpr::Expr(zone)), FunctionArg::Unnamed(FunctionArgExpr::Expr(ts))] =
                list.args.as_slice()
            else {
                return None;
            };
            parse(&format!("pg_at_time_zone({ts}, {zone})"))
        }
        _ => None,
    }
}

/// One step of a JSON path: an object key or an array index.
enum Key {
    Name(String),
    Index(i64),
}

impl Key {
    fn to_sql(&self) -> String {
        match self {
            Key::Name(k) => quoted(k),
            Key::Index(i) => i.to_string(),
        }
    }
}

fn is_json_path_op(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Arrow
            | BinaryOperator::LongArrow
            | BinaryOperator::HashArrow
            | BinaryOperator::HashLongArrow
    )
}

/// `base -> k1 -> k2 ->> k3` as `(base, [k1, k2, k3], text?)`; `None` when a step is not a
/// literal (left to DataFusion's own operators).
fn json_chain(e: &Expr) -> Option<(String, Vec<Key>, bool)> {
    let Expr::BinaryOp { left, op, right } = e else {
        return None;
    };
    let steps = match op {
        BinaryOperator::Arrow | BinaryOperator::LongArrow => vec![single_key(right)?],
        _ => path_keys(string_literal(right)?)?,
    };
    let text = matches!(
        op,
        BinaryOperator::LongArrow | BinaryOperator::HashLongArrow
    );
    let (base, mut path) = match left.as_ref() {
        Expr::BinaryOp {
            op: BinaryOperator::Arrow | BinaryOperator::HashArrow,
            ..
        } => {
            let (base, path, _) = json_chain(left)?;
            (base, path)
        }
        Expr::Cast {
            expr, data_type, ..
        } if is_json_type(data_type) => (expr.to_string(), Vec::new()),
        other => (other.to_string(), Vec::new()),
    };
    path.extend(steps);
    Some((base, path, text))
}

fn single_key(e: &Expr) -> Option<Key> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) => Some(Key::Name(s.clone())),
        Expr::Value(ValueWithSpan {
            value: Value::Number(n, _),
            ..
        }) => n.parse().ok().map(Key::Index),
        _ => None,
    }
}

/// `'{a,b,0}'`: a text array of keys, digits taken as array indexes.
fn path_keys(text: &str) -> Option<Vec<Key>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|k| {
            let k = k.trim().trim_matches('"');
            Some(match k.parse::<i64>() {
                Ok(i) => Key::Index(i),
                Err(_) => Key::Name(k.to_string()),
            })
        })
        .collect()
}

/// The text of a constant text expression: a literal, literals joined by `||`, text casts of
/// them (SQLAlchemy writes `'pg/_'::VARCHAR || '%'`).
fn constant_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Nested(inner) => constant_text(inner),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } => Some(constant_text(left)? + &constant_text(right)?),
        Expr::Cast {
            expr,
            data_type: DataType::Varchar(_) | DataType::Text | DataType::CharacterVarying(_),
            ..
        } => constant_text(expr),
        other => string_literal(other).map(str::to_string),
    }
}

/// A constant LIKE `pattern` written with the one-character (or empty) `escape`, as the same
/// pattern escaped by backslashes; `None` when it is not constant, already backslash-escaped,
/// or ends with its escape character (an error PostgreSQL reports, left to the planner).
fn escaped_pattern(pattern: &Expr, escape: &ValueWithSpan) -> Option<Box<Expr>> {
    let escape_text = match &escape.value {
        Value::SingleQuotedString(s) if s.chars().count() <= 1 => s.clone(),
        _ => return None,
    };
    let escape = escape_text.chars().next();
    if escape == Some('\\') {
        return None;
    }
    let Some(text) = constant_text(pattern) else {
        // A bound pattern (`LIKE $1 ESCAPE '/'`) is rewritten for each value.
        return Some(Box::new(super::call(
            "pg_like_escape",
            vec![
                pattern.clone(),
                Expr::Value(Value::SingleQuotedString(escape_text).with_empty_span()),
            ],
        )));
    };
    let escaped = backslash_escaped(&text, escape)?;
    Some(Box::new(Expr::Value(
        Value::SingleQuotedString(escaped).with_empty_span(),
    )))
}

fn is_json_type(t: &DataType) -> bool {
    match t {
        DataType::JSON | DataType::JSONB => true,
        DataType::Custom(name, _) => name.to_string().eq_ignore_ascii_case("jsonb"),
        _ => false,
    }
}

fn string_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s),
            ..
        }) => Some(s),
        _ => None,
    }
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn parse(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

/// PostgreSQL's `similar_to_escape`: the whole string must match; `%` and `_` are wildcards,
/// `.`, `^` and `$` are literal, the rest of the regex syntax (`|`, `*`, `+`, `?`, `{}`, `()`,
/// `[]`) keeps its meaning; the escape character makes the next character literal.
pub fn similar_to_regex(pattern: &str, escape: Option<char>) -> String {
    // `(?s)`: `.` matches a newline, as in PostgreSQL (multi-line messages).
    let mut out = String::from("^(?s:");
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(next) = chars.next() {
                out.push_str(&regex::escape(&next.to_string()));
            }
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push(c);
            }
            ']' => {
                in_class = false;
                out.push(c);
            }
            _ if in_class => out.push(c),
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '.' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push_str(")$");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten_sql(sql: &str) -> String {
        let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        rewrite(stmts.remove(0)).to_string()
    }

    #[test]
    fn similar_to_is_an_anchored_regex() {
        assert_eq!(similar_to_regex("%(a|b)%", Some('\\')), "^(?s:.*(a|b).*)$");
        assert_eq!(similar_to_regex("a_c.d", Some('\\')), "^(?s:a.c\\.d)$");
        assert_eq!(similar_to_regex("100\\%", Some('\\')), "^(?s:100%)$");
        assert_eq!(similar_to_regex("[a%]x", None), "^(?s:[a%]x)$");
        assert_eq!(
            rewritten_sql("SELECT msg NOT SIMILAR TO '%time%' FROM logs"),
            "SELECT (msg) !~ '^(?s:.*time.*)$' FROM logs"
        );
    }

    #[test]
    fn substring_from_a_pattern_is_a_regex_match() {
        assert_eq!(
            rewritten_sql(
                "SELECT substring(msg from '[0-9]+'), substring(msg from 3 for 2) FROM logs"
            ),
            "SELECT (regexp_match(msg, '[0-9]+'))[1], SUBSTRING(msg FROM 3 FOR 2) FROM logs"
        );
    }

    #[test]
    fn json_paths_are_one_call() {
        assert_eq!(
            rewritten_sql("SELECT attrs #>> '{http,path}' FROM logs"),
            "SELECT json_as_text(attrs, 'http', 'path') FROM logs"
        );
        assert_eq!(
            rewritten_sql("SELECT attrs::jsonb -> 'http' ->> 'method', attrs -> 'tags' -> 0 FROM logs"),
            "SELECT json_as_text(attrs, 'http', 'method'), json_get_json(attrs, 'tags', 0) FROM logs"
        );
        assert_eq!(
            rewritten_sql("SELECT x FROM logs WHERE attrs ->> k = 'v'"),
            "SELECT x FROM logs WHERE attrs ->> k = 'v'"
        );
    }
}
