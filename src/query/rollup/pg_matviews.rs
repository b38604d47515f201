//! `pg_matviews`: the rollup views (and the built-in `logs_per_minute`) with their definitions
//! as written, owned by the administrator; `pg_get_viewdef` reads them here.

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::Result;

use super::{COUNT_VIEW, COUNT_VIEW_SQL};
use crate::auth::BOOTSTRAP_USER;
use crate::query::pg_types;
use crate::store::Store;

/// `pg_matviews` as it stands now.
pub fn pg_matviews(store: &Store) -> Result<Arc<dyn TableProvider>> {
    let mut views = vec![(COUNT_VIEW.to_string(), COUNT_VIEW_SQL.to_string())];
    views.extend(
        store
            .rollups
            .plans()
            .iter()
            .map(|p| (p.name.clone(), p.sql.clone())),
    );
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let flag = |name: &str| Field::new(name, DataType::Boolean, true);
    let fields = vec![
        pg_types::typed(text("schemaname"), "name"),
        pg_types::typed(text("matviewname"), "name"),
        pg_types::typed(text("matviewowner"), "name"),
        pg_types::typed(text("tablespace"), "name"),
        flag("hasindexes"),
        flag("ispopulated"),
        text("definition"),
    ];
    let schema = Arc::new(Schema::new(fields));
    let n = views.len();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["public"; n])),
            Arc::new(StringArray::from_iter_values(views.iter().map(|(v, _)| v))),
            Arc::new(StringArray::from(vec![BOOTSTRAP_USER; n])),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
            Arc::new(BooleanArray::from(vec![false; n])),
            Arc::new(BooleanArray::from(vec![true; n])),
            Arc::new(StringArray::from_iter_values(views.iter().map(|(_, d)| d))),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}
