//! The physical optimizer rule that puts [`SessionizeExec`] into plans.

use std::sync::Arc;

use datafusion_common::Result;
use datafusion_common::config::ConfigOptions;
use datafusion_common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion_physical_expr::window::{StandardWindowExpr, WindowExpr};
use datafusion_physical_optimizer::PhysicalOptimizerRule;
use datafusion_physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion_physical_plan::execution_plan::EmissionType;
use datafusion_physical_plan::sorts::sort::SortExec;
use datafusion_physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion_physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion_physical_plan::{ExecutionPlan, ExecutionPlanProperties};

use crate::sessionize::sessionize_udwf;
use crate::sessionize_exec::{Mode, SessionizeExec};

/// Replaces a window operator that evaluates only `sessionize` over a `SortExec` with
/// [`SessionizeExec`], which gives the same rows in the same order with the same window column:
/// in place of both ([`SessionizeRule::sorting_in_memory`], fastest) or of the window operator
/// only ([`SessionizeRule::over_sorted_input`], which leaves the sort to DataFusion's `SortExec`,
/// which can spill, for when memory is limited).
///
/// Register it after DataFusion's own rules (it matches the plan they leave):
///
/// ```
/// # use std::sync::Arc;
/// # use datafusion::execution::SessionStateBuilder;
/// let state = SessionStateBuilder::new()
///     .with_default_features()
///     .with_physical_optimizer_rule(Arc::new(dwell_session::SessionizeRule::sorting_in_memory()))
///     .build();
/// ```
///
/// Plans it does not recognise (other window functions in the same operator, a sort with a
/// limit, a reversed window) are left as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionizeRule {
    mode: Mode,
}

impl SessionizeRule {
    /// The rule's name, as DataFusion lists it.
    pub const NAME: &'static str = "dwell_sessionize";

    /// Sort and sessionize each partition in one operator, in memory (accounted in the memory
    /// pool).
    #[must_use]
    pub fn sorting_in_memory() -> Self {
        Self {
            mode: Mode::SortInMemory,
        }
    }

    /// Keep DataFusion's sort (which spills when memory is limited) and sessionize its output
    /// as it streams.
    #[must_use]
    pub fn over_sorted_input() -> Self {
        Self {
            mode: Mode::Presorted,
        }
    }
}

impl PhysicalOptimizerRule for SessionizeRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match replacement(&node, self.mode) {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The `SessionizeExec` that can stand in for `node`, if any.
fn replacement(node: &Arc<dyn ExecutionPlan>, mode: Mode) -> Option<Arc<dyn ExecutionPlan>> {
    let (window_exprs, input): (&[Arc<dyn WindowExpr>], &Arc<dyn ExecutionPlan>) =
        if let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() {
            (window.window_expr(), window.input())
        } else if let Some(window) = node.downcast_ref::<WindowAggExec>() {
            (window.window_expr(), window.input())
        } else {
            return None;
        };
    let [window_expr] = window_exprs else {
        return None;
    };
    let standard = window_expr.as_any().downcast_ref::<StandardWindowExpr>()?;
    let function = standard.get_standard_func_expr();
    let udwf = function.as_any().downcast_ref::<WindowUDFExpr>()?;
    if udwf.fun().as_ref() != sessionize_udwf().as_ref() {
        return None;
    }
    // DataFusion sorts each partition (`SortExec`), and with one target partition also merges
    // them (`SortPreservingMergeExec` over it, or a `SortExec` that does not preserve
    // partitioning).
    let (sort, merged) = if let Some(merge) = input.downcast_ref::<SortPreservingMergeExec>() {
        let sort = merge.input().downcast_ref::<SortExec>()?;
        if merge.fetch().is_some() || merge.expr() != sort.expr() || !sort.preserve_partitioning() {
            return None;
        }
        (sort, true)
    } else {
        let sort = input.downcast_ref::<SortExec>()?;
        let merges = !sort.preserve_partitioning()
            && sort.input().output_partitioning().partition_count() > 1;
        (sort, merges)
    };
    if sort.fetch().is_some() {
        return None;
    }
    let sort_input = sort.input();
    // The sort must be: the partition keys (any order and options), then the window's ORDER BY.
    let partition_by = window_expr.partition_by();
    let keys = sort.expr();
    let partition_keys = partition_by.len();
    if keys.len() != partition_keys + window_expr.order_by().len() {
        return None;
    }
    let (leading, trailing) = keys.split_at(partition_keys);
    let covers_partition = leading
        .iter()
        .all(|k| partition_by.iter().any(|p| p.eq(&k.expr)))
        && partition_by
            .iter()
            .all(|p| leading.iter().any(|k| k.expr.eq(p)));
    if !covers_partition || trailing != window_expr.order_by() {
        return None;
    }
    let (input, properties) = match mode {
        Mode::SortInMemory => (
            if merged {
                Arc::new(CoalescePartitionsExec::new(Arc::clone(sort_input)))
            } else {
                Arc::clone(sort_input)
            },
            Arc::new(
                node.properties()
                    .as_ref()
                    .clone()
                    .with_emission_type(EmissionType::Final),
            ),
        ),
        Mode::Presorted => (Arc::clone(input), Arc::clone(node.properties())),
    };
    let schema = sort_input.schema();
    let argument_fields = udwf
        .args()
        .iter()
        .map(|arg| arg.return_field(&schema))
        .collect::<datafusion_common::Result<Vec<_>>>()
        .ok()?;
    Some(Arc::new(SessionizeExec::new(
        mode,
        input,
        Arc::clone(function),
        udwf.args().to_vec(),
        argument_fields,
        window_expr.name().to_owned(),
        keys.clone(),
        partition_keys,
        properties,
    )))
}
