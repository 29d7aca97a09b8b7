//! Tenants: what one account's callers may see and land.
//!
//! A caller confined to an account gets its own [`SessionContext`] (see
//! [`Engine::context_for`](crate::Engine::context_for)) in which `events` and `users` are
//! [`AccountScoped`] tables: every scan of them passes through [`AccountFilterExec`], which drops
//! other accounts' rows before any operator of the query sees them. The filter is part of the
//! table, not of the query, so no SQL can get around it, and it is a barrier: the query's own
//! predicates are not pushed below it (a predicate that fails, `CAST(user_id AS INT)`, fails on
//! the caller's rows only, and its error can echo only the caller's values). The views are
//! created anew in that context, so they read only the scoped tables; table names are the same
//! for every account.

mod scoped_table;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;

use crate::Engine;
use crate::catalog::{ENGINE_TABLES, create_views};
use crate::error::{Error, Result};
use crate::what_if::register_sessions_with;

pub use scoped_table::{AccountFilterExec, AccountScoped};

/// The column that says whose an event (or a user) is.
pub(crate) const ACCOUNT_COLUMN: &str = "account_id";

/// Whose data a caller may see and land.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every account (an administrator, the CLI).
    All,
    /// One account only.
    Account(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("all accounts"),
            Scope::Account(account) => write!(f, "account {account:?}"),
        }
    }
}

/// Most accounts' contexts kept at once.
const MAX_CACHED_TENANTS: usize = 1_000;

/// Each account's context, with the catalog generation it was built at: a refresh starts a new
/// generation, and a context of an older one is built again.
#[derive(Default)]
pub(crate) struct TenantContexts {
    /// Counts swaps of the engine's tables and views.
    generation: AtomicU64,
    contexts: Mutex<HashMap<String, (u64, SessionContext)>>,
}

impl fmt::Debug for TenantContexts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantContexts")
            .field("generation", &self.generation())
            .field("accounts", &self.contexts().len())
            .finish()
    }
}

impl TenantContexts {
    /// The engine's tables or views changed: every cached context is out of date.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn get(&self, account: &str, generation: u64) -> Option<SessionContext> {
        self.contexts()
            .get(account)
            .filter(|(built, _)| *built == generation)
            .map(|(_, ctx)| ctx.clone())
    }

    fn insert(&self, account: &str, generation: u64, ctx: &SessionContext) {
        let mut contexts = self.contexts();
        // Accounts come and go with the callers; a bound keeps the cache from growing without
        // end (a context is rebuilt in milliseconds).
        if contexts.len() >= MAX_CACHED_TENANTS {
            contexts.clear();
        }
        contexts.insert(account.to_owned(), (generation, ctx.clone()));
    }

    fn contexts(&self) -> MutexGuard<'_, HashMap<String, (u64, SessionContext)>> {
        // A panic while the map was held left whole entries behind.
        self.contexts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Engine {
    /// The context a caller of `scope` queries: the engine's own for [`Scope::All`]; for an
    /// account, one where `events` and `users` hold only that account's rows (filtered at the
    /// scan, whatever the SQL), with the same settings tables and the views built over those.
    /// A table without an `account_id` column is left out of an account's context.
    pub async fn context_for(&self, scope: &Scope) -> Result<SessionContext> {
        self.follow_location().await?;
        let Scope::Account(account) = scope else {
            return Ok(self.ctx.clone());
        };
        let generation = self.tenants.generation();
        if let Some(ctx) = self.tenants.get(account, generation) {
            return Ok(ctx);
        }
        let ctx = self.contexts.sibling_of(&self.ctx)?;
        for name in ENGINE_TABLES {
            if !self.ctx.table_exist(name)? {
                continue;
            }
            let table = self.ctx.table_provider(name).await?;
            let table: Arc<dyn TableProvider> = if matches!(
                name,
                "events"
                    | "users"
                    | crate::persisted::ROWS_TABLE
                    | crate::persisted::RETRACTIONS_TABLE
                    | crate::persisted::CHANGES_TABLE
            ) {
                match AccountScoped::new(table, account) {
                    Some(scoped) => Arc::new(scoped),
                    None => continue,
                }
            } else {
                table
            };
            ctx.register_table(name, table)?;
        }
        if ctx.table_exist("events")? {
            let settings = self.settings();
            create_views(&ctx, &settings).await?;
            // Over the account's own `events`: the what-if sessions are the account's only.
            register_sessions_with(&ctx, ctx.table_provider("events").await?, &settings);
        }
        self.tenants.insert(account, generation, &ctx);
        Ok(ctx)
    }
}

/// Confines a tenant's ingest to its account: without an `account_id` column the account is
/// added; with one, every row must already name the account. The error names the first row
/// that does not, and only with the caller's own value.
pub(crate) fn confine_ingest(
    source: &str,
    account: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let Ok(index) = schema.index_of(ACCOUNT_COLUMN) else {
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(ACCOUNT_COLUMN, DataType::Utf8, true));
        let extended = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let batches = batches
            .iter()
            .map(|batch| {
                let mut columns = batch.columns().to_vec();
                let own: ArrayRef = Arc::new(StringArray::from(vec![account; batch.num_rows()]));
                columns.push(own);
                RecordBatch::try_new(Arc::clone(&extended), columns)
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((extended, batches));
    };
    let mut row = 0;
    for batch in batches {
        let accounts = cast(batch.column(index), &DataType::Utf8).map_err(|_| {
            Error::ingest(
                source,
                Some(ACCOUNT_COLUMN),
                format!(
                    "has type {}; expected a string",
                    schema.field(index).data_type()
                ),
            )
        })?;
        let accounts = accounts
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        for (i, value) in accounts.iter().enumerate() {
            if value != Some(account) {
                let found = value.map_or_else(|| "NULL".to_owned(), |v| format!("{v:?}"));
                return Err(Error::Forbidden {
                    file: source.to_owned(),
                    reason: format!(
                        "column {ACCOUNT_COLUMN}: row {} is {found}; this caller may land events of account {account:?} only",
                        row + i + 1
                    ),
                });
            }
        }
        row += batch.num_rows();
    }
    Ok((Arc::clone(schema), batches.to_vec()))
}
