//! `sessions_with(key, value, ...)`: the sessions recomputed from the events at query time with
//! settings given in the call, for what-if questions ("what if the timeout were 15 minutes?").
//!
//! The keys are those of `dwell.toml`, spelled as the `dwell_settings` table spells them
//! (`default_timeout`, `app_timeouts.crm`, `segments.struggling_min_apps`, ...); each value is
//! a string in `dwell.toml`'s syntax (`'15m'`, `'true'`, `'Europe/Berlin'`), or a number or a
//! boolean literal. Settings not named keep the value in force, so `sessions_with()` equals
//! `sessions`. The function reads the `events` of the context it is registered in: a tenant's
//! context registers it over the tenant's own `events`, so it sees that account only.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;

use crate::catalog::create_views;
use crate::settings::Settings;

/// The function's name in SQL.
pub(crate) const SESSIONS_WITH: &str = "sessions_with";

/// The table function over one context's `events` and the settings in force there.
#[derive(Debug)]
pub(crate) struct SessionsWith {
    events: Arc<dyn TableProvider>,
    settings: Settings,
}

/// Registers `sessions_with` in `target` over `events` (the table `target` calls `events`) and
/// the settings in force.
pub(crate) fn register_sessions_with(
    target: &SessionContext,
    events: Arc<dyn TableProvider>,
    settings: &Settings,
) {
    target.register_udtf(
        SESSIONS_WITH,
        Arc::new(SessionsWith {
            events,
            settings: settings.clone(),
        }),
    );
}

impl TableFunctionImpl for SessionsWith {
    fn call_with_args(
        &self,
        args: TableFunctionArgs,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        let overrides = overrides(args.exprs())?;
        let settings = self
            .settings
            .with_overrides(&overrides, SESSIONS_WITH)
            .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?;
        // The views are planned in a context of their own, over the caller's `events`, with the
        // caller's session settings; the caller's planner then runs them as any view.
        let mut scratch = SessionContext::new_with_config(args.session().config().clone());
        dwell_session::register_all(&mut scratch)?;
        scratch.register_table("events", Arc::clone(&self.events))?;
        // Planning a view does no I/O (the tables' schemas are known), so waiting on it here,
        // inside the caller's planning, blocks for the time it takes to plan, nothing more.
        futures::executor::block_on(async {
            create_views(&scratch, &settings)
                .await
                .map_err(datafusion::error::DataFusionError::from)?;
            scratch.table_provider("sessions").await
        })
    }
}

/// The call's arguments as (key, value) pairs.
fn overrides(args: &[Expr]) -> datafusion::error::Result<Vec<(String, String)>> {
    if !args.len().is_multiple_of(2) {
        return plan_err!(
            "{SESSIONS_WITH} takes pairs of a setting's key and its value, as in \
             {SESSIONS_WITH}('default_timeout', '15m'); got {} argument(s)",
            args.len()
        );
    }
    args.chunks(2)
        .map(|pair| {
            let Some(key) = text_of(&pair[0]) else {
                return plan_err!(
                    "{SESSIONS_WITH}: each key must be a literal string, not {}",
                    pair[0]
                );
            };
            let Some(value) = text_of(&pair[1]).or_else(|| number_or_boolean_of(&pair[1])) else {
                return plan_err!(
                    "{SESSIONS_WITH}: the value of {key} must be a literal (a string, number or \
                     boolean), not {}",
                    pair[1]
                );
            };
            Ok((key, value))
        })
        .collect()
}

/// A string literal's text.
fn text_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(value, _) => value.try_as_str().flatten().map(str::to_owned),
        _ => None,
    }
}

/// A number or boolean literal, as `dwell.toml` would spell it.
fn number_or_boolean_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(value, _)
            if !value.is_null()
                && (value.data_type().is_numeric() || value.data_type() == DataType::Boolean) =>
        {
            Some(value.to_string())
        }
        _ => None,
    }
}
