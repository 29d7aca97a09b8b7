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
use datafusion_physical_expr::window::StandardWindowFunctionExpr;
use datafusion_physical_expr::{LexOrdering, OrderingRequirements, PhysicalExpr};
use datafusion_physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion_physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    InputDistributionRequirements, PlanProperties, SendableRecordBatchStream,
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
}

/// Appends the `sessionize` column to rows sorted by `sort`, sorting them first in
/// [`Mode::SortInMemory`].
#[derive(Debug)]
pub struct SessionizeExec {
    mode: Mode,
    input: Arc<dyn ExecutionPlan>,
    /// The window function, as the window operator held it.
    function: Arc<dyn StandardWindowFunctionExpr>,
    /// Its arguments and their fields, to make the evaluator that takes many partitions.
    arguments: Vec<Arc<dyn PhysicalExpr>>,
    argument_fields: Vec<FieldRef>,
    /// Shown in plans: the window expression's name.
    window_name: String,
    /// The sort the replaced `SortExec` did: the partition-by keys first, then the window's
    /// ORDER BY.
    sort: LexOrdering,
    /// How many of `sort`'s keys are the partition-by keys.
    partition_keys: usize,
    /// The replaced window operator's properties (schema, ordering, partitioning).
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl SessionizeExec {
    /// The operator over `input`, producing what `SortExec(sort)` + the window operator with
    /// `properties` produced (in [`Mode::Presorted`], what the window operator over the
    /// `SortExec` that is `input` produced).
    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of the two replaced operators, taken apart once by the rule"
    )]
    pub(crate) fn new(
        mode: Mode,
        input: Arc<dyn ExecutionPlan>,
        function: Arc<dyn StandardWindowFunctionExpr>,
        arguments: Vec<Arc<dyn PhysicalExpr>>,
        argument_fields: Vec<FieldRef>,
        window_name: String,
        sort: LexOrdering,
        partition_keys: usize,
        properties: Arc<PlanProperties>,
    ) -> Self {
        Self {
            mode,
            input,
            function,
            arguments,
            argument_fields,
            window_name,
            sort,
            partition_keys,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for SessionizeExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "SessionizeExec: mode={:?}, sort=[{}], partition_keys={}, wdw=[{}]",
                self.mode, self.sort, self.partition_keys, self.window_name
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
            Mode::SortInMemory => vec![None],
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
        if options.children_properties == ChildrenPropertiesMode::Recompute
            && input.output_partitioning() != self.input.output_partitioning()
        {
            // The properties were taken over from the window operator for this input's
            // partitioning; another partitioning would make them wrong.
            return datafusion_common::not_impl_err!(
                "SessionizeExec cannot take an input partitioned differently"
            );
        }
        Ok(Arc::new(Self {
            mode: self.mode,
            input,
            function: Arc::clone(&self.function),
            arguments: self.arguments.clone(),
            argument_fields: self.argument_fields.clone(),
            window_name: self.window_name.clone(),
            sort: self.sort.clone(),
            partition_keys: self.partition_keys,
            properties: Arc::clone(&self.properties),
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
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        if self.mode == Mode::Presorted {
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
