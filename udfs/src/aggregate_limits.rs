//! Output limits for the aggregates whose result grows with their input (`string_agg`,
//! `array_agg`): every value they produce is checked against the per-value limit and reserved
//! in the query's memory pool. Over a window frame (`string_agg(msg, ',') OVER (ORDER BY ts)`)
//! a value is produced for every row, each as long as all the rows before it; the values of one
//! output batch are alive together, so an aggregate holds the reservation of its last
//! [`LIVE_VALUES`] values (one batch) and such a query fails with 53200 at its budget instead of
//! growing the server past its memory, while a sliding frame's small values over a long table
//! are not charged all at once.

use std::any::Any;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Expr, Operator, ReversedUDAF,
    SetMonotonicity, Signature,
};

use crate::{sqlstate, QueryError};

/// The aggregates guarded.
const GROWING: &[&str] = &["string_agg", "array_agg"];

/// Values of one aggregate held in the pool at once: a batch of DataFusion's (8,192 rows), the
/// most a window operator builds before it hands them on (operators that keep batches, such as
/// a sort, reserve them themselves).
pub const LIVE_VALUES: usize = 8192;

/// `udaf` guarded with `pool` and a per-value limit, if it is one of the growing aggregates
/// (and not guarded already); `None` otherwise.
pub fn guard_aggregate(
    udaf: &AggregateUDF,
    pool: &Arc<dyn MemoryPool>,
    max_value: usize,
) -> Option<AggregateUDF> {
    let inner = udaf.inner();
    if (inner.as_ref() as &dyn Any).is::<GuardedAggregate>() {
        return None;
    }
    let name = inner.name().to_ascii_lowercase();
    if !GROWING.contains(&name.as_str()) {
        return None;
    }
    let consumer = MemoryConsumer::new(format!("{name}() values"));
    let held = Held {
        reservation: consumer.register(pool),
        live: VecDeque::new(),
    };
    Some(AggregateUDF::new_from_shared_impl(Arc::new(
        GuardedAggregate {
            inner: inner.clone().into(),
            produced: Produced(Arc::new(Mutex::new(held))),
            max_value,
        },
    )))
}

/// What all accumulators of one guarded aggregate of one query hold of the values they
/// produced, compared by identity.
#[derive(Debug, Clone)]
struct Produced(Arc<Mutex<Held>>);

/// The last values' sizes and their reservation.
#[derive(Debug)]
struct Held {
    reservation: MemoryReservation,
    live: VecDeque<usize>,
}

impl PartialEq for Produced {
    fn eq(&self, other: &Produced) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Produced {}

impl Hash for Produced {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GuardedAggregate {
    inner: UdfEq<Arc<dyn AggregateUDFImpl>>,
    produced: Produced,
    max_value: usize,
}

impl GuardedAggregate {
    fn wrap(&self, inner: Arc<dyn AggregateUDFImpl>) -> Arc<dyn AggregateUDFImpl> {
        Arc::new(GuardedAggregate {
            inner: inner.into(),
            produced: self.produced.clone(),
            max_value: self.max_value,
        })
    }

    fn guard(&self, inner: Box<dyn Accumulator>) -> Box<dyn Accumulator> {
        Box::new(GuardedAccumulator {
            inner,
            name: self.inner.name().to_string(),
            produced: self.produced.clone(),
            max_value: self.max_value,
        })
    }
}

/// An accumulator whose values are checked and held in the pool.
#[derive(Debug)]
struct GuardedAccumulator {
    inner: Box<dyn Accumulator>,
    name: String,
    /// What the aggregate's accumulators hold of the values they produced.
    produced: Produced,
    max_value: usize,
}

impl GuardedAccumulator {
    fn hold(&mut self, value: ScalarValue) -> Result<ScalarValue> {
        let size = value.size();
        if size > self.max_value {
            return Err(QueryError::new(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "{}: the value would take {size} bytes, more than {} per value",
                    self.name, self.max_value
                ),
            )
            .into_df());
        }
        let mut held = self.produced.0.lock().unwrap_or_else(|p| p.into_inner());
        held.reservation.try_grow(size)?;
        held.live.push_back(size);
        if held.live.len() > LIVE_VALUES {
            let gone = held.live.pop_front().unwrap_or(0);
            held.reservation.shrink(gone);
        }
        Ok(value)
    }
}

impl Accumulator for GuardedAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(values)
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let value = self.inner.evaluate()?;
        self.hold(value)
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(values)
    }
    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

impl AggregateUDFImpl for GuardedAggregate {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(self.guard(self.inner.accumulator(acc_args)?))
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn schema_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.schema_name(params)
    }
    fn human_display(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.human_display(params)
    }
    fn window_function_schema_name(
        &self,
        params: &datafusion::logical_expr::expr::WindowFunctionParams,
    ) -> Result<String> {
        self.inner.window_function_schema_name(params)
    }
    fn display_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.display_name(params)
    }
    fn window_function_display_name(
        &self,
        params: &datafusion::logical_expr::expr::WindowFunctionParams,
    ) -> Result<String> {
        self.inner.window_function_display_name(params)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }
    // Row-at-a-time accumulators only: grouped ones build all values at once, unguarded.
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        false
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(self.guard(self.inner.create_sliding_accumulator(args)?))
    }
    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        Ok(Arc::clone(&self.inner)
            .with_beneficial_ordering(beneficial_ordering)?
            .map(|udf| self.wrap(udf)))
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }
    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.inner.simplify()
    }
    fn simplify_expr_op_literal(
        &self,
        agg_function: &AggregateFunction,
        arg: &Expr,
        op: Operator,
        lit: &Expr,
        arg_is_left: bool,
    ) -> Result<Option<Expr>> {
        self.inner
            .simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        match self.inner.reverse_expr() {
            ReversedUDAF::Reversed(udaf) => ReversedUDAF::Reversed(Arc::new(
                AggregateUDF::new_from_shared_impl(self.wrap(udaf.inner().clone())),
            )),
            other => other,
        }
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner.return_field(arg_fields)
    }
    fn is_nullable(&self) -> bool {
        self.inner.is_nullable()
    }
    fn is_descending(&self) -> Option<bool> {
        self.inner.is_descending()
    }
    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.default_value(data_type)
    }
    fn supports_null_handling_clause(&self) -> bool {
        self.inner.supports_null_handling_clause()
    }
    fn supports_within_group_clause(&self) -> bool {
        self.inner.supports_within_group_clause()
    }
    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}
