//! Function calls as PostgreSQL clients write them:
//!
//! - pass `generate_subscripts`: `generate_subscripts(a, 1)` in a select list (SQLAlchemy's
//!   index and constraint reflection, beside `unnest(a)`) is one row per subscript, 1 to the
//!   array's length: `unnest(generate_series(1, array_length(a, 1)))`, advancing with the
//!   `unnest(a)` beside it as in PostgreSQL.
//! - pass `pretty_flags`: the `pretty` argument of `pg_get_constraintdef(oid, 't')` and its kin
//!   written as text (psycopg 3 sends a boolean parameter as its text) is a boolean, the
//!   unknown-typed literal PostgreSQL reads as the parameter's type.
//! - passes `generate_series` and `datetime_templates`: see [`generate_series`] and
//!   [`datetime_templates`].

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
    Query, SelectItem, SetExpr, Statement, TableAlias, TableFactor, TimezoneInfo, Value, VisitMut,
    VisitorMut,
};

/// The last name part of a call, lowercased.
fn called(f: &Function) -> Option<String> {
    super::last_name(&f.name)
}

fn unnamed_args(f: &Function) -> Option<Vec<Expr>> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `generate_subscripts(a, d)` → `unnest(generate_series(1, array_length(a, d)))`.
pub fn generate_subscripts(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut Subscripts);
    stmt
}

struct Subscripts;

impl VisitorMut for Subscripts {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            if called(f).as_deref() == Some("generate_subscripts") {
                if let Some([array, dim]) = unnamed_args(f).as_deref() {
                    let one = Expr::Value(Value::Number("1".into(), false).with_empty_span());
                    let length = super::call("array_length", vec![array.clone(), dim.clone()]);
                    *e = super::call(
                        "unnest",
                        vec![super::call("generate_series", vec![one, length])],
                    );
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The catalog functions whose last argument is `pretty boolean`.
const PRETTY: &[&str] = &[
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_indexdef",
    "pg_get_viewdef",
    "pg_get_ruledef",
    "pg_get_triggerdef",
    "pg_get_statisticsobjdef_columns",
    "pg_get_partkeydef",
];

/// A text `pretty` argument as the boolean it spells.
pub fn pretty_flags(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut Pretty);
    stmt
}

struct Pretty;

impl VisitorMut for Pretty {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        if !called(f).is_some_and(|n| PRETTY.contains(&n.as_str())) {
            return ControlFlow::Continue(());
        }
        if let FunctionArguments::List(l) = &mut f.args {
            if l.args.len() >= 2 {
                if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) =
                    l.args.last_mut()
                {
                    let flag = match &v.value {
                        Value::SingleQuotedString(s) => match s.to_ascii_lowercase().as_str() {
                            "t" | "true" | "on" | "yes" | "1" => Some(true),
                            "f" | "false" | "off" | "no" | "0" => Some(false),
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some(b) = flag {
                        v.value = Value::Boolean(b);
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Pass `generate_series`: PostgreSQL's set-returning `generate_series`.
///
/// - In a select list it is one row per value: `unnest(generate_series(…))`.
/// - In FROM with an alias its column is named as PostgreSQL names it, after the alias
///   (`generate_series(1, 5) AS x` has a column `x`, `AS g(n)` a column `n`), and without one
///   after the function (`generate_series`): DataFusion's table function names it `value`. It
///   becomes `(SELECT value AS x FROM generate_series(…)) AS x`.
pub fn generate_series(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut Series);
    stmt
}

struct Series;

impl VisitorMut for Series {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = q.body.as_mut() {
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item
                {
                    if let Expr::Function(f) = e {
                        if called(f).as_deref() == Some("generate_series") {
                            *e = super::call("unnest", vec![e.clone()]);
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    // After its arguments: the subquery it becomes is not visited again.
    fn post_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: Some(_),
            ..
        } = t
        else {
            return ControlFlow::Continue(());
        };
        let series = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("generate_series"));
        if !series {
            return ControlFlow::Continue(());
        }
        // Without an alias the column is named after the function, as in PostgreSQL.
        let column = match alias.as_ref() {
            Some(a) if a.columns.len() == 1 => a.columns[0].name.clone(),
            Some(a) if a.columns.is_empty() => a.name.clone(),
            None => Ident::new("generate_series"),
            _ => return ControlFlow::Continue(()),
        };
        let table_alias = TableAlias {
            explicit: true,
            name: alias
                .as_ref()
                .map_or_else(|| Ident::new("generate_series"), |a| a.name.clone()),
            columns: vec![],
            at: None,
        };
        let mut function = t.clone();
        if let TableFactor::Table { alias, .. } = &mut function {
            *alias = None;
        }
        let Some(template) = SERIES.as_ref() else {
            return ControlFlow::Continue(());
        };
        let mut subquery = template.clone();
        if let SetExpr::Select(select) = subquery.body.as_mut() {
            if let Some(SelectItem::ExprWithAlias { alias, .. }) = select.projection.first_mut() {
                *alias = column;
            }
            if let Some(from) = select.from.first_mut() {
                from.relation = function;
            }
        }
        *t = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(subquery),
            alias: Some(table_alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}

/// `SELECT value AS c FROM f`, its name and function filled in.
static SERIES: LazyLock<Option<Query>> =
    LazyLock::new(
        || match super::parse("SELECT value AS c FROM f").ok()?.pop()? {
            Statement::Query(q) => Some(*q),
            _ => None,
        },
    );

/// Pass `datetime_templates`: `to_timestamp(text, 'YYYY-MM-DD HH24:MI:SS.US')` and
/// `to_date(text, 'YYYY-MM-DD')` with PostgreSQL's template patterns (Superset's time
/// filters): the pattern becomes the engine's (`%Y-%m-%d %H:%M:%S%.6f`), and `to_timestamp`'s
/// wall-clock time is read in the session's `TimeZone`, as PostgreSQL reads it (a template
/// with a zone, `TZH`/`OF`, gives the instant itself).
pub fn datetime_templates(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut Templates);
    stmt
}

struct Templates;

impl VisitorMut for Templates {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        let name = called(f);
        if !matches!(name.as_deref(), Some("to_timestamp" | "to_date")) {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(list) = &mut f.args else {
            return ControlFlow::Continue(());
        };
        if list.args.len() != 2 {
            return ControlFlow::Continue(());
        }
        let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) =
            list.args.get_mut(1)
        else {
            return ControlFlow::Continue(());
        };
        let Value::SingleQuotedString(pattern) = &v.value else {
            return ControlFlow::Continue(());
        };
        let Some(chrono) = chrono_pattern(pattern) else {
            return ControlFlow::Continue(());
        };
        let zoned = chrono.contains('z');
        v.value = Value::SingleQuotedString(chrono);
        if name.as_deref() == Some("to_timestamp") && !zoned {
            // The wall-clock time the text gives, read in the session's zone.
            let local = Expr::Cast {
                kind: CastKind::DoubleColon,
                expr: Box::new(e.clone()),
                data_type: DataType::Timestamp(None, TimezoneInfo::None),
                array: false,
                format: None,
            };
            let zone = super::call(
                "current_setting",
                vec![Expr::Value(
                    Value::SingleQuotedString("TimeZone".into()).with_empty_span(),
                )],
            );
            *e = super::call("pg_at_time_zone", vec![local, zone]);
        }
        ControlFlow::Continue(())
    }
}

/// A PostgreSQL date/time template as a chrono format, or `None` when it holds a pattern this
/// does not translate (or none at all: it is then already the engine's).
fn chrono_pattern(template: &str) -> Option<String> {
    // Longest first, so `HH24` is not read as `HH`, nor `MONTH` as `MON`.
    const PATTERNS: &[(&str, &str)] = &[
        ("YYYY", "%Y"),
        ("yyyy", "%Y"),
        ("hh24", "%H"),
        ("hh12", "%I"),
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("MONTH", "%B"),
        ("Month", "%B"),
        ("month", "%B"),
        ("MON", "%b"),
        ("Mon", "%b"),
        ("mon", "%b"),
        (".US", "%.6f"),
        (".MS", "%.3f"),
        ("YY", "%y"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("HH", "%I"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("yy", "%y"),
        ("mm", "%m"),
        ("dd", "%d"),
        ("mi", "%M"),
        ("ss", "%S"),
        ("AM", "%p"),
        ("PM", "%p"),
        ("am", "%p"),
        ("pm", "%p"),
        ("TZH", "%#z"),
        ("OF", "%:z"),
    ];
    // `%` is the engine's own pattern; `SSSS` (seconds past midnight) has no counterpart.
    if template.contains('%') || template.to_ascii_uppercase().contains("SSSS") {
        return None;
    }
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    let mut translated = false;
    'outer: while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            out.push_str(&quoted[..end]);
            rest = &quoted[end + 1..];
            continue;
        }
        for (pg, chrono) in PATTERNS {
            if let Some(after) = rest.strip_prefix(pg) {
                out.push_str(chrono);
                rest = after;
                translated = true;
                continue 'outer;
            }
        }
        let c = rest.chars().next()?;
        if c.is_ascii_alphabetic() {
            // A pattern this does not know (`Q`, `WW`, `J`, …).
            return None;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    translated.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::chrono_pattern;

    #[test]
    fn postgresql_templates_become_chrono_formats() {
        let t = |p: &str| chrono_pattern(p);
        assert_eq!(t("YYYY-MM-DD").as_deref(), Some("%Y-%m-%d"));
        assert_eq!(
            t("YYYY-MM-DD HH24:MI:SS.US").as_deref(),
            Some("%Y-%m-%d %H:%M:%S%.6f")
        );
        assert_eq!(
            t("DD Mon YYYY HH12:MI AM").as_deref(),
            Some("%d %b %Y %I:%M %p")
        );
        assert_eq!(t("YYYY\"T\"HH24").as_deref(), Some("%YT%H"));
        assert_eq!(t("%Y-%m-%d"), None);
        assert_eq!(t("YYYY-Q"), None);
    }
}
