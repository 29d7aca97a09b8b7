//! Sessionization of user-interaction events: the session rule of `SESSIONS.md` and the
//! `sessionize` window function that puts it into SQL.
//!
//! A *session* is a run of activity in one browser tab of one application. It ends when the tab
//! closes or is hidden, when the user switches tab or application, when a tab opens again, or
//! after an inactivity gap longer than the application's timeout (optionally also at a maximum
//! duration or a calendar-day boundary). The rule lives in [`kernel`], the one place it is
//! written down in code; `reference` (with the `testing` feature) restates it naively for the
//! tests.
//!
//! # Using it from SQL
//!
//! Register the function, then call it over a window partitioned by user and ordered by time:
//!
//! ```
//! # use datafusion::prelude::*;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! let mut ctx = SessionContext::new();
//! dwell_session::register_all(&mut ctx)?;
//! ctx.sql(
//!     "CREATE TABLE events AS SELECT * FROM (VALUES
//!        (TIMESTAMP '2026-01-05 10:00:00', 'u1', 'A', 't1', 'page_view'),
//!        (TIMESTAMP '2026-01-05 10:10:00', 'u1', 'A', 't1', 'user_action'),
//!        (TIMESTAMP '2026-01-05 10:50:00', 'u1', 'A', 't1', 'page_view'))
//!      AS t(event_time, user_id, app_id, tab_id, event_type)",
//! )
//! .await?;
//! let batches = ctx
//!     .sql(
//!         "SELECT s.session_seq AS seq, s.previous_end_reason AS previous_end FROM (
//!            SELECT sessionize(event_time, user_id, app_id, tab_id, event_type,
//!                              timeout => INTERVAL '30 minutes')
//!                   OVER (PARTITION BY user_id ORDER BY event_time) AS s
//!            FROM events) ORDER BY 1",
//!     )
//!     .await?
//!     .collect()
//!     .await?;
//! let shown = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
//! assert_eq!(
//!     shown,
//!     "+-----+--------------+
//! | seq | previous_end |
//! +-----+--------------+
//! | 1   |              |
//! | 1   |              |
//! | 2   | timeout      |
//! +-----+--------------+"
//! );
//! # Ok(())
//! # }
//! ```
//!
//! The result is a struct with `session_id`, `session_seq`, `session_start`, `starts_session`,
//! `previous_end_reason` and `is_duplicate`; see the function's documentation (also in
//! `information_schema`) for every argument. Arguments may be named
//! (`timeout => INTERVAL '5 minutes'`); as in DataFusion generally, named arguments fill
//! parameters in order, so pass `NULL` for a parameter you skip (`event_id => NULL,
//! account_id => account_id`).
//!
//! A session's end reason is only known when the next one starts, so each session's first row
//! carries the reason its predecessor ended (`previous_end_reason`); the end reason of a user's
//! last session depends on the account's newest event and is computed by the session views with
//! [`kernel::last_session_end_reason`]'s rule.
//!
//! # Using the kernel directly
//!
//! ```
//! use arrow::datatypes::TimeUnit;
//! use dwell_session::kernel::{DEFAULT_TIMEOUT_NANOS, Event, Placement, Rule, Sessionizer};
//!
//! let mut sessionizer = Sessionizer::new(Rule::new(TimeUnit::Second));
//! let event = |time| Event {
//!     time,
//!     account_id: None,
//!     user_id: Some("u1"),
//!     app_id: Some("A"),
//!     tab_id: Some("t1"),
//!     event_type: Some("page_view"),
//!     event_id: None,
//!     timeout_nanos: DEFAULT_TIMEOUT_NANOS,
//! };
//! let seq = |p| match p {
//!     Placement::InSession(s) => s.session_seq,
//!     Placement::Duplicate => 0,
//! };
//! assert_eq!(seq(sessionizer.push(&event(0)).unwrap()), 1);
//! assert_eq!(seq(sessionizer.push(&event(1800)).unwrap()), 1); // equal to the timeout
//! assert_eq!(seq(sessionizer.push(&event(3601)).unwrap()), 2);
//! ```

pub mod count_distinct;
mod event_ids;
pub mod kernel;
#[cfg(test)]
mod properties;
#[cfg(any(test, feature = "testing"))]
pub mod reference;
mod rule;
mod session_id;
mod sessionize;
mod sessionize_exec;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

use datafusion_common::Result;
use datafusion_expr::registry::FunctionRegistry;
use datafusion_expr::{AggregateUDF, WindowUDF};

pub use rule::SessionizeRule;
pub use session_id::SessionId;
pub use sessionize::{NAME, Sessionize, output, output_fields, sessionize_udwf};
pub use sessionize_exec::{Mode as SessionizeMode, SessionizeExec};

/// Builders for the window function expressions, for the DataFrame API.
pub mod expr_fn {
    use datafusion_expr::Expr;

    /// `sessionize(args...)`; add `.partition_by(..).order_by(..).build()` from
    /// `ExprFunctionExt`.
    #[must_use]
    pub fn sessionize(args: Vec<Expr>) -> Expr {
        super::sessionize_udwf().call(args)
    }
}

/// All window functions of this crate.
#[must_use]
pub fn all_default_window_functions() -> Vec<Arc<WindowUDF>> {
    vec![sessionize_udwf()]
}

/// All aggregate functions of this crate: [`count_distinct::count_udaf`], which takes the
/// place of DataFusion's `count` (the same function, with grouped `count(DISTINCT x)` over
/// strings and dates).
#[must_use]
pub fn all_default_aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![count_distinct::count_udaf()]
}

/// Registers every function of this crate, as DataFusion's own `register_all` does; `count`
/// replaces DataFusion's under the same name.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for udwf in all_default_window_functions() {
        registry.register_udwf(udwf)?;
    }
    for udaf in all_default_aggregate_functions() {
        registry.register_udaf(udaf)?;
    }
    Ok(())
}
