//! The job of [`Mode::Presorted`](super::Mode::Presorted): batches sorted upstream streamed
//! through, a user's evaluator carried across batch boundaries.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::{SortOptions, concat};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion_common::Result;
use datafusion_expr::PartitionEvaluator;
use datafusion_physical_expr::PhysicalSortExpr;
use datafusion_physical_expr::window::StandardWindowFunctionExpr;
use datafusion_physical_plan::metrics::BaselineMetrics;

/// The work of one presorted partition: batches in, batches with the window column out.
pub(super) struct StreamingJob {
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
    /// The job for rows sorted on `partition_keys` (then the window's order), producing batches
    /// of `schema`: the input's columns and the window column.
    pub(super) fn new(
        function: Arc<dyn StandardWindowFunctionExpr>,
        partition_keys: Vec<PhysicalSortExpr>,
        schema: SchemaRef,
        metrics: BaselineMetrics,
    ) -> Self {
        Self {
            function,
            partition_keys,
            converter: None,
            schema,
            current: None,
            metrics,
        }
    }

    pub(super) fn next_batch(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
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
