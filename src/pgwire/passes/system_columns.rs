//! Pass `tableoid`: the system column `t.tableoid` of a `pg_catalog` table (psql's `\dd`
//! and `\dL`, pgAdmin's object lists ask for it) is that table's oid, PostgreSQL 15's fixed
//! oid of each catalog table.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectNamePart, Query, SetExpr, Statement, TableFactor, Value, VisitMut, VisitorMut,
};

/// PostgreSQL 15's catalog tables and their oids.
const CATALOG_TABLES: &[(&str, u32)] = &[
    ("pg_aggregate", 2600),
    ("pg_am", 2601),
    ("pg_amop", 2602),
    ("pg_amproc", 2603),
    ("pg_attrdef", 2604),
    ("pg_attribute", 1249),
    ("pg_auth_members", 1261),
    ("pg_authid", 1260),
    ("pg_cast", 2605),
    ("pg_class", 1259),
    ("pg_collation", 3456),
    ("pg_constraint", 2606),
    ("pg_conversion", 2607),
    ("pg_database", 1262),
    ("pg_db_role_setting", 2964),
    ("pg_default_acl", 826),
    ("pg_depend", 2608),
    ("pg_description", 2609),
    ("pg_enum", 3501),
    ("pg_event_trigger", 3466),
    ("pg_extension", 3079),
    ("pg_foreign_data_wrapper", 2328),
    ("pg_foreign_server", 1417),
    ("pg_foreign_table", 3118),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_init_privs", 3394),
    ("pg_language", 2612),
    ("pg_largeobject", 2613),
    ("pg_largeobject_metadata", 2995),
    ("pg_namespace", 2615),
    ("pg_opclass", 2616),
    ("pg_operator", 2617),
    ("pg_opfamily", 2753),
    ("pg_parameter_acl", 6243),
    ("pg_partitioned_table", 3350),
    ("pg_policy", 3256),
    ("pg_proc", 1255),
    ("pg_publication", 6104),
    ("pg_publication_namespace", 6237),
    ("pg_publication_rel", 6106),
    ("pg_range", 3541),
    ("pg_replication_origin", 6000),
    ("pg_rewrite", 2618),
    ("pg_seclabel", 3596),
    ("pg_sequence", 2224),
    ("pg_shdepend", 1214),
    ("pg_shdescription", 2396),
    ("pg_shseclabel", 3592),
    ("pg_statistic", 2619),
    ("pg_statistic_ext", 3381),
    ("pg_statistic_ext_data", 3429),
    ("pg_subscription", 6100),
    ("pg_subscription_rel", 6102),
    ("pg_tablespace", 1213),
    ("pg_transform", 3576),
    ("pg_trigger", 2620),
    ("pg_ts_config", 3602),
    ("pg_ts_config_map", 3603),
    ("pg_ts_dict", 3600),
    ("pg_ts_parser", 3601),
    ("pg_ts_template", 3764),
    ("pg_type", 1247),
    ("pg_user_mapping", 1418),
];

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
    let mut oids: HashMap<String, u32> = HashMap::new();
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
            if let Some((_, oid)) = CATALOG_TABLES.iter().find(|(t, _)| *t == table) {
                let key = alias
                    .as_ref()
                    .map_or(table, |a| a.name.value.to_ascii_lowercase());
                oids.insert(key, *oid);
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
