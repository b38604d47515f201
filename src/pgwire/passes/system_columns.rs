//! Pass `tableoid`: the system column `t.tableoid` of a `pg_catalog` table (psql's `\dd`
//! and `\dL`, pgAdmin's object lists ask for it) is that table's oid, PostgreSQL 15's fixed
//! oid of each catalog table.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectNamePart, Query, SetExpr, Statement, TableFactor, Value, VisitMut, VisitorMut,
};

/// Replaces `alias.tableoid` of every catalog table in `stmt` by the table's oid.
pub fn rewrite(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut TableOid);
    stmt
}

struct TableOid;

impl VisitorMut for TableOid {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        replace_in(q.body.as_mut());
        ControlFlow::Continue(())
    }
}

fn replace_in(body: &mut SetExpr) {
    let select = match body {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { left, right, .. } => {
            replace_in(left);
            replace_in(right);
            return;
        }
        _ => return,
    };
    // The select's catalog tables by the name a column reference uses (alias, else name).
    let mut oids: HashMap<String, i32> = HashMap::new();
    let relations = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for rel in relations {
        if let TableFactor::Table { name, alias, .. } = rel {
            let table = match name.0.last() {
                Some(ObjectNamePart::Identifier(i)) => i.value.to_ascii_lowercase(),
                _ => continue,
            };
            if let Some(oid) = crate::query::pg_types::catalog_table_oid(&table) {
                let key = alias
                    .as_ref()
                    .map_or(table, |a| a.name.value.to_ascii_lowercase());
                oids.insert(key, oid);
            }
        }
    }
    if oids.is_empty() {
        return;
    }
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(select, |e| {
        if let Expr::CompoundIdentifier(ids) = e {
            let n = ids.len();
            if n >= 2 && ids[n - 1].value.eq_ignore_ascii_case("tableoid") {
                if let Some(oid) = oids.get(&ids[n - 2].value.to_ascii_lowercase()) {
                    *e = Expr::Value(Value::Number(oid.to_string(), false).with_empty_span());
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}
