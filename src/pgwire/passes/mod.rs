//! The SQL front end: a statement is parsed once, then made plannable with PostgreSQL's answer
//! by one ordered list of named passes over its syntax tree ([`PASSES`]).
//!
//! Each pass has its own `sql/passes/<name>.slt` holding PostgreSQL 15's answers to the
//! statements it exists for (a unit test below keeps the two lists in step). Semantics that
//! need types (an `unknown` literal's coercion, interval arithmetic, PostgreSQL's errors) are
//! not passes over text: they are analyzer rules and functions registered on the session
//! (`query::pg_semantics`, `timberline_udfs::pg_compat`).
//!
//! Several passes are `datafusion-pg-catalog`'s own rules, taken one by one: its parser's
//! canned whole-query replacements are not used, and its select-list subquery rule (which
//! answers every correlated subquery with NULL and limits the others to one row) is replaced
//! by [`subqueries`], which answers the lookups it can plan with their value.

mod array_subquery;
mod catalog_lookups;
mod functions;
mod grafana;
pub mod operators;
mod ordered_set;
mod records;
mod reg_names;
mod subqueries;
mod system_columns;

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArgumentList, FunctionArguments, Ident, ObjectName, Query,
    Statement, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall,
    FixArrayLiteral, FixVersionColumnName, PrependUnqualifiedPgTableName,
    ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation, RewritePgCatalogOperator,
    RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};

/// One pass: its name (and `.slt` file) and what it does to a statement.
pub struct Pass {
    pub name: &'static str,
    pub run: fn(Statement) -> Statement,
}

/// A `datafusion-pg-catalog` rule as a pass.
macro_rules! library {
    ($name:literal, $rule:expr) => {
        Pass {
            name: $name,
            run: |s| {
                static RULE: LazyLock<Box<dyn SqlStatementRewriteRule>> =
                    LazyLock::new(|| Box::new($rule));
                RULE.rewrite(s)
            },
        }
    };
}

/// The passes, in the order they run.
pub const PASSES: &[Pass] = &[
    Pass {
        name: "grafana_search_path",
        run: grafana::search_path,
    },
    Pass {
        name: "reg_names",
        run: reg_names::rewrite,
    },
    Pass {
        name: "oid_literals",
        run: reg_names::oid_literals,
    },
    Pass {
        name: "to_regtype",
        run: reg_names::to_regtype,
    },
    Pass {
        name: "view_definitions",
        run: catalog_lookups::view_definitions,
    },
    Pass {
        name: "regclass_names",
        run: catalog_lookups::regclass_names,
    },
    Pass {
        name: "pretty_flags",
        run: functions::pretty_flags,
    },
    Pass {
        name: "generate_subscripts",
        run: functions::generate_subscripts,
    },
    Pass {
        name: "datetime_templates",
        run: functions::datetime_templates,
    },
    Pass {
        name: "tableoid",
        run: system_columns::rewrite,
    },
    Pass {
        name: "array_subquery",
        run: array_subquery::rewrite,
    },
    Pass {
        name: "exists_values",
        run: array_subquery::exists_values,
    },
    library!(
        "alias_duplicated_projection",
        AliasDuplicatedProjectionRewrite
    ),
    library!(
        "resolve_unqualified_identifier",
        ResolveUnqualifiedIdentifier
    ),
    library!("array_any_all", RewriteArrayAnyAllOperation),
    library!("qualify_pg_tables", PrependUnqualifiedPgTableName),
    library!("strip_callable_qualifier", StripCallableQualifier),
    library!("array_literals", FixArrayLiteral),
    library!(
        "current_user_calls",
        CurrentUserVariableToSessionUserFunctionCall
    ),
    library!("strip_collate", StripCollate),
    library!("pg_catalog_operators", RewritePgCatalogOperator),
    library!("reg_casts", RewriteRegCastToSubquery::new()),
    library!("version_column_name", FixVersionColumnName),
    Pass {
        name: "expand_array",
        run: records::expand_array,
    },
    Pass {
        name: "field_access",
        run: records::field_access,
    },
    Pass {
        name: "array_text_literals",
        run: records::array_text_literals,
    },
    Pass {
        name: "unnest_from",
        run: records::unnest_from,
    },
    Pass {
        name: "unique_column_names",
        run: super::column_names::unique_names,
    },
    Pass {
        name: "catalog_subqueries",
        run: subqueries::rewrite,
    },
    // After the lookups: a catalog lookup over a series in its FROM is recognised as one.
    Pass {
        name: "generate_series",
        run: functions::generate_series,
    },
    Pass {
        name: "percentile_disc",
        run: ordered_set::percentile_disc,
    },
    Pass {
        name: "alias_casts",
        run: super::column_names::alias_casts,
    },
    Pass {
        name: "operators",
        run: operators::rewrite,
    },
];

/// The last part of a function's or table's name, lower case (`pg_catalog.Unnest` → `unnest`).
fn last_name(name: &ObjectName) -> Option<String> {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
}

const AGGREGATES: &[&str] = &[
    "count",
    "max",
    "min",
    "sum",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
];

const SET_RETURNING: &[&str] = &[
    "unnest",
    "generate_series",
    "generate_subscripts",
    "_pg_expandarray",
    "pg_expandarray",
    "jsonb_array_elements",
    "json_array_elements",
];

/// Whether `e` calls one of `functions` anywhere (nested subqueries included).
fn calls(e: &Expr, functions: &[&str]) -> bool {
    let mut found = false;
    let _ = visit_expressions(e, |x| {
        if let Expr::Function(f) = x {
            found |= last_name(&f.name).is_some_and(|n| functions.contains(&n.as_str()));
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// A call of `name` with `args` and `clauses` (`ORDER BY` inside an aggregate).
fn call_with(name: &str, args: Vec<Expr>, clauses: Vec<FunctionArgumentClause>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses,
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// A call of `name` with `args`.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    call_with(name, args, vec![])
}

/// The query of `sql` (a lookup template whose `$1` [`filled`] replaces), parsed once by its
/// `LazyLock`; `None` if it does not parse (a bug the passes' tests catch).
fn template(sql: &str) -> Option<Query> {
    match parse(sql).ok()?.pop()? {
        Statement::Query(q) => Some(*q),
        _ => None,
    }
}

/// `template` with every `$1` replaced by `arg`.
fn filled(template: &Query, arg: &Expr) -> Query {
    let mut lookup = template.clone();
    let _ = visit_expressions_mut(&mut lookup, |x| {
        if matches!(x, Expr::Value(v) if matches!(v.value, Value::Placeholder(_))) {
            *x = arg.clone();
        }
        ControlFlow::<()>::Continue(())
    });
    lookup
}

/// Parses SQL text into statements, once.
pub fn parse(sql: &str) -> Result<Vec<Statement>, ParserError> {
    Parser::parse_sql(&PostgreSqlDialect {}, sql)
}

/// Runs every pass over `stmt`, in order.
pub fn apply(mut stmt: Statement) -> Statement {
    for pass in PASSES {
        let _pass = tracing::trace_span!("pass", name = pass.name).entered();
        stmt = (pass.run)(stmt);
    }
    stmt
}

#[cfg(test)]
mod tests {
    use super::PASSES;

    #[test]
    fn every_pass_has_its_slt_file_and_every_file_its_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/passes");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()?
                            .strip_suffix(".slt")
                            .map(String::from)
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let mut names: Vec<String> = PASSES.iter().map(|p| p.name.to_string()).collect();
        names.sort();
        assert_eq!(files, names, "sql/passes/*.slt and the passes differ");
    }
}
