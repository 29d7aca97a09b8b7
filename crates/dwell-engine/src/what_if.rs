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

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, plan_err};
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
    let literal = |expr: &Expr, what: &str| -> datafusion::error::Result<String> {
        let text = match expr {
            Expr::Literal(value, _) => match value {
                ScalarValue::Utf8(Some(v))
                | ScalarValue::Utf8View(Some(v))
                | ScalarValue::LargeUtf8(Some(v)) => Some(v.clone()),
                ScalarValue::Boolean(Some(_))
                | ScalarValue::Int8(Some(_))
                | ScalarValue::Int16(Some(_))
                | ScalarValue::Int32(Some(_))
                | ScalarValue::Int64(Some(_))
                | ScalarValue::UInt8(Some(_))
                | ScalarValue::UInt16(Some(_))
                | ScalarValue::UInt32(Some(_))
                | ScalarValue::UInt64(Some(_))
                | ScalarValue::Float32(Some(_))
                | ScalarValue::Float64(Some(_))
                    if what == "value" =>
                {
                    Some(value.to_string())
                }
                _ => None,
            },
            _ => None,
        };
        text.map_or_else(
            || {
                plan_err!(
                    "{SESSIONS_WITH}: each {what} must be a literal{}, not {expr}",
                    if what == "key" {
                        " string"
                    } else {
                        " (a string, number or boolean)"
                    }
                )
            },
            Ok,
        )
    };
    args.chunks(2)
        .map(|pair| Ok((literal(&pair[0], "key")?, literal(&pair[1], "value")?)))
        .collect()
}
