//! [`NearestExec`]: the scan of `logs` when `nearest` (or `log_context`) selects the rows.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
};
use timberline_udfs::pg_compat::Tenant;

use super::search::{search, SearchMetrics};
use super::spec::{NearestSpec, Selection};
use crate::model::logs_schema;
use crate::store::Store;

/// Runs one [`NearestSpec`] over the store's snapshot and emits the selected rows, in order.
#[derive(Debug)]
pub struct NearestExec {
    store: Arc<Store>,
    spec: NearestSpec,
    projection: Option<Vec<usize>>,
    /// The rows the search may see.
    tenant: Tenant,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl NearestExec {
    pub fn new(
        store: Arc<Store>,
        spec: NearestSpec,
        projection: Option<Vec<usize>>,
        tenant: Tenant,
    ) -> Result<NearestExec> {
        let schema = match &projection {
            Some(p) => Arc::new(logs_schema().project(p)?),
            None => logs_schema(),
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(NearestExec {
            store,
            spec,
            projection,
            tenant,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for NearestExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let target = chrono::DateTime::from_timestamp_micros(self.spec.target)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_else(|| self.spec.target.to_string());
        match self.spec.selection {
            Selection::Nearest { k } => write!(f, "NearestExec: target={target}, k={k}")?,
            Selection::Context { before, after } => write!(
                f,
                "NearestExec: context around {target}, before={before}, after={after}"
            )?,
        }
        if !self.spec.filters.is_empty() {
            let filters: Vec<String> = self.spec.filters.iter().map(|e| e.to_string()).collect();
            write!(f, ", filters=[{}]", filters.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for NearestExec {
    fn name(&self) -> &str {
        "NearestExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let store = self.store.clone();
        let spec = self.spec.clone();
        let projection = self.projection.clone();
        let tenant = self.tenant.clone();
        let metrics = SearchMetrics::new(&self.metrics);
        let reads = store.files.cold().cloned().map(|cold| {
            let gauge = |name: &'static str| MetricBuilder::new(&self.metrics).gauge(name, 0);
            let gauges = [
                gauge("store_gets"),
                gauge("store_get_bytes"),
                gauge("store_cache_hits"),
            ];
            (cold.count(), cold, gauges)
        });
        let rows = async move {
            let snap = store.snapshot().for_tenant(&tenant)?;
            let found = search(&store, &snap, &spec, context, &metrics).await;
            // What the object store served this search (counted over the server).
            if let Some((started, cold, [gets, bytes, hits])) = reads {
                let d = cold.count().since(started);
                gets.set(d.gets as usize);
                bytes.set(d.get_bytes as usize);
                hits.set(d.hits as usize);
            }
            let batch = found?;
            match projection {
                Some(p) => Ok(batch.project(&p)?),
                None => Ok(batch),
            }
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::once(rows),
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
