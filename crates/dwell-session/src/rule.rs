//! The physical optimizer rule that puts [`SessionizeExec`] into plans.

use std::sync::Arc;

use datafusion_common::Result;
use datafusion_common::config::ConfigOptions;
use datafusion_common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion_physical_expr::expressions::Literal;
use datafusion_physical_expr::window::{StandardWindowExpr, WindowExpr};
use datafusion_physical_expr::{AcrossPartitions, LexOrdering, PhysicalSortExpr};
use datafusion_physical_optimizer::PhysicalOptimizerRule;
use datafusion_physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion_physical_plan::execution_plan::EmissionType;
use datafusion_physical_plan::sorts::sort::SortExec;
use datafusion_physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion_physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion_physical_plan::{ExecutionPlan, ExecutionPlanProperties};

use crate::sessionize::sessionize_udwf;
use crate::sessionize_exec::{Declined, Mode, SessionizeExec};

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
                Ok(Some(new)) => Transformed::yes(new),
                Ok(None) => Transformed::no(node),
                Err(reason) => {
                    // Correct, but per row: say so rather than run slowly in silence.
                    log::warn!(
                        target: "dwell::sessionize",
                        "sessionize runs in DataFusion's per-row window operator, not \
                         SessionizeExec: {reason} ({})",
                        node.name()
                    );
                    Transformed::no(node)
                }
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

/// The `SessionizeExec` that can stand in for `node`: `Ok(None)` when `node` is no window
/// operator over `sessionize`, `Err` with the reason when it is one the rule cannot replace.
fn replacement(
    node: &Arc<dyn ExecutionPlan>,
    mode: Mode,
) -> std::result::Result<Option<Arc<dyn ExecutionPlan>>, Declined> {
    let (window_exprs, input): (&[Arc<dyn WindowExpr>], &Arc<dyn ExecutionPlan>) =
        if let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() {
            (window.window_expr(), window.input())
        } else if let Some(window) = node.downcast_ref::<WindowAggExec>() {
            (window.window_expr(), window.input())
        } else {
            return Ok(None);
        };
    if !window_exprs.iter().any(is_sessionize) {
        return Ok(None);
    }
    let [window_expr] = window_exprs else {
        return Err("other window functions share its window operator");
    };
    let (sort, merged) = sort_under(input)?;
    // Keys that are constant in the sorted rows (a NULL for an absent `account_id`, a user
    // fixed by a filter) are left out of the sort by DataFusion: leave them out here too. Where
    // the operator merges partitions, only keys constant across all of them may go.
    let sort_input = sort.input();
    let required = window_order(window_expr.as_ref(), sort_input.as_ref(), merged);
    let partition_keys = required.partition_keys;
    let Some(required) = LexOrdering::new(required.keys) else {
        return Err("its window has no order");
    };
    if sort.fetch().is_some() {
        return Err("its sort has a limit");
    }
    // The sort must be: the (non-constant) partition keys in any order and with any options,
    // then the window's ORDER BY.
    let keys = sort.expr();
    if keys.len() != required.len() {
        return Err("its sort has other keys than the window's partition and order");
    }
    let (leading, trailing) = keys.split_at(partition_keys);
    let (wanted_leading, wanted_trailing) = required.split_at(partition_keys);
    let covers_partition = leading
        .iter()
        .all(|k| wanted_leading.iter().any(|p| p.expr.eq(&k.expr)))
        && wanted_leading
            .iter()
            .all(|p| leading.iter().any(|k| k.expr.eq(&p.expr)));
    if !covers_partition || trailing != wanted_trailing {
        return Err("its sort has other keys than the window's partition and order");
    }
    let (input, properties) = match mode {
        Mode::SortInMemory | Mode::SortSpilling => (
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
    Ok(Some(Arc::new(SessionizeExec::new(
        mode,
        input,
        Arc::clone(window_expr),
        keys.clone(),
        partition_keys,
        properties,
    )?)))
}

pub(crate) fn is_sessionize(expr: &Arc<dyn WindowExpr>) -> bool {
    expr.as_any()
        .downcast_ref::<StandardWindowExpr>()
        .and_then(|standard| {
            standard
                .get_standard_func_expr()
                .as_any()
                .downcast_ref::<WindowUDFExpr>()
                .map(|udwf| udwf.fun().as_ref() == sessionize_udwf().as_ref())
        })
        .unwrap_or(false)
}

/// The sort DataFusion put under a window operator, and whether it also merges partitions:
/// DataFusion sorts each partition (`SortExec`), and with one target partition also merges them
/// (`SortPreservingMergeExec` over it, or a `SortExec` that does not preserve partitioning).
fn sort_under(input: &Arc<dyn ExecutionPlan>) -> std::result::Result<(&SortExec, bool), Declined> {
    if let Some(merge) = input.downcast_ref::<SortPreservingMergeExec>() {
        let sort = merge
            .input()
            .downcast_ref::<SortExec>()
            .ok_or("a merge without a sort under it")?;
        if merge.fetch().is_some() || merge.expr() != sort.expr() || !sort.preserve_partitioning() {
            return Err("a merge that limits or reorders the sort");
        }
        Ok((sort, true))
    } else if let Some(sort) = input.downcast_ref::<SortExec>() {
        let merges = !sort.preserve_partitioning()
            && sort.input().output_partitioning().partition_count() > 1;
        Ok((sort, merges))
    } else {
        Err("no sort under it to replace")
    }
}

/// The sort a window needs over `input`: its partition keys (ascending, as DataFusion sorts
/// them), then its ORDER BY, without keys that are constant in `input` or repeat an earlier key
/// (as DataFusion's own normalization leaves them out), and how many of them are partition keys.
/// With `across_partitions`, a key constant within each partition but not across them stays.
struct WindowOrder {
    keys: Vec<PhysicalSortExpr>,
    partition_keys: usize,
}

fn window_order(
    window: &dyn WindowExpr,
    input: &dyn ExecutionPlan,
    across_partitions: bool,
) -> WindowOrder {
    let properties = input.equivalence_properties();
    let mut keys: Vec<PhysicalSortExpr> = Vec::new();
    let wanted = |key: PhysicalSortExpr, keys: &mut Vec<PhysicalSortExpr>| {
        let constant = key.expr.downcast_ref::<Literal>().is_some()
            || match properties.is_expr_constant(&key.expr) {
                Some(AcrossPartitions::Uniform(_)) => true,
                Some(AcrossPartitions::Heterogeneous) => !across_partitions,
                None => false,
            };
        if !constant && !keys.iter().any(|k| k.expr.eq(&key.expr)) {
            keys.push(key);
        }
    };
    for expr in window.partition_by() {
        wanted(PhysicalSortExpr::new_default(Arc::clone(expr)), &mut keys);
    }
    let partition_keys = keys.len();
    for key in window.order_by() {
        wanted(key.clone(), &mut keys);
    }
    WindowOrder {
        keys,
        partition_keys,
    }
}
