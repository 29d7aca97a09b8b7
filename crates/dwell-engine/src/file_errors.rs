//! Read errors that name their file.
//!
//! DataFusion's Parquet scan reports a page it cannot decode ("Parquet error: Required field
//! type_ is missing") without saying which of a table's files holds it. [`NameFileErrors`] is a
//! physical optimizer rule that puts [`NamedFileErrorsExec`] over every file scan; when the
//! scan fails, it decodes the scan's files one by one (the failing partition's first) to find
//! the damaged one and puts its path before the error. Only a failed query pays for that.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Puts [`NamedFileErrorsExec`] over every Parquet file scan. Register it after every rule that
/// matches scans (it hides them from rules that look for a `DataSourceExec`).
#[derive(Debug, Default)]
pub(crate) struct NameFileErrors;

impl PhysicalOptimizerRule for NameFileErrors {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let wrapped = (node.as_ref() as &dyn Any).is::<NamedFileErrorsExec>();
            let scans_files = !wrapped
                && node
                    .downcast_ref::<DataSourceExec>()
                    .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
                    .is_some_and(|config| config.file_source().file_type() == "parquet");
            Ok(if scans_files {
                Transformed::yes(Arc::new(NamedFileErrorsExec { scan: node }) as _)
            } else {
                Transformed::no(node)
            })
        })
        .data()
    }

    fn name(&self) -> &'static str {
        "dwell_name_file_errors"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A file scan whose errors name the file at fault.
#[derive(Debug)]
pub(crate) struct NamedFileErrorsExec {
    /// A `DataSourceExec` over a `FileScanConfig`.
    scan: Arc<dyn ExecutionPlan>,
}

impl NamedFileErrorsExec {
    fn config(&self) -> &FileScanConfig {
        self.scan
            .downcast_ref::<DataSourceExec>()
            .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
            .expect("made over a file scan")
    }
}

impl DisplayAs for NamedFileErrorsExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamedFileErrorsExec")
    }
}

impl ExecutionPlan for NamedFileErrorsExec {
    fn name(&self) -> &'static str {
        "NamedFileErrorsExec"
    }

    /// Rules and tests that look for the scan find it through the wrapper.
    fn downcast_delegate(&self) -> Option<&dyn ExecutionPlan> {
        Some(self.scan.as_ref())
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.scan.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.scan]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
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

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let scan = children.swap_remove(0);
        if scan
            .downcast_ref::<DataSourceExec>()
            .and_then(|s| s.data_source().downcast_ref::<FileScanConfig>())
            .is_none()
        {
            // Another rule replaced the scan: nothing left to name files for.
            return Ok(scan);
        }
        Ok(Arc::new(Self { scan }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let config = self.config();
        let store = context
            .runtime_env()
            .object_store(&config.object_store_url)?;
        let url = config.object_store_url.to_string();
        let diagnosis = Arc::new(Diagnosis {
            scan: Arc::clone(&self.scan),
            partition,
            store,
            url,
        });
        let stream = self.scan.execute(partition, context)?;
        let schema = stream.schema();
        let named = stream.then(move |batch| {
            let diagnosis = Arc::clone(&diagnosis);
            async move {
                match batch {
                    Ok(batch) => Ok(batch),
                    Err(error) => Err(diagnosis.name(error).await),
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, named)))
    }
}

/// What a failed scan needs to find its damaged file (looked up only once it has failed).
struct Diagnosis {
    /// The `DataSourceExec` whose files are suspects.
    scan: Arc<dyn ExecutionPlan>,
    partition: usize,
    store: Arc<dyn ObjectStore>,
    /// The store's URL, so the named path is the one a user can find.
    url: String,
}

impl Diagnosis {
    /// The failing partition's files first, then the others (partitions steal each other's
    /// files in DataFusion 55).
    fn suspects(&self) -> Vec<object_store::ObjectMeta> {
        let Some(config) = self
            .scan
            .downcast_ref::<DataSourceExec>()
            .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
        else {
            return Vec::new();
        };
        let mut files: Vec<object_store::ObjectMeta> = Vec::new();
        for (index, group) in config.file_groups.iter().enumerate() {
            let metas = group.files().iter().map(|f| f.object_meta.clone());
            if index == self.partition {
                files.splice(0..0, metas);
            } else {
                files.extend(metas);
            }
        }
        files
    }

    /// `error`, with the first of the files that fails to decode named before it. Errors that
    /// are not about reading (memory, cancellation) and errors no file reproduces stay as they
    /// are.
    async fn name(&self, error: DataFusionError) -> DataFusionError {
        if !is_read_error(&error) {
            return error;
        }
        for file in &self.suspects() {
            if decode(&self.store, file).await.is_err() {
                let path = format!("{}{}", self.url, file.location);
                return error.context(format!("reading {path}"));
            }
        }
        error
    }
}

/// Whether `error` may come from a file's bytes (decoding or fetching them), rather than from
/// the query (a failed expression, memory, a cast): only then are the files decoded again.
fn is_read_error(error: &DataFusionError) -> bool {
    match error.find_root() {
        DataFusionError::ParquetError(_)
        | DataFusionError::IoError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::External(_) => true,
        DataFusionError::ArrowError(error, _) => matches!(
            error.as_ref(),
            ArrowError::ParquetError(_) | ArrowError::IoError(..) | ArrowError::ExternalError(_)
        ),
        _ => false,
    }
}

/// Reads every page of a file. A panic of the reader counts as a failure to read it.
async fn decode(store: &Arc<dyn ObjectStore>, file: &object_store::ObjectMeta) -> Result<()> {
    let bytes = store.get(&file.location).await?.bytes().await?;
    tokio::task::spawn_blocking(move || -> Result<()> {
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
            batch?;
        }
        Ok(())
    })
    .await
    .map_err(|e| DataFusionError::External(Box::new(e)))?
}
