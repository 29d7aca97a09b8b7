//! How the engine's DataFusion contexts are made: session settings, the runtime (memory pool,
//! no list-files cache), dwell's functions and rules, and a cluster's state upgrade. Every
//! context the engine builds (its own, the tenants', a refresh's scratch one) comes from one
//! [`ContextFactory`], so they all plan alike.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::optimizer::Optimizer;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;

use crate::committed::CommittedStore;
use crate::deadline::{DeadlineStore, StoreSettings};
use crate::error::Result;
use crate::file_errors::NameFileErrors;
use crate::location::DataLocation;

/// Logical optimizer rules of DataFusion 55 that dwell leaves out.
///
/// `extract_leaf_expressions` and `push_down_leaf_projections` move struct field accesses
/// (`s['session_id']`) below joins and aggregates; on the session queries they rewrite a field
/// access onto the wrong column and planning fails with "Cannot access field at argument 1: type
/// Utf8View is not Struct, Map, or Null" (see `tests/slt/examples.slt`, `ids_first_run`). The
/// rules only narrow Parquet reads of nested columns, which dwell's event tables do not have.
pub const OPTIMIZER_RULES_LEFT_OUT: [&str; 2] =
    ["extract_leaf_expressions", "push_down_leaf_projections"];

/// Turns a context's state into one whose queries run elsewhere: `dwell-cluster` gives one
/// that hands plans to an Apache DataFusion Ballista scheduler. The engine applies it to every
/// context it builds (its own, the tenants', the scratch one of a refresh) and registers dwell's
/// functions again afterwards, since an upgrade may replace the function lists.
pub type StateUpgrade =
    Arc<dyn Fn(SessionState) -> datafusion::error::Result<SessionState> + Send + Sync>;

/// A context with dwell's functions registered and `information_schema` on, and no list-files
/// cache: ingests (from this process or another) must show up in the next query.
pub fn session_context(config: SessionConfig) -> datafusion::error::Result<SessionContext> {
    session_context_with_memory_limit(config, None)
}

/// As [`session_context`], with the memory that queries' operators may hold limited to
/// `memory_limit` bytes: past it, sorts and aggregations spill to disk and operators that cannot
/// spill fail with "resources exhausted". Sessionization counts against it (DataFusion 55's own
/// window operators do not, which is one reason dwell replaces them for `sessionize`).
pub fn session_context_with_memory_limit(
    config: SessionConfig,
    memory_limit: Option<usize>,
) -> datafusion::error::Result<SessionContext> {
    let (factory, config) = ContextFactory::new(config, memory_limit, None)?;
    factory.context(config)
}

/// The state a process that plans or runs a distributed query (a Ballista scheduler or
/// executor) uses: dwell's functions and logical rules over `runtime`, and `SessionizeRule`
/// sorting in memory, so the executors run dwell's operator (the cluster's plan codec carries
/// it; an executor given a memory limit decodes it to sort with DataFusion's spilling sort).
pub fn distributed_state(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> datafusion::error::Result<SessionState> {
    let mut ctx = SessionContext::new_with_state(
        SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_optimizer_rules(dwell_optimizer_rules())
            .with_physical_optimizer_rule(Arc::new(
                dwell_session::SessionizeRule::sorting_in_memory(),
            ))
            .build(),
    );
    dwell_session::register_all(&mut ctx)?;
    Ok(ctx.state())
}

/// The runtime a scheduler or an executor reads `location` through: the store stack an
/// [`Engine`](crate::Engine) over it uses (each call within its deadline, uncommitted ingests
/// hidden), no list-files cache (ingests by other processes show in the next query). Its memory
/// pool is unbounded: a Ballista executor puts its own pool on it for each task.
pub fn location_runtime(
    location: &DataLocation,
    store_settings: &StoreSettings,
) -> Result<Arc<RuntimeEnv>> {
    let runtime = runtime(None)?;
    let (_, committed) = location_stores(location, store_settings);
    runtime.register_object_store(location.store_url(), committed);
    Ok(runtime)
}

/// The location with every call bounded, and the store the tables read (uncommitted ingests
/// hidden) over it.
pub(crate) fn location_stores(
    location: &DataLocation,
    store_settings: &StoreSettings,
) -> (DataLocation, Arc<dyn ObjectStore>) {
    let bounded: Arc<dyn ObjectStore> = Arc::new(DeadlineStore::new(
        Arc::clone(location.store()),
        store_settings,
    ));
    let bounded = location.clone().with_store(bounded);
    let committed: Arc<dyn ObjectStore> = Arc::new(CommittedStore::new(
        Arc::clone(bounded.store()),
        bounded.root().clone(),
    ));
    (bounded, committed)
}

/// Makes the engine's contexts: all share one runtime (memory pool, object stores), plan with
/// dwell's rules in the mode the memory limit asks for, and pass through the cluster's upgrade.
pub(crate) struct ContextFactory {
    runtime: Arc<RuntimeEnv>,
    /// The engine's own settings, before any upgrade or caller's `SET`: what local contexts use.
    config: SessionConfig,
    memory_limited: bool,
    memory_limit: Option<usize>,
    upgrade: Option<StateUpgrade>,
}

impl std::fmt::Debug for ContextFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextFactory")
            .field("memory_limited", &self.memory_limited)
            .field("upgraded", &self.upgrade.is_some())
            .finish_non_exhaustive()
    }
}

impl ContextFactory {
    /// A factory with a runtime of its own, and `config` as the engine's contexts need it.
    pub(crate) fn new(
        config: SessionConfig,
        memory_limit: Option<usize>,
        upgrade: Option<StateUpgrade>,
    ) -> datafusion::error::Result<(Self, SessionConfig)> {
        let config = engine_config(config, memory_limit.is_some());
        let factory = ContextFactory {
            runtime: runtime(memory_limit)?,
            config: config.clone(),
            memory_limited: memory_limit.is_some(),
            memory_limit,
            upgrade,
        };
        Ok((factory, config))
    }

    /// A context over the shared runtime with `config` (the engine context's current one, so
    /// settings a caller changed with `SET` carry over).
    pub(crate) fn context(
        &self,
        config: SessionConfig,
    ) -> datafusion::error::Result<SessionContext> {
        let state = self.state(config, Arc::clone(&self.runtime));
        let state = match &self.upgrade {
            Some(upgrade) => upgrade(state)?,
            None => state,
        };
        let mut ctx = SessionContext::new_with_state(state);
        dwell_session::register_all(&mut ctx)?;
        Ok(ctx)
    }

    fn state(
        &self,
        config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
    ) -> datafusion::execution::SessionState {
        SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_optimizer_rules(dwell_optimizer_rules())
            // After DataFusion's own rules: sessionize without its window operators. With a
            // memory limit the sort stays DataFusion's, which spills; without, one operator
            // sorts faster.
            .with_physical_optimizer_rule(Arc::new(if self.memory_limited {
                dwell_session::SessionizeRule::over_sorted_input()
            } else {
                dwell_session::SessionizeRule::sorting_in_memory()
            }))
            // Last: it wraps scans, which rules before it match.
            .with_physical_optimizer_rule(Arc::new(NameFileErrors))
            .build()
    }

    /// A context that runs here even on a cluster (no upgrade), with the engine's own settings
    /// and a runtime of its own over `stores`: the engine's upkeep of the persisted sessions and
    /// compaction. (A cluster client's context runs nothing itself; local plans under its
    /// runtime were seen to wait forever.)
    pub(crate) fn isolated(
        &self,
        stores: &[(&url::Url, Arc<dyn ObjectStore>)],
    ) -> datafusion::error::Result<SessionContext> {
        let runtime = runtime(self.memory_limit)?;
        for (url, store) in stores {
            runtime.register_object_store(url, Arc::clone(store));
        }
        self.local(runtime)
    }

    /// A context like [`ContextFactory::isolated`] over `ctx`'s runtime (one of its own).
    pub(crate) fn local_sibling_of(
        &self,
        ctx: &SessionContext,
    ) -> datafusion::error::Result<SessionContext> {
        self.local(ctx.runtime_env())
    }

    fn local(&self, runtime: Arc<RuntimeEnv>) -> datafusion::error::Result<SessionContext> {
        let state = self.state(self.config.clone(), runtime);
        let mut local = SessionContext::new_with_state(state);
        dwell_session::register_all(&mut local)?;
        Ok(local)
    }

    /// A context planned like `ctx`: its current settings, the shared runtime.
    pub(crate) fn sibling_of(
        &self,
        ctx: &SessionContext,
    ) -> datafusion::error::Result<SessionContext> {
        self.context(ctx.copied_config())
    }
}

/// The runtime of an engine's contexts: no list-files cache, and with a memory limit a fair,
/// spilling pool.
fn runtime(memory_limit: Option<usize>) -> datafusion::error::Result<Arc<RuntimeEnv>> {
    let mut runtime = RuntimeEnvBuilder::new()
        .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0));
    if let Some(limit) = memory_limit {
        // A sessions query runs several spilling operators at once (a sort per partition, the
        // sessions' sort, aggregations): a fair pool gives each its share, where a greedy one
        // lets the first take it all and the next fail. Errors name the biggest consumers.
        const NAMED_IN_ERRORS: NonZeroUsize = NonZeroUsize::new(5).unwrap();
        let pool = TrackConsumersPool::new(FairSpillPool::new(limit), NAMED_IN_ERRORS);
        runtime = runtime.with_memory_pool(Arc::new(pool));
    }
    runtime.build_arc()
}

/// The session settings of an engine's context.
fn engine_config(config: SessionConfig, memory_limited: bool) -> SessionConfig {
    let mut config = config.with_information_schema(true);
    if memory_limited {
        // Strings read as `Utf8View` share the decoded pages' buffers, and every batch that
        // refers to a buffer counts all of it: after the hash repartition a batch of a thousand
        // rows counts megabytes, and spilling sorts fail for want of memory they do not use.
        // Plain `Utf8` is copied by the repartition and counted as it is.
        config
            .options_mut()
            .execution
            .parquet
            .schema_force_view_types = false;
    }
    // events/ may nest files in any folders, not only hive partitions.
    config
        .options_mut()
        .execution
        .listing_table_ignore_subdirectory = false;
    // Rows hash-partitioned by (account, user) need no new partitioning to be grouped by
    // (account, user, session): the sessions view then aggregates in one pass instead of a
    // partial and a final one, even with few partitions (DataFusion's default wants 4).
    config.options_mut().optimizer.subset_repartition_threshold = 1;
    config
}

/// DataFusion's logical optimizer rules less [`OPTIMIZER_RULES_LEFT_OUT`].
fn dwell_optimizer_rules() -> Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>> {
    Optimizer::new()
        .rules
        .into_iter()
        .filter(|rule| !OPTIMIZER_RULES_LEFT_OUT.contains(&rule.name()))
        .collect()
}
