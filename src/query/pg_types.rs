//! `pg_catalog`'s columns typed as PostgreSQL 15 types them, and the columns clients read that
//! the bundled catalog lacks. Identifiers are `name`, one-letter codes `"char"` and object ids
//! `oid` on the wire (`pg15_catalog_types.tsv`, read from a PostgreSQL 15's own catalog), marked
//! in each field's metadata ([`PG_TYPE_KEY`], and `arrow-pg`'s keys for `"char"` and `oid`). The bundled tables hold arrays as their text
//! (`'{a,b}'`, an `int2vector`'s `'1 2'`): here they are real arrays, so `= ANY(conkey)`,
//! `indoption[i]`, `unnest(indkey)` and `array_to_string(nspacl, …)` answer as in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayBuilder, ArrayRef, AsArray, Int16Builder, Int32Builder,
    ListBuilder, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;

/// Field metadata naming the PostgreSQL type a text column is reported as (`name`, `varchar`,
/// `json`): the same text on the wire, the type clients see in a row description; on an
/// array column, `int2vector` or `oidvector` (printed `1 2`, as PostgreSQL prints them) or `_oid`.
pub const PG_TYPE_KEY: &str = "timberline.pg_type";

/// `table\tcolumn\ttype` for PostgreSQL 15's `name`, `"char"`, `oid` and array catalog columns.
const PG15_TYPES: &str = include_str!("pg15_catalog_types.tsv");

/// PostgreSQL 15's type of `table.column`, if it is `name`, `char`, `oid` or an array.
fn pg15_type(table: &str, column: &str) -> Option<&'static str> {
    PG15_TYPES.lines().find_map(|line| {
        let mut parts = line.split('\t');
        (parts.next() == Some(table) && parts.next() == Some(column))
            .then(|| parts.next())
            .flatten()
    })
}

/// PostgreSQL 15's catalog tables and their oids.
const CATALOG_TABLES: &[(&str, i32)] = &[
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

/// PostgreSQL 15's fixed oid of the catalog table `name` (`pg_proc` is 1255): the oid the
/// bundled rows refer to it by (`pg_description.classoid`, `pg_type.typrelid`).
pub fn catalog_table_oid(name: &str) -> Option<i32> {
    CATALOG_TABLES
        .iter()
        .find_map(|(t, oid)| (*t == name).then_some(*oid))
}

/// The catalog table PostgreSQL 15 gives the fixed oid `oid`.
pub fn catalog_table_name(oid: i32) -> Option<&'static str> {
    CATALOG_TABLES
        .iter()
        .find_map(|(t, o)| (*o == oid).then_some(*t))
}

/// The `pg_type` oid of PostgreSQL 15's type of `table.column`, where it is one of the types
/// this catalog marks (`name`, `"char"`, `oid`, the vectors and arrays): what
/// `pg_attribute.atttypid` says of a catalog table's column.
pub fn pg15_type_oid(table: &str, column: &str) -> Option<i32> {
    Some(match pg15_type(table, column)? {
        "name" => 19,
        "char" => 18,
        "oid" => 26,
        "int2vector" => 22,
        "oidvector" => 30,
        "_text" => 1009,
        "_aclitem" => 1034,
        "_oid" => 1028,
        "_name" => 1003,
        "_int2" => 1005,
        "_char" => 1002,
        "_regtype" => 2211,
        _ => return None,
    })
}

/// PostgreSQL 15's views in `pg_catalog` (`relkind 'v'`); its other relations are tables.
const PG15_SYSTEM_VIEWS: &str = "pg_available_extension_versions pg_available_extensions \
    pg_backend_memory_contexts pg_config pg_cursors pg_file_settings pg_group pg_hba_file_rules \
    pg_ident_file_mappings pg_indexes pg_locks pg_matviews pg_policies pg_prepared_statements \
    pg_prepared_xacts pg_publication_tables pg_replication_origin_status pg_replication_slots \
    pg_roles pg_rules pg_seclabels pg_sequences pg_settings pg_shadow pg_shmem_allocations \
    pg_stat_activity pg_stat_all_indexes pg_stat_all_tables pg_stat_archiver pg_stat_bgwriter \
    pg_stat_database pg_stat_database_conflicts pg_stat_gssapi pg_stat_progress_analyze \
    pg_stat_progress_basebackup pg_stat_progress_cluster pg_stat_progress_copy \
    pg_stat_progress_create_index pg_stat_progress_vacuum pg_stat_recovery_prefetch \
    pg_stat_replication pg_stat_replication_slots pg_stat_slru pg_stat_ssl pg_stat_subscription \
    pg_stat_subscription_stats pg_stat_sys_indexes pg_stat_sys_tables pg_stat_user_functions \
    pg_stat_user_indexes pg_stat_user_tables pg_stat_wal pg_stat_wal_receiver \
    pg_stat_xact_all_tables pg_stat_xact_sys_tables pg_stat_xact_user_functions \
    pg_stat_xact_user_tables pg_statio_all_indexes pg_statio_all_sequences pg_statio_all_tables \
    pg_statio_sys_indexes pg_statio_sys_sequences pg_statio_sys_tables pg_statio_user_indexes \
    pg_statio_user_sequences pg_statio_user_tables pg_stats pg_stats_ext pg_stats_ext_exprs \
    pg_tables pg_timezone_abbrevs pg_timezone_names pg_user pg_user_mappings pg_views";

/// The `relkind` PostgreSQL 15 gives the `pg_catalog` relation `name`: `'v'` for its system
/// views, `'r'` for its tables (pgjdbc's `getTables` calls them SYSTEM VIEW / SYSTEM TABLE).
pub fn system_relkind(name: &str) -> &'static str {
    if PG15_SYSTEM_VIEWS
        .split_ascii_whitespace()
        .any(|v| v == name)
    {
        "v"
    } else {
        "r"
    }
}

/// `field` marked as PostgreSQL's `pg_type` (`name`, `varchar`, `char`, `oid`), when its
/// Arrow type carries that type's text; otherwise unchanged.
pub fn typed(field: Field, pg_type: &str) -> Field {
    let mut metadata = field.metadata().clone();
    match (pg_type, field.data_type()) {
        ("name" | "varchar" | "json", DataType::Utf8) => {
            metadata.insert(PG_TYPE_KEY.into(), pg_type.into());
        }
        ("char", DataType::Utf8) => {
            metadata.insert(arrow_pg::datatypes::PG_CHAR_KEY.into(), String::new());
        }
        ("oid", DataType::Int32) => {
            metadata.insert(arrow_pg::datatypes::PG_OID_ALIAS_KEY.into(), "oid".into());
        }
        _ => return field,
    }
    field.with_metadata(metadata)
}

/// An element type of a catalog array.
#[derive(Debug, Clone, Copy)]
enum Element {
    /// `int2vector`, `int2[]`.
    Int2,
    /// `oidvector`, `oid[]` (oids are `integer` in this catalog).
    Oid,
    /// `text[]`, `"char"[]`, `aclitem[]`, `name[]`.
    Text,
}

impl Element {
    fn data_type(self) -> DataType {
        match self {
            Element::Int2 => DataType::Int16,
            Element::Oid => DataType::Int32,
            Element::Text => DataType::Utf8,
        }
    }
}

/// (table, column, element): array columns PostgreSQL 15 has and the bundled catalog lacks.
const MISSING_ARRAYS: &[(&str, &str, Element)] = &[
    ("pg_class", "relacl", Element::Text),
    ("pg_class", "reloptions", Element::Text),
];

/// Text columns PostgreSQL 15 has and the bundled catalog lacks (NULL here).
const MISSING_TEXT: &[(&str, &str)] = &[
    ("pg_database", "datcollversion"),
    ("pg_collation", "colliculocale"),
];

/// Whether `column` names an array column of some `pg_catalog` table (`polroles`, `conkey`).
pub fn is_catalog_array(column: &str) -> bool {
    MISSING_ARRAYS.iter().any(|(_, c, _)| *c == column)
        || PG15_TYPES.lines().any(|l| {
            let mut parts = l.split('\t');
            let (_, c, t) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
            c == Some(column) && (t.starts_with('_') || t.ends_with("vector"))
        })
}

/// Whether `table`'s shape or types change here.
pub fn reshapes(table: &str) -> bool {
    MISSING_ARRAYS.iter().any(|(t, ..)| *t == table)
        || MISSING_TEXT.iter().any(|(t, _)| *t == table)
        || PG15_TYPES
            .lines()
            .any(|l| l.split('\t').next() == Some(table))
}

/// `schema` of the bundled `table` as PostgreSQL 15 has it.
pub fn schema(table: &str, schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match array_of(table, f.name()) {
            Some(e) => vector(table, f.name(), Field::new(f.name(), list_type(e), true)),
            None => match pg15_type(table, f.name()) {
                Some(t) => typed(f.as_ref().clone(), t),
                None => f.as_ref().clone(),
            },
        })
        .collect();
    for (t, c, e) in MISSING_ARRAYS {
        if *t == table && schema.index_of(c).is_err() {
            fields.push(Field::new(*c, list_type(*e), true));
        }
    }
    for (t, c) in MISSING_TEXT {
        if *t == table && schema.index_of(c).is_err() {
            fields.push(Field::new(*c, DataType::Utf8, true));
        }
    }
    Arc::new(Schema::new(fields))
}

fn array_of(table: &str, column: &str) -> Option<Element> {
    let from_pg15 = match pg15_type(table, column)? {
        "int2vector" | "_int2" => Element::Int2,
        "oidvector" | "_oid" | "_regtype" => Element::Oid,
        "_text" | "_name" | "_char" | "_aclitem" => Element::Text,
        _ => return None,
    };
    Some(from_pg15)
}

/// `field` marked as an `int2vector`, `oidvector` or `oid[]` ([`PG_TYPE_KEY`]) when PostgreSQL 15
/// types `table.column` so: an array here; a vector is printed as PostgreSQL prints one (`1 2`),
/// an `oid[]` described as one (pgjdbc reads its elements as oids).
fn vector(table: &str, column: &str, field: Field) -> Field {
    match pg15_type(table, column) {
        Some(t @ ("int2vector" | "oidvector" | "_oid")) => {
            let mut metadata = field.metadata().clone();
            metadata.insert(PG_TYPE_KEY.into(), t.into());
            field.with_metadata(metadata)
        }
        _ => field,
    }
}

fn list_type(e: Element) -> DataType {
    DataType::List(Arc::new(Field::new("item", e.data_type(), true)))
}

/// `batch` of the bundled `table` in the shape of [`schema`] (`to`).
pub fn reshape(table: &str, batch: &RecordBatch, to: &SchemaRef) -> Result<RecordBatch> {
    let from = batch.schema();
    let mut columns = Vec::with_capacity(to.fields().len());
    for field in to.fields() {
        let column = match from.index_of(field.name()) {
            Ok(i) => match array_of(table, field.name()) {
                Some(e) if batch.column(i).data_type() != field.data_type() => {
                    arrays(&cast(batch.column(i), &DataType::Utf8)?, e)
                }
                _ => batch.column(i).clone(),
            },
            Err(_) => new_null_array(field.data_type(), batch.num_rows()),
        };
        columns.push(column);
    }
    Ok(RecordBatch::try_new(to.clone(), columns)?)
}

/// PostgreSQL's array text (`{a,"b c"}`, or a vector's `1 2`) as arrays of `e`.
fn arrays(text: &ArrayRef, e: Element) -> ArrayRef {
    let text = text.as_string::<i32>();
    let rows = (0..text.len()).map(|i| (!text.is_null(i)).then(|| elements(text.value(i))));
    match e {
        Element::Text => lists(rows, StringBuilder::new(), |b, v| b.append_option(v)),
        Element::Int2 => lists(rows, Int16Builder::new(), |b, v| {
            b.append_option(v.and_then(|v| v.parse().ok()))
        }),
        Element::Oid => lists(rows, Int32Builder::new(), |b, v| {
            b.append_option(v.and_then(|v| v.parse().ok()))
        }),
    }
}

/// A list array of `rows` (a `None` row is a NULL array), each element put by `push`.
fn lists<B: ArrayBuilder>(
    rows: impl Iterator<Item = Option<Vec<Option<String>>>>,
    values: B,
    mut push: impl FnMut(&mut B, Option<String>),
) -> ArrayRef {
    let mut b = ListBuilder::new(values);
    for row in rows {
        match row {
            Some(items) => {
                for item in items {
                    push(b.values(), item);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// The elements of one array's text; `NULL` (unquoted) is a null element.
fn elements(text: &str) -> Vec<Option<String>> {
    let Some(inner) = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
    else {
        return text
            .split_ascii_whitespace()
            .map(|w| Some(w.to_string()))
            .collect();
    };
    let mut out = Vec::new();
    let mut item = String::new();
    let (mut quoted, mut was_quoted, mut escaped) = (false, false, false);
    let mut push = |item: &mut String, was_quoted: bool| {
        let value = std::mem::take(item);
        out.push((was_quoted || !value.eq_ignore_ascii_case("null")).then_some(value));
    };
    if inner.is_empty() {
        return out;
    }
    for c in inner.chars() {
        match c {
            _ if escaped => {
                item.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                push(&mut item, was_quoted);
                was_quoted = false;
            }
            _ => item.push(c),
        }
    }
    push(&mut item, was_quoted);
    out
}

#[cfg(test)]
mod tests {
    use super::elements;

    #[test]
    fn array_text_and_vectors_split_into_elements() {
        let s = |v: &[&str]| v.iter().map(|x| Some(x.to_string())).collect::<Vec<_>>();
        assert_eq!(elements("{a,b}"), s(&["a", "b"]));
        assert_eq!(elements("1 2 3"), s(&["1", "2", "3"]));
        assert_eq!(elements("{}"), Vec::<Option<String>>::new());
        assert_eq!(
            elements(r#"{"a,b",NULL,"NULL","x\"y"}"#),
            vec![
                Some("a,b".into()),
                None,
                Some("NULL".into()),
                Some("x\"y".into())
            ]
        );
        assert_eq!(
            elements("{=Tc/postgres,postgres=CTc/postgres}"),
            s(&["=Tc/postgres", "postgres=CTc/postgres"])
        );
    }
}
