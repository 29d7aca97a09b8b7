//! [`AccountScoped`]: a table whose every scan passes through [`AccountFilterExec`], which
//! drops other accounts' rows before any operator of the query sees them.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::cmp::eq;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, col, lit};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

use super::ACCOUNT_COLUMN;

/// A table whose scans return one account's rows only.
#[derive(Debug)]
pub struct AccountScoped {
    inner: Arc<dyn TableProvider>,
    account: String,
    account_index: usize,
}

impl AccountScoped {
    /// `None` when the table has no `account_id` column: it cannot be scoped and must not be
    /// shown to a tenant.
    #[must_use]
    pub fn new(inner: Arc<dyn TableProvider>, account: &str) -> Option<Self> {
        let account_index = inner.schema().index_of(ACCOUNT_COLUMN).ok()?;
        Some(AccountScoped {
            inner,
            account: account.to_owned(),
            account_index,
        })
    }

    /// The table scoped (for a codec that sends it to a cluster).
    #[must_use]
    pub fn inner(&self) -> &Arc<dyn TableProvider> {
        &self.inner
    }

    /// The account whose rows it returns.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }
}

#[async_trait]
impl TableProvider for AccountScoped {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    /// None of the query's predicates go below the account filter (see the module docs); they
    /// stay in a filter above it.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        // A limit below the filter would count other accounts' rows; the limit above applies.
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let mut read: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.inner.schema().fields().len()).collect());
        let output: Vec<usize> = (0..read.len()).collect();
        let account_at = if let Some(at) = read.iter().position(|&i| i == self.account_index) {
            at
        } else {
            read.push(self.account_index);
            read.len() - 1
        };
        // Given to the inner scan too, so that files and row groups of other accounts are
        // skipped by their statistics; the filter below is what guarantees it.
        let own_rows = col(ACCOUNT_COLUMN).eq(lit(self.account.as_str()));
        let input = self
            .inner
            .scan(state, Some(&read), &[own_rows], None)
            .await?;
        Ok(Arc::new(AccountFilterExec::new(
            input,
            account_at,
            self.account.clone(),
            output,
        )?))
    }
}

/// Keeps the rows whose `account_id` is the account, then projects. Reports no statistics
/// (the default), so no aggregate is answered from the unfiltered table's counts.
#[derive(Debug)]
pub struct AccountFilterExec {
    input: Arc<dyn ExecutionPlan>,
    account_at: usize,
    account: String,
    output: Vec<usize>,
    properties: Arc<PlanProperties>,
}

impl AccountFilterExec {
    /// Keeps the rows of `input` whose column `account_at` is `account`, then its `output`
    /// columns.
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        account_at: usize,
        account: String,
        output: Vec<usize>,
    ) -> datafusion::error::Result<Self> {
        let schema = Arc::new(input.schema().project(&output)?);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(AccountFilterExec {
            input,
            account_at,
            account,
            output,
            properties: Arc::new(properties),
        })
    }

    /// The input column that holds the account.
    #[must_use]
    pub fn account_at(&self) -> usize {
        self.account_at
    }

    /// The account whose rows it keeps.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The input columns it passes on, in order.
    #[must_use]
    pub fn output(&self) -> &[usize] {
        &self.output
    }
}

impl DisplayAs for AccountFilterExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "AccountFilterExec: account_id = {:?}", self.account)
            }
            DisplayFormatType::TreeRender => write!(f, "account_id = {:?}", self.account),
        }
    }
}

/// The rows of `batch` whose account column equals `account`, then its `output` columns.
fn own_rows(
    batch: &RecordBatch,
    account_at: usize,
    account: &str,
    output: &[usize],
) -> datafusion::error::Result<RecordBatch> {
    let accounts = batch.column(account_at);
    let wanted = ScalarValue::Utf8(Some(account.to_owned()))
        .cast_to(accounts.data_type())?
        .to_scalar()?;
    // NULL accounts compare as NULL, which the filter drops.
    let mask: BooleanArray = eq(accounts, &wanted)?;
    let projected = batch.project(output)?;
    if mask.true_count() == mask.len() && mask.null_count() == 0 {
        return Ok(projected);
    }
    Ok(filter_record_batch(&projected, &mask)?)
}

impl ExecutionPlan for AccountFilterExec {
    fn name(&self) -> &'static str {
        "AccountFilterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        // The account comparison is not a physical expression, so nothing can rewrite it.
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        datafusion::common::assert_eq_or_internal_err!(
            children.len(),
            1,
            "AccountFilterExec has one child"
        );
        let input = children.swap_remove(0);
        if options.children_properties == ChildrenPropertiesMode::Keep {
            return Ok(Arc::new(AccountFilterExec {
                input,
                account_at: self.account_at,
                account: self.account.clone(),
                output: self.output.clone(),
                properties: Arc::clone(&self.properties),
            }));
        }
        Ok(Arc::new(AccountFilterExec::new(
            input,
            self.account_at,
            self.account.clone(),
            self.output.clone(),
        )?))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let (account_at, account, output) =
            (self.account_at, self.account.clone(), self.output.clone());
        let batches = input.filter_map(move |batch| {
            let kept = batch.and_then(|b| own_rows(&b, account_at, &account, &output));
            std::future::ready(match kept {
                Ok(b) if b.num_rows() == 0 => None,
                other => Some(other),
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            batches,
        )))
    }
}
