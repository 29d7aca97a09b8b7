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

use std::fmt;
use std::sync::Arc;

use std::cmp::Ordering;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, make_comparator};
use arrow::compute::{SortColumn, SortOptions, cast, concat, interleave_record_batch};
use arrow::datatypes::{DataType, FieldRef, Int64Type, SchemaRef};
use arrow::error::ArrowError;
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion_common::Result;
use datafusion_common::tree_node::TreeNodeRecursion;
use datafusion_execution::TaskContext;
use datafusion_execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion_expr::PartitionEvaluator;
use datafusion_functions_window_common::partition::PartitionEvaluatorArgs;
use datafusion_physical_expr::window::StandardWindowFunctionExpr;
use datafusion_physical_expr::{LexOrdering, OrderingRequirements, PhysicalExpr, PhysicalSortExpr};
use datafusion_physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion_physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, Time,
};
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    InputDistributionRequirements, PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

use crate::sessionize::{self, SessionizeEvaluator};

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
            let mut job = StreamingJob {
                function: Arc::clone(&self.function),
                partition_keys: self.sort[..self.partition_keys].to_vec(),
                converter: None,
                schema: self.schema(),
                current: None,
                metrics,
            };
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

/// The work of one partition.
struct PartitionJob {
    evaluator: SessionizeEvaluator,
    function: Arc<dyn StandardWindowFunctionExpr>,
    sort: LexOrdering,
    partition_keys: usize,
    schema: SchemaRef,
    batch_size: usize,
    metrics: BaselineMetrics,
    timings: Timings,
    reservation: MemoryReservation,
}

/// Where the time of a partition goes, shown by `EXPLAIN ANALYZE`.
struct Timings {
    sort: Time,
    gather: Time,
    evaluate: Time,
}

impl Timings {
    fn new(metrics: &ExecutionPlanMetricsSet, partition: usize) -> Self {
        let time = |name: &'static str| MetricBuilder::new(metrics).subset_time(name, partition);
        Self {
            sort: time("sort_time"),
            gather: time("gather_time"),
            evaluate: time("evaluate_time"),
        }
    }
}

impl PartitionJob {
    async fn run(mut self, mut input: SendableRecordBatchStream) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        while let Some(batch) = input.next().await {
            let batch = batch?;
            if batch.num_rows() > 0 {
                self.reservation.try_grow(batch.get_array_memory_size())?;
                batches.push(batch);
            }
        }
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let timer = self.metrics.elapsed_compute().timer();

        let sort_timer = self.timings.sort.timer();
        let keys = batches
            .iter()
            .map(|batch| {
                self.sort
                    .iter()
                    .map(|key| key.evaluate_to_sort_column(batch))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let order = SortedOrder::of(&keys, self.partition_keys)?;
        drop(keys);
        sort_timer.done();

        // Gathering copies fixed-width values and string views, not string bytes: the sorted
        // batch shares the input's string buffers.
        let gather_timer = self.timings.gather.timer();
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        let sorted = interleave_record_batch(&refs, &order.rows)?;
        drop(refs);
        // Strings longer than a view's inline 12 bytes still sit where the input had them, in
        // input order: compacted now, in sorted order, the sessionizer and the operators above
        // read them front to back instead of at random (twice as fast at 10M unsorted events).
        let sorted = compact_string_views(&sorted)?;
        drop(batches);
        gather_timer.done();
        let num_rows = sorted.num_rows();
        self.reservation
            .try_resize(sorted.get_array_memory_size())?;

        let evaluate_timer = self.timings.evaluate.timer();
        let args = self.function.evaluate_args(&sorted)?;
        let window_column =
            self.evaluator
                .evaluate_partitions(&args, num_rows, &order.partition_starts)?;
        drop(args);
        evaluate_timer.done();
        let mut columns = sorted.columns().to_vec();
        columns.push(window_column);
        let out = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        drop(sorted);
        self.reservation.try_resize(out.get_array_memory_size())?;
        let mut out_batches = Vec::with_capacity(num_rows.div_ceil(self.batch_size));
        let mut offset = 0;
        while offset < num_rows {
            let len = self.batch_size.min(num_rows - offset);
            out_batches.push(out.slice(offset, len));
            offset += len;
        }
        self.metrics.record_output(num_rows);
        timer.done();
        // The reservation is dropped with `self`; the batches are consumed right after.
        Ok(out_batches)
    }
}

/// The batch with every `Utf8View` column's strings copied into new buffers in row order.
fn compact_string_views(batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|column| match column.as_string_view_opt() {
            Some(strings) => Arc::new(strings.gc()) as ArrayRef,
            None => Arc::clone(column),
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// The work of one presorted partition: batches in, batches with the window column out.
struct StreamingJob {
    function: Arc<dyn StandardWindowFunctionExpr>,
    partition_keys: Vec<PhysicalSortExpr>,
    /// Made on the first batch, from its key types.
    converter: Option<RowConverter>,
    schema: SchemaRef,
    /// The last window partition seen and its evaluator, which goes on in the next batch when
    /// the partition does.
    current: Option<(OwnedRow, Box<dyn PartitionEvaluator>)>,
    metrics: BaselineMetrics,
}

impl StreamingJob {
    fn next_batch(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let timer = self.metrics.elapsed_compute().timer();
        let n = batch.num_rows();
        let mut keys = self
            .partition_keys
            .iter()
            .map(|k| k.expr.evaluate(batch)?.into_array(n))
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            // No partition keys (all constant): every row has the same key. Rows of no
            // columns would have no rows at all, so one constant column stands in.
            keys.push(arrow::array::new_null_array(&DataType::Boolean, n));
        }
        if self.converter.is_none() {
            let fields = keys
                .iter()
                .enumerate()
                .map(|(i, array)| {
                    let options = self
                        .partition_keys
                        .get(i)
                        .map_or_else(SortOptions::default, |key| key.options);
                    SortField::new_with_options(array.data_type().clone(), options)
                })
                .collect();
            self.converter = Some(RowConverter::new(fields)?);
        }
        let converter = self.converter.as_ref().expect("made above");
        let rows = converter.convert_columns(&keys)?;
        let args = self.function.evaluate_args(batch)?;
        let mut pieces: Vec<ArrayRef> = Vec::new();
        let mut start = 0;
        while start < n {
            let key = rows.row(start);
            let mut end = start + 1;
            while end < n && rows.row(end) == key {
                end += 1;
            }
            let continues = matches!(&self.current, Some((current, _)) if current.row() == key);
            if !continues {
                self.current = Some((key.owned(), self.function.create_evaluator()?));
            }
            let (_, evaluator) = self.current.as_mut().expect("set above");
            let slice: Vec<ArrayRef> = args.iter().map(|a| a.slice(start, end - start)).collect();
            pieces.push(evaluator.evaluate_all(&slice, end - start)?);
            start = end;
        }
        let window_column = if pieces.is_empty() {
            arrow::array::new_empty_array(
                self.schema
                    .field(self.schema.fields().len() - 1)
                    .data_type(),
            )
        } else {
            let pieces: Vec<&dyn Array> = pieces.iter().map(AsRef::as_ref).collect();
            concat(&pieces)?
        };
        let mut columns = batch.columns().to_vec();
        columns.push(window_column);
        let out = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        self.metrics.record_output(n);
        timer.done();
        Ok(out)
    }
}

/// The order of a partition's rows (batch, row) under the sort, and the positions in that
/// order where each window partition starts.
#[derive(Debug)]
pub(crate) struct SortedOrder {
    pub(crate) rows: Vec<(usize, usize)>,
    pub(crate) partition_starts: Vec<usize>,
}

impl SortedOrder {
    /// Sorts the rows of several batches, given each batch's sort columns (each with its
    /// options), of which the first `partition_keys` are the window's partition keys.
    pub(crate) fn of(batches: &[Vec<SortColumn>], partition_keys: usize) -> Result<Self> {
        // Global row number -> (batch, row).
        let located: Vec<(usize, usize)> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, columns)| {
                let rows = columns.first().map_or(0, |c| c.values.len());
                (0..rows).map(move |r| (b, r))
            })
            .collect();
        let n = located.len();
        if u32::try_from(n).is_err() {
            return Err(datafusion_common::DataFusionError::ResourcesExhausted(
                format!("SessionizeExec: {n} rows in one partition; raise target_partitions"),
            ));
        }
        let ranks = partition_ranks(batches, partition_keys, n)?;
        let mut first = Vec::with_capacity(n);
        for columns in batches {
            match columns.get(partition_keys).and_then(order_preserving_u64) {
                Some(keys) => first.extend(keys),
                None => first.resize(
                    first.len() + columns.first().map_or(0, |c| c.values.len()),
                    0,
                ),
            }
        }
        let mut keyed: Vec<(u32, u64, u32)> = (0..n)
            .map(|row| (ranks[row], first[row], row as u32))
            .collect();
        drop(first);
        drop(ranks);
        keyed.sort_unstable();
        // Rows equal in rank and first key: order them by every key.
        let mut start = 0;
        while start < n {
            let (rank, key, _) = keyed[start];
            let mut end = start + 1;
            while end < n && keyed[end].0 == rank && keyed[end].1 == key {
                end += 1;
            }
            if end - start > 1 {
                let mut failed = None;
                keyed[start..end].sort_by(|a, b| {
                    compare_rows(batches, located[a.2 as usize], located[b.2 as usize])
                        .unwrap_or_else(|e| {
                            failed.get_or_insert(e);
                            Ordering::Equal
                        })
                });
                if let Some(e) = failed {
                    return Err(e.into());
                }
            }
            start = end;
        }
        let mut partition_starts = Vec::new();
        for (i, k) in keyed.iter().enumerate() {
            if i == 0 || keyed[i - 1].0 != k.0 {
                partition_starts.push(i);
            }
        }
        let rows = keyed
            .into_iter()
            .map(|(_, _, row)| located[row as usize])
            .collect();
        Ok(Self {
            rows,
            partition_starts,
        })
    }
}

/// Compares two rows, each of any batch, on every sort key.
fn compare_rows(
    batches: &[Vec<SortColumn>],
    (left_batch, left_row): (usize, usize),
    (right_batch, right_row): (usize, usize),
) -> Result<Ordering, ArrowError> {
    for (left, right) in batches[left_batch].iter().zip(&batches[right_batch]) {
        let compare = make_comparator(
            left.values.as_ref(),
            right.values.as_ref(),
            left.options.unwrap_or_default(),
        )?;
        match compare(left_row, right_row) {
            Ordering::Equal => {}
            unequal => return Ok(unequal),
        }
    }
    Ok(Ordering::Equal)
}

/// Dense ranks of the rows' partition-key tuples (the first `partition_keys` columns of each
/// batch), in the tuples' sort order: equal tuples get equal ranks, and a smaller rank sorts
/// first.
fn partition_ranks(
    batches: &[Vec<SortColumn>],
    partition_keys: usize,
    n: usize,
) -> Result<Vec<u32>> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    if partition_keys == 0 {
        return Ok(vec![0; n]);
    }
    let fields = first[..partition_keys]
        .iter()
        .map(|c| {
            SortField::new_with_options(c.values.data_type().clone(), c.options.unwrap_or_default())
        })
        .collect();
    let converter = RowConverter::new(fields)?;
    let mut rows = converter.empty_rows(n, n * 16);
    for columns in batches {
        let arrays: Vec<ArrayRef> = columns[..partition_keys]
            .iter()
            .map(|c| Arc::clone(&c.values))
            .collect();
        converter.append(&mut rows, &arrays)?;
    }
    // Distinct tuples, by first appearance.
    let mut distinct: Vec<usize> = Vec::new();
    let mut table: HashTable<u32> = HashTable::new();
    let mut group_of_row = Vec::with_capacity(n);
    for i in 0..n {
        let row = rows.row(i);
        let hash = xxh3_64(row.as_ref());
        let group = *table
            .entry(
                hash,
                |&g| rows.row(distinct[g as usize]) == row,
                |&g| xxh3_64(rows.row(distinct[g as usize]).as_ref()),
            )
            .or_insert_with(|| {
                distinct.push(i);
                (distinct.len() - 1) as u32
            })
            .get();
        group_of_row.push(group);
    }
    // The row format compares as the sort does, so sorting the distinct tuples ranks them.
    let mut by_order: Vec<u32> = (0..distinct.len() as u32).collect();
    by_order.sort_unstable_by(|&a, &b| {
        rows.row(distinct[a as usize])
            .cmp(&rows.row(distinct[b as usize]))
    });
    let mut rank_of = vec![0u32; distinct.len()];
    for (rank, &group) in by_order.iter().enumerate() {
        rank_of[group as usize] = rank as u32;
    }
    Ok(group_of_row
        .into_iter()
        .map(|g| rank_of[g as usize])
        .collect())
}

/// The column as integers whose order agrees with the column's sort (ties allowed), when it is
/// an integer or timestamp column; `None` for other types, which are then ordered by the
/// comparator alone.
fn order_preserving_u64(column: &SortColumn) -> Option<Vec<u64>> {
    let values = &column.values;
    let integral = matches!(
        values.data_type(),
        DataType::Timestamp(_, _)
            | DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::Date32
            | DataType::Date64
    );
    if !integral {
        return None;
    }
    let options: SortOptions = column.options.unwrap_or_default();
    let as_i64 = cast(values, &DataType::Int64).ok()?;
    let ints = as_i64.as_primitive::<Int64Type>();
    let null_key = if options.nulls_first { 0 } else { u64::MAX };
    Some(
        (0..ints.len())
            .map(|i| {
                if ints.is_null(i) {
                    null_key
                } else {
                    // Flipping the sign bit maps i64 order onto u64 order.
                    let key = (ints.value(i) as u64) ^ (1 << 63);
                    if options.descending { !key } else { key }
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, TimestampMicrosecondArray};
    use arrow::compute::{LexicographicalComparator, lexsort_to_indices};
    use proptest::prelude::*;

    fn column(values: ArrayRef, descending: bool, nulls_first: bool) -> SortColumn {
        SortColumn {
            values,
            options: Some(SortOptions {
                descending,
                nulls_first,
            }),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The fast order equals arrow's lexicographic sort, up to rows equal in every key.
        #[test]
        fn sorted_order_matches_lexsort(
            rows in proptest::collection::vec(
                (proptest::option::of(0..4u8), proptest::option::of(0..5u8),
                 proptest::option::of(-3..3i64), proptest::option::of(0..3u8)),
                0..80),
            options in proptest::collection::vec((any::<bool>(), any::<bool>()), 4),
            partition_keys in 0..3usize,
            cuts in proptest::collection::vec(1..30usize, 0..6),
        ) {
            let users: ArrayRef = Arc::new(
                rows.iter().map(|r| r.0.map(|v| format!("u{v}"))).collect::<StringArray>());
            let accounts: ArrayRef = Arc::new(
                rows.iter().map(|r| r.1.map(|v| format!("a{v}"))).collect::<StringArray>());
            // Extreme times too, where the order-preserving key saturates.
            let times: ArrayRef = Arc::new(
                rows.iter()
                    .map(|r| r.2.map(|t| if t == 2 { i64::MAX } else if t == -3 { i64::MIN } else { t }))
                    .collect::<TimestampMicrosecondArray>());
            let ids: ArrayRef = Arc::new(
                rows.iter().map(|r| r.3.map(|v| format!("e{v}"))).collect::<StringArray>());
            let mut keys = vec![users, accounts];
            keys.truncate(partition_keys);
            keys.push(times);
            keys.push(ids);
            let columns: Vec<SortColumn> = keys
                .into_iter()
                .zip(&options)
                .map(|(values, &(descending, nulls_first))| column(values, descending, nulls_first))
                .collect();
            // The same rows cut into batches at random places.
            let mut batches: Vec<Vec<SortColumn>> = Vec::new();
            let mut offsets = Vec::new();
            let mut offset = 0;
            for &cut in &cuts {
                let len = cut.min(rows.len() - offset);
                if len == 0 {
                    continue;
                }
                batches.push(
                    columns
                        .iter()
                        .map(|c| SortColumn { values: c.values.slice(offset, len), options: c.options })
                        .collect(),
                );
                offsets.push(offset);
                offset += len;
            }
            if offset < rows.len() {
                batches.push(
                    columns
                        .iter()
                        .map(|c| SortColumn { values: c.values.slice(offset, rows.len() - offset), options: c.options })
                        .collect(),
                );
                offsets.push(offset);
            }
            let order = SortedOrder::of(&batches, partition_keys).expect("sort");
            let got: Vec<usize> = order.rows.iter().map(|&(b, r)| offsets[b] + r).collect();
            let expected = lexsort_to_indices(&columns, None).expect("lexsort");
            let comparator = LexicographicalComparator::try_new(&columns).expect("comparator");
            prop_assert_eq!(got.len(), expected.len());
            for (g, want) in got.iter().zip(expected.values()) {
                prop_assert_eq!(
                    comparator.compare(*g, *want as usize),
                    std::cmp::Ordering::Equal
                );
            }
            // A window partition starts wherever the partition keys change.
            let starts: Vec<usize> = (0..got.len())
                .filter(|&i| {
                    i == 0 || (0..partition_keys).any(|k| {
                        let c = LexicographicalComparator::try_new(&columns[k..=k]).expect("c");
                        c.compare(got[i - 1], got[i]) != std::cmp::Ordering::Equal
                    })
                })
                .collect();
            prop_assert_eq!(order.partition_starts, starts);
        }
    }
}
