//! `SessionizeExec`: sorts one partition of events by user and time and evaluates `sessionize`
//! over it, in place of DataFusion's `SortExec` + window operator pair.
//!
//! DataFusion sorts the events with its general sort (string keys compared row by row) and then
//! runs the window function through `BoundedWindowAggExec`, which calls the evaluator once per
//! row and builds one `ScalarValue` per row. Both dominate a sessions query. This operator
//! produces exactly the rows, order and window column of that pair, faster:
//!
//! - the partition-by tuple (account, user) is turned into a dense rank that keeps its sort
//!   order (each distinct tuple is compared once, not once per row);
//! - rows are sorted by (rank, first order key as an order-preserving integer, row); only rows
//!   equal in both are compared on every sort key, which is where the remaining tie-breakers
//!   (`event_id`, `tab_id`, ...) matter;
//! - each user's rows are evaluated with one `evaluate_all` call.
//!
//! Unlike DataFusion 55's window operators, it accounts for the memory it holds (the whole
//! partition, as `SortExec` + `WindowAggExec` would hold it) in the memory pool, so a memory
//! limit turns into a "resources exhausted" error instead of the process being killed.
//!
//! When memory is limited, the sort is better left to DataFusion's `SortExec`, which spills to
//! disk. Then the operator runs [`Mode::Presorted`]: it replaces only the window operator and
//! streams, batch by batch, carrying a user's evaluator over batch boundaries, in constant
//! memory.
//!
//! [`Mode::SortSpilling`] is the same streaming over a `SortExec` that the operator holds
//! inside: a plan shaped as for [`Mode::SortInMemory`] that spills, which a cluster's executor
//! with a memory limit runs in place of the in-memory sort its scheduler planned.
//!
//! [`SessionizeRule`](crate::SessionizeRule) puts it into plans; the property tests run the same
//! SQL with and without it against the reference.
//!
//! This module holds the operator; `sort` its in-memory sort, `sort_in_memory` and `presorted`
//! the work of one partition in either mode.

mod presorted;
mod sort;
mod sort_in_memory;

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::FieldRef;
use datafusion_common::Result;
use datafusion_common::tree_node::TreeNodeRecursion;
use datafusion_execution::TaskContext;
use datafusion_execution::memory_pool::MemoryConsumer;
use datafusion_functions_window_common::partition::PartitionEvaluatorArgs;
use datafusion_physical_expr::window::{
    StandardWindowExpr, StandardWindowFunctionExpr, WindowExpr,
};
use datafusion_physical_expr::{LexOrdering, OrderingRequirements, PhysicalExpr};
use datafusion_physical_plan::execution_plan::{
    ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion_physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion_physical_plan::sorts::sort::SortExec;
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_physical_plan::windows::{BoundedWindowAggExec, WindowUDFExpr};
use datafusion_physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    InputDistributionRequirements, InputOrderMode, PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};

use self::presorted::StreamingJob;
use self::sort_in_memory::{PartitionJob, Timings};
use crate::sessionize;

/// How [`SessionizeExec`] gets its rows in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The input is in any order; the operator sorts each partition in memory.
    SortInMemory,
    /// The input is already sorted (by a `SortExec`); the operator streams.
    Presorted,
    /// The input is in any order; the operator sorts each partition with DataFusion's
    /// `SortExec` (which spills to disk under a memory limit), held inside it, and streams its
    /// output as in [`Mode::Presorted`]. The plan has the operators of [`Mode::SortInMemory`]:
    /// what a cluster's executor with a memory limit runs, since the scheduler counts the
    /// operators of the plan it sent.
    SortSpilling,
}

/// Appends the `sessionize` column to rows sorted by `sort`, sorting them first in
/// [`Mode::SortInMemory`].
#[derive(Debug)]
pub struct SessionizeExec {
    mode: Mode,
    input: Arc<dyn ExecutionPlan>,
    /// The window expression the replaced window operator evaluated (`sessionize` over the
    /// partition and order of `sort`): what a plan codec sends, with `mode`, `sort` and
    /// `partition_keys`, to rebuild the operator elsewhere.
    window: Arc<dyn WindowExpr>,
    /// The window function, as the window operator held it.
    function: Arc<dyn StandardWindowFunctionExpr>,
    /// Its arguments and their fields, to make the evaluator that takes many partitions.
    arguments: Vec<Arc<dyn PhysicalExpr>>,
    argument_fields: Vec<FieldRef>,
    /// The sort the replaced `SortExec` did: the partition-by keys first, then the window's
    /// ORDER BY.
    sort: LexOrdering,
    /// How many of `sort`'s keys are the partition-by keys.
    partition_keys: usize,
    /// The replaced window operator's properties (schema, ordering, partitioning).
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

/// Why a window expression cannot be evaluated by [`SessionizeExec`].
pub(crate) type Declined = &'static str;

impl SessionizeExec {
    /// The operator over `input`, producing what `SortExec(sort)` + the window operator with
    /// `properties` produced (in [`Mode::Presorted`], what the window operator over the
    /// `SortExec` that is `input` produced).
    pub(crate) fn new(
        mode: Mode,
        input: Arc<dyn ExecutionPlan>,
        window: Arc<dyn WindowExpr>,
        sort: LexOrdering,
        partition_keys: usize,
        properties: Arc<PlanProperties>,
    ) -> std::result::Result<Self, Declined> {
        let standard = window
            .as_any()
            .downcast_ref::<StandardWindowExpr>()
            .ok_or("not a standard window expression")?;
        let function = Arc::clone(standard.get_standard_func_expr());
        let udwf = function
            .as_any()
            .downcast_ref::<WindowUDFExpr>()
            .ok_or("not a user-defined window function")?;
        let schema = input.schema();
        let argument_fields = udwf
            .args()
            .iter()
            .map(|arg| arg.return_field(&schema))
            .collect::<Result<Vec<_>>>()
            .map_err(|_| "its arguments' types cannot be resolved")?;
        Ok(Self {
            mode,
            arguments: udwf.args().to_vec(),
            input,
            window,
            function,
            argument_fields,
            sort,
            partition_keys,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The operator from its parts, as a plan codec sends them ([`Self::mode`],
    /// [`Self::window_expr`], [`Self::sort`], [`Self::partition_keys`]), over `input` (its one
    /// child). Its properties are worked out anew from `input`, as the window operator it
    /// stands for would have them.
    ///
    /// # Errors
    ///
    /// When `window` is not `sessionize`, or `sort` does not start with its partition keys.
    pub fn try_new(
        mode: Mode,
        input: Arc<dyn ExecutionPlan>,
        window: Arc<dyn WindowExpr>,
        sort: LexOrdering,
        partition_keys: usize,
    ) -> Result<Self> {
        if !crate::rule::is_sessionize(&window) {
            return datafusion_common::plan_err!(
                "SessionizeExec evaluates sessionize, not {}",
                window.name()
            );
        }
        if partition_keys > sort.len() {
            return datafusion_common::plan_err!(
                "SessionizeExec: {partition_keys} partition keys in a sort of {} keys",
                sort.len()
            );
        }
        let properties = derived_properties(mode, &input, &window, &sort)?;
        Self::new(mode, input, window, sort, partition_keys, properties)
            .map_err(|reason| datafusion_common::DataFusionError::Plan(reason.to_owned()))
    }

    /// How the operator gets its rows in order.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The `sessionize` window expression it evaluates.
    #[must_use]
    pub fn window_expr(&self) -> &Arc<dyn WindowExpr> {
        &self.window
    }

    /// The order it evaluates rows in: the partition keys, then the window's ORDER BY.
    #[must_use]
    pub fn sort(&self) -> &LexOrdering {
        &self.sort
    }

    /// How many of [`Self::sort`]'s keys are the partition keys.
    #[must_use]
    pub fn partition_keys(&self) -> usize {
        self.partition_keys
    }
}

/// The properties of the window operator (over `SortExec(sort)` in [`Mode::SortInMemory`])
/// that a `SessionizeExec` over `input` stands for; in [`Mode::SortInMemory`] it emits once
/// it has read all of its partition.
fn derived_properties(
    mode: Mode,
    input: &Arc<dyn ExecutionPlan>,
    window: &Arc<dyn WindowExpr>,
    sort: &LexOrdering,
) -> Result<Arc<PlanProperties>> {
    let sorted = match mode {
        Mode::SortInMemory | Mode::SortSpilling => Arc::new(
            SortExec::new(sort.clone(), Arc::clone(input)).with_preserve_partitioning(true),
        ) as Arc<dyn ExecutionPlan>,
        Mode::Presorted => Arc::clone(input),
    };
    let window_operator = BoundedWindowAggExec::try_new(
        vec![Arc::clone(window)],
        sorted,
        InputOrderMode::Sorted,
        true,
    )?;
    let properties = window_operator.properties().as_ref().clone();
    Ok(Arc::new(match mode {
        Mode::SortInMemory | Mode::SortSpilling => {
            properties.with_emission_type(EmissionType::Final)
        }
        Mode::Presorted => properties,
    }))
}

impl DisplayAs for SessionizeExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "SessionizeExec: mode={:?}, sort=[{}], partition_keys={}, wdw=[{}]",
                self.mode,
                self.sort,
                self.partition_keys,
                self.window.name()
            ),
            DisplayFormatType::TreeRender => {
                writeln!(f, "mode={:?}", self.mode)?;
                writeln!(f, "sort={}", self.sort)?;
                write!(f, "partition_keys={}", self.partition_keys)
            }
        }
    }
}

impl ExecutionPlan for SessionizeExec {
    fn name(&self) -> &'static str {
        "SessionizeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        self.input_distribution_requirements().into_per_child()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        // As the replaced window operator: a user's rows all in one partition.
        let keys: Vec<Arc<dyn PhysicalExpr>> = self.sort[..self.partition_keys]
            .iter()
            .map(|k| Arc::clone(&k.expr))
            .collect();
        InputDistributionRequirements::new(vec![if keys.is_empty() {
            Distribution::SinglePartition
        } else {
            Distribution::KeyPartitioned(keys)
        }])
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        match self.mode {
            Mode::SortInMemory | Mode::SortSpilling => vec![None],
            Mode::Presorted => vec![Some(OrderingRequirements::from(self.sort.clone()))],
        }
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![self.mode == Mode::Presorted]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut recursion = TreeNodeRecursion::Continue;
        for expr in self
            .sort
            .iter()
            .map(|k| &k.expr)
            .chain(self.function.expressions().iter())
        {
            recursion = f(expr)?;
            if recursion == TreeNodeRecursion::Stop {
                break;
            }
        }
        Ok(recursion)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        datafusion_common::assert_eq_or_internal_err!(
            children.len(),
            1,
            "SessionizeExec has one child"
        );
        let input = children.swap_remove(0);
        let properties = if options.children_properties == ChildrenPropertiesMode::Recompute
            && input.output_partitioning() != self.input.output_partitioning()
        {
            // The properties were taken over from the window operator for the old input's
            // partitioning (a cluster's planner puts a shuffle reader in its place).
            derived_properties(self.mode, &input, &self.window, &self.sort)?
        } else {
            Arc::clone(&self.properties)
        };
        Ok(Arc::new(Self {
            mode: self.mode,
            input,
            window: Arc::clone(&self.window),
            function: Arc::clone(&self.function),
            arguments: self.arguments.clone(),
            argument_fields: self.argument_fields.clone(),
            sort: self.sort.clone(),
            partition_keys: self.partition_keys,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn with_new_children_and_same_properties(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = if self.mode == Mode::SortSpilling {
            SortExec::new(self.sort.clone(), Arc::clone(&self.input))
                .with_preserve_partitioning(true)
                .execute(partition, Arc::clone(&context))?
        } else {
            self.input.execute(partition, Arc::clone(&context))?
        };
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        if self.mode != Mode::SortInMemory {
            let mut job = StreamingJob::new(
                Arc::clone(&self.function),
                self.sort[..self.partition_keys].to_vec(),
                self.schema(),
                metrics,
            );
            let batches = input.map(move |batch| job.next_batch(&batch?));
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                self.schema(),
                batches,
            )));
        }
        let reservation = MemoryConsumer::new(format!("SessionizeExec[{partition}]"))
            .register(context.memory_pool());
        let evaluator = sessionize::evaluator(&PartitionEvaluatorArgs::new(
            &self.arguments,
            &self.argument_fields,
            false,
            false,
        ))?;
        let job = PartitionJob {
            evaluator,
            timings: Timings::new(&self.metrics, partition),
            function: Arc::clone(&self.function),
            sort: self.sort.clone(),
            partition_keys: self.partition_keys,
            schema: self.schema(),
            batch_size: context.session_config().batch_size().max(1),
            metrics,
            reservation,
        };
        let batches = futures::stream::once(job.run(input))
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            batches,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
