//! The names PostgreSQL gives result columns nobody named (its `FigureColname`): a column
//! reference keeps its name, a function call takes the function's, a cast of a constant the
//! type's (`'x'::varchar` → `varchar`), `CASE` is `case`, and any other expression `?column?`.
//! Read from the parsed statement, where DataFusion would print the whole expression.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, DataType, Expr, Ident, ObjectName, Query, SelectItem, SetExpr, Statement,
    TimezoneInfo, VisitMut, VisitorMut,
};

/// The name of each result column of `stmt` that it does not alias (`None` where the planner's
/// name stands); empty when the columns cannot be lined up with the select list (`*`).
pub fn unaliased(stmt: &Statement) -> Vec<Option<String>> {
    match stmt {
        Statement::Query(q) => query_names(q),
        _ => Vec::new(),
    }
}

/// Gives an unaliased cast or `AT TIME ZONE` in a select list its PostgreSQL name as an alias:
/// DataFusion names a cast after the column inside it, so `SELECT ts::text FROM logs ORDER BY
/// ts` would hold two columns named `ts`. PostgreSQL's `ORDER BY ts` then sorts by the output
/// column, as here.
pub fn alias_casts(mut stmt: Statement) -> Statement {
    if let Statement::Query(q) = &mut stmt {
        alias_query_casts(q);
    }
    stmt
}

/// Gives the second and later of unnamed select-list expressions that print alike (psql's
/// `SELECT pubname, NULL, NULL`) names of their own: PostgreSQL allows two result columns of one
/// name, DataFusion does not. The client still reads PostgreSQL's names ([`unaliased`]).
pub fn unique_names(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut UniqueNames);
    stmt
}

struct UniqueNames;

impl VisitorMut for UniqueNames {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        unique_in(q.body.as_mut());
        ControlFlow::Continue(())
    }
}

fn unique_in(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            let mut seen = std::collections::HashSet::new();
            for (i, item) in select.projection.iter_mut().enumerate() {
                if let SelectItem::UnnamedExpr(e) = item {
                    if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                        continue;
                    }
                    if !seen.insert(e.to_string()) {
                        *item = SelectItem::ExprWithAlias {
                            expr: e.clone(),
                            alias: Ident::with_quote('"', format!("?column?{}", i + 1)),
                        };
                    }
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            unique_in(left);
            unique_in(right);
        }
        _ => {}
    }
}

fn alias_query_casts(q: &mut Query) {
    let names = body_names(&q.body);
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    for (i, item) in select.projection.iter_mut().enumerate() {
        if let SelectItem::UnnamedExpr(e @ (Expr::Cast { .. } | Expr::AtTimeZone { .. })) = item {
            let name = expr_name(e).0;
            // Two columns of one name (`'a'::bool, 'b'::bool`) are left to the planner's names.
            let clashes = names
                .iter()
                .enumerate()
                .any(|(j, n)| j != i && n.as_deref() == Some(name.as_str()));
            if clashes {
                continue;
            }
            let alias = Ident::with_quote('"', name);
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias,
            };
        }
    }
}

fn query_names(q: &Query) -> Vec<Option<String>> {
    body_names(&q.body)
}

fn body_names(body: &SetExpr) -> Vec<Option<String>> {
    match body {
        SetExpr::Select(select) => {
            let mut out = Vec::with_capacity(select.projection.len());
            for item in &select.projection {
                match item {
                    SelectItem::UnnamedExpr(e) => out.push(Some(expr_name(e).0)),
                    SelectItem::ExprWithAlias { .. } | SelectItem::ExprWithAliases { .. } => {
                        out.push(None)
                    }
                    // A wildcard's width is the planner's to know.
                    _ => return Vec::new(),
                }
            }
            out
        }
        SetExpr::Query(q) => query_names(q),
        SetExpr::SetOperation { left, .. } => body_names(left),
        _ => Vec::new(),
    }
}

/// A name and how strongly it names the expression (PostgreSQL's strength: 2 for a column or a
/// function, 1 for a type, 0 for `?column?`), which decides whether a cast names by its type.
fn expr_name(e: &Expr) -> (String, u8) {
    let named = |s: &str| (s.to_ascii_lowercase(), 2);
    match e {
        Expr::Identifier(ident) => (identifier(ident), 2),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .map_or_else(unknown, |ident| (identifier(ident), 2)),
        Expr::Function(f) => (function_name(&f.name), 2),
        Expr::Nested(inner) => expr_name(inner),
        Expr::Cast {
            expr, data_type, ..
        } => {
            let inner = expr_name(expr);
            if inner.1 > 1 {
                inner
            } else {
                (type_name(data_type), 1)
            }
        }
        Expr::TypedString(t) => (type_name(&t.data_type), 1),
        // A CASE takes its ELSE's name if that is a column's or a function's.
        Expr::Case { else_result, .. } => match else_result.as_deref().map(expr_name) {
            Some(n) if n.1 > 1 => n,
            _ => ("case".into(), 1),
        },
        Expr::Exists { .. } => named("exists"),
        Expr::Subquery(q) => query_names(q)
            .into_iter()
            .next()
            .flatten()
            .map_or_else(unknown, |n| (n, 2)),
        Expr::Array(_) => named("array"),
        // `(record).field` is named by the field; `a[i]` by the array.
        Expr::CompoundFieldAccess { root, access_chain } => match access_chain.last() {
            Some(AccessExpr::Dot(Expr::Identifier(field))) => (identifier(field), 2),
            _ => expr_name(root),
        },
        Expr::Extract { .. } => named("extract"),
        Expr::Position { .. } => named("position"),
        Expr::Substring {
            shorthand: true, ..
        } => named("substr"),
        Expr::Substring { .. } => named("substring"),
        Expr::Trim { .. } => named("btrim"),
        Expr::Ceil { .. } => named("ceil"),
        Expr::Floor { .. } => named("floor"),
        Expr::Overlay { .. } => named("overlay"),
        Expr::AtTimeZone { .. } => named("timezone"),
        Expr::Interval(_) => ("interval".into(), 1),
        _ => unknown(),
    }
}

/// An identifier as PostgreSQL folds it: lower case unless quoted.
fn identifier(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

fn unknown() -> (String, u8) {
    ("?column?".into(), 0)
}

fn function_name(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|part| match part.as_ident() {
            Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
            Some(ident) => ident.value.to_ascii_lowercase(),
            None => part.to_string().to_ascii_lowercase(),
        })
        .unwrap_or_else(|| "?column?".into())
}

/// PostgreSQL's own name of a type as written in a cast (`integer` is `int4`).
fn type_name(t: &DataType) -> String {
    let name = match t {
        DataType::Int(_) | DataType::Int4(_) | DataType::Integer(_) => "int4",
        DataType::BigInt(_) | DataType::Int8(_) => "int8",
        DataType::SmallInt(_) | DataType::Int2(_) => "int2",
        DataType::Real | DataType::Float4 => "float4",
        DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 | DataType::Float(_) => {
            "float8"
        }
        DataType::Bool | DataType::Boolean => "bool",
        DataType::Varchar(_) | DataType::CharacterVarying(_) | DataType::CharVarying(_) => {
            "varchar"
        }
        DataType::Char(_) | DataType::Character(_) => "bpchar",
        DataType::Text => "text",
        DataType::Numeric(_) | DataType::Decimal(_) | DataType::Dec(_) => "numeric",
        DataType::Date => "date",
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timestamptz",
        DataType::Timestamp(..) => "timestamp",
        DataType::Time(..) => "time",
        DataType::Interval { .. } => "interval",
        DataType::JSON => "json",
        DataType::JSONB => "jsonb",
        DataType::Bytea => "bytea",
        DataType::Uuid => "uuid",
        DataType::Regclass => "regclass",
        DataType::Array(inner) => {
            use datafusion::sql::sqlparser::ast::ArrayElemTypeDef;
            return match inner {
                ArrayElemTypeDef::AngleBracket(t)
                | ArrayElemTypeDef::SquareBracket(t, _)
                | ArrayElemTypeDef::Parenthesis(t) => type_name(t),
                ArrayElemTypeDef::None => "?column?".into(),
            };
        }
        DataType::Custom(name, _) => return function_name(name),
        other => {
            let text = other.to_string().to_ascii_lowercase();
            return text
                .split(|c: char| c == '(' || c.is_whitespace())
                .next()
                .unwrap_or("?column?")
                .to_string();
        }
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn names(sql: &str) -> Vec<Option<String>> {
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .remove(0);
        super::unaliased(&stmt)
    }

    fn all(sql: &str) -> Vec<String> {
        names(sql)
            .into_iter()
            .map(|n| n.unwrap_or_default())
            .collect()
    }

    #[test]
    fn unnamed_columns_are_named_as_postgresql_names_them() {
        assert_eq!(all("SELECT 1, 'a' || 'b', NULL, true"), ["?column?"; 4]);
        assert_eq!(
            all("SELECT count(*), COUNT(x), pg_catalog.now()"),
            ["count", "count", "now"]
        );
        assert_eq!(all("SELECT ts, l.msg FROM logs l"), ["ts", "msg"]);
        assert_eq!(
            all("SELECT Level, \"Quoted\" FROM logs"),
            ["level", "Quoted"]
        );
        assert_eq!(
            all("SELECT 'x'::varchar(3), '1'::integer, 1::bigint, '1'::double precision, 'y'::boolean"),
            ["varchar", "int4", "int8", "float8", "bool"]
        );
        assert_eq!(
            all("SELECT ts::text, count(*)::int, (attrs->>'a')::int FROM logs"),
            ["ts", "count", "int4"]
        );
        assert_eq!(
            all("SELECT timestamptz '2024-01-15', date '2024-01-15'"),
            ["timestamptz", "date"]
        );
        assert_eq!(
            all("SELECT CASE WHEN true THEN 1 END, EXISTS (SELECT 1)"),
            ["case", "exists"]
        );
        assert_eq!(
            all("SELECT (SELECT max(ts) FROM logs), (array[1, 2])[1]"),
            ["max", "array"]
        );
        assert_eq!(
            all("SELECT extract(hour FROM ts), position('a' IN 'b'), substring('a' FROM 1), trim(' a ') FROM logs"),
            ["extract", "position", "substring", "btrim"]
        );
        assert_eq!(
            all("SELECT ts AT TIME ZONE 'UTC', ts - interval '1 hour' FROM logs"),
            ["timezone", "?column?"]
        );
        assert_eq!(all("SELECT attrs->>'user' FROM logs"), ["?column?"]);
        assert_eq!(
            names("SELECT count(*) AS n, 1"),
            [None, Some("?column?".into())]
        );
        assert_eq!(all("SELECT 1 UNION SELECT 2"), ["?column?"]);
        assert!(names("SELECT *, 1 FROM logs").is_empty());
        assert!(names("SHOW TimeZone").is_empty());
    }
}
