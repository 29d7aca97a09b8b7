//! dwell's engine: the one place that builds a DataFusion context for dwell, so the CLI, the
//! server and the tests all query the same way.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! use datafusion::prelude::SessionConfig;
//!
//! let ctx = dwell_engine::session_context(SessionConfig::new())?;
//! let df = ctx.sql("SELECT routine_name FROM information_schema.routines WHERE routine_name = 'sessionize'").await?;
//! assert_eq!(df.count().await?, 1);
//! # Ok(())
//! # }
//! ```

use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::optimizer::Optimizer;
use datafusion::prelude::{SessionConfig, SessionContext};

/// Logical optimizer rules of DataFusion 55 that dwell leaves out.
///
/// `extract_leaf_expressions` and `push_down_leaf_projections` move struct field accesses
/// (`s['session_id']`) below joins and aggregates; on the session queries they rewrite a field
/// access onto the wrong column and planning fails with "Cannot access field at argument 1: type
/// Utf8View is not Struct, Map, or Null" (see `tests/slt/examples.slt`, `ids_first_run`). The
/// rules only narrow Parquet reads of nested columns, which dwell's event tables do not have.
pub const OPTIMIZER_RULES_LEFT_OUT: [&str; 2] =
    ["extract_leaf_expressions", "push_down_leaf_projections"];

/// A context with dwell's functions registered and `information_schema` on.
pub fn session_context(config: SessionConfig) -> Result<SessionContext> {
    let rules = Optimizer::new()
        .rules
        .into_iter()
        .filter(|rule| !OPTIMIZER_RULES_LEFT_OUT.contains(&rule.name()))
        .collect();
    let state = SessionStateBuilder::new()
        .with_config(config.with_information_schema(true))
        .with_default_features()
        .with_optimizer_rules(rules)
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    dwell_session::register_all(&mut ctx)?;
    Ok(ctx)
}
