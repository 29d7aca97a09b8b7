//! dwell's engine: the one place that turns a data location into a DataFusion context with
//! dwell's tables, views, functions and settings, and the one ingest path. The CLI, the server
//! and the tests all go through [`Engine`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dwell_engine::Result<()> {
//! use dwell_engine::{DataLocation, Engine, GenerateOptions};
//!
//! // An in-memory location (a local path, file:// or s3://bucket/prefix work the same way).
//! let engine = Engine::builder(DataLocation::parse("memory://")?).build().await?;
//! engine
//!     .generate(&GenerateOptions { events: 2_000, users: 20, ..Default::default() }, &|_| {})
//!     .await?;
//! let sessions = engine.sql("SELECT * FROM sessions").await?.count().await?;
//! let events = engine.sql("SELECT * FROM sessionized_events").await?.count().await?;
//! assert!(sessions > 0 && sessions < events);
//! # Ok(())
//! # }
//! ```
//!
//! Layout of a data location: `events/` (Parquet, any nesting; `date=YYYY-MM-DD` directories
//! become a `date` partition column when every file sits in one), optional `users/` (Parquet),
//! optional `dwell.toml` ([`Settings`]), and `_dwell/` (ingest commit markers).

mod committed;
mod deadline;
mod error;
pub mod events;
mod file_errors;
pub mod generate;
pub mod ingest;
mod location;
mod settings;
mod tenant;
mod views;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::optimizer::Optimizer;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::RwLock;

use tokio::sync::Mutex;

pub use deadline::StoreSettings;
pub use error::{Error, Result};
pub use generate::GenerateOptions;
pub use ingest::{IngestId, IngestReport, SourceFormat};
pub use location::DataLocation;
pub use settings::{SETTINGS_FILE, SegmentThresholds, Settings};
pub use tenant::Scope;
pub use views::{TableDoc, VIEWS};

use committed::{COMMITS_DIR, CommittedStore};
use ingest::PARTITION_COLUMN;

/// Logical optimizer rules of DataFusion 55 that dwell leaves out.
///
/// `extract_leaf_expressions` and `push_down_leaf_projections` move struct field accesses
/// (`s['session_id']`) below joins and aggregates; on the session queries they rewrite a field
/// access onto the wrong column and planning fails with "Cannot access field at argument 1: type
/// Utf8View is not Struct, Map, or Null" (see `tests/slt/examples.slt`, `ids_first_run`). The
/// rules only narrow Parquet reads of nested columns, which dwell's event tables do not have.
pub const OPTIMIZER_RULES_LEFT_OUT: [&str; 2] =
    ["extract_leaf_expressions", "push_down_leaf_projections"];

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
    let (config, runtime) = engine_config_and_runtime(config, memory_limit)?;
    context_over(config, runtime, memory_limit.is_some(), None)
}

/// The session settings and runtime of an engine's context (see
/// [`session_context_with_memory_limit`]), before any object store is registered.
fn engine_config_and_runtime(
    config: SessionConfig,
    memory_limit: Option<usize>,
) -> datafusion::error::Result<(SessionConfig, Arc<RuntimeEnv>)> {
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
    let mut config = config.with_information_schema(true);
    if memory_limit.is_some() {
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
    Ok((config, runtime.build_arc()?))
}

/// Turns a context's state into one whose queries run elsewhere: `dwell-cluster` gives one
/// that hands plans to an Apache DataFusion Ballista scheduler. The engine applies it to every
/// context it builds (its own, the tenants', the scratch one of a refresh) and registers dwell's
/// functions again afterwards, since an upgrade may replace the function lists.
pub type StateUpgrade =
    Arc<dyn Fn(SessionState) -> datafusion::error::Result<SessionState> + Send + Sync>;

/// The state a process that plans or runs a distributed query (a Ballista scheduler or
/// executor) uses: dwell's functions and logical rules over `runtime`, with DataFusion's own
/// window operators for `sessionize`. `SessionizeRule` is left out because its operator has no
/// wire format: plans travel between processes as `datafusion-proto` messages, and the window
/// operators do.
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
            .build(),
    );
    dwell_session::register_all(&mut ctx)?;
    Ok(ctx.state())
}

/// The runtime a scheduler or an executor reads `location` through: the store stack an
/// [`Engine`] over it uses (each call within its deadline, uncommitted ingests hidden), no
/// list-files cache (ingests by other processes show in the next query). Its memory pool is
/// unbounded: a Ballista executor puts its own pool on it for each task.
pub fn location_runtime(
    location: &DataLocation,
    store_settings: &StoreSettings,
) -> Result<Arc<RuntimeEnv>> {
    let (_, runtime) = engine_config_and_runtime(SessionConfig::new(), None)?;
    let (_, committed) = location_stores(location, store_settings);
    runtime.register_object_store(location.store_url(), committed);
    Ok(runtime)
}

/// The location with every call bounded, and the store the tables read (uncommitted ingests
/// hidden) over it.
fn location_stores(
    location: &DataLocation,
    store_settings: &StoreSettings,
) -> (DataLocation, Arc<dyn ObjectStore>) {
    let bounded: Arc<dyn ObjectStore> = Arc::new(deadline::DeadlineStore::new(
        Arc::clone(location.store()),
        store_settings,
    ));
    let bounded = location.clone().with_store(bounded);
    let committed: Arc<dyn ObjectStore> = Arc::new(CommittedStore::new(
        Arc::clone(bounded.store()),
        bounded.child(COMMITS_DIR),
    ));
    (bounded, committed)
}

/// DataFusion's logical optimizer rules less [`OPTIMIZER_RULES_LEFT_OUT`].
fn dwell_optimizer_rules() -> Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>> {
    Optimizer::new()
        .rules
        .into_iter()
        .filter(|rule| !OPTIMIZER_RULES_LEFT_OUT.contains(&rule.name()))
        .collect()
}

/// A context with dwell's functions and rules over a runtime (memory pool, object stores) that
/// other contexts may share: the tenants' contexts share the engine's.
fn context_over(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    memory_limited: bool,
    upgrade: Option<&StateUpgrade>,
) -> datafusion::error::Result<SessionContext> {
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_optimizer_rules(dwell_optimizer_rules())
        // After DataFusion's own rules: sessionize without its window operators. With a memory
        // limit the sort stays DataFusion's, which spills; without, one operator sorts faster.
        .with_physical_optimizer_rule(Arc::new(if memory_limited {
            dwell_session::SessionizeRule::over_sorted_input()
        } else {
            dwell_session::SessionizeRule::sorting_in_memory()
        }))
        // Last: it wraps scans, which rules before it match.
        .with_physical_optimizer_rule(Arc::new(file_errors::NameFileErrors))
        .build();
    let state = match upgrade {
        Some(upgrade) => upgrade(state)?,
        None => state,
    };
    let mut ctx = SessionContext::new_with_state(state);
    dwell_session::register_all(&mut ctx)?;
    Ok(ctx)
}

/// The text of a panic's payload.
#[must_use]
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The tables the engine registers (besides the views).
const ENGINE_TABLES: [&str; 5] = [
    "events",
    "users",
    "app_settings",
    "dwell_settings",
    "dwell_columns",
];

/// Most accounts' contexts kept at once.
const MAX_CACHED_TENANTS: usize = 1_000;

/// (Re-)creates the views in `ctx` over the `events` table registered there.
///
/// # Panics
///
/// Never: the view statements are the engine's own.
async fn create_views(ctx: &SessionContext, settings: &Settings) -> Result<()> {
    let schema = ctx.table_provider("events").await?.schema();
    for statement in views::view_statements(settings, &schema) {
        let name = statement
            .split_whitespace()
            .nth(2)
            .expect("CREATE VIEW name")
            .to_owned();
        ctx.deregister_table(name.as_str())?;
        ctx.sql(&statement)
            .await
            .map_err(|e| Error::DataFusion(e.context(format!("creating view {name}"))))?;
    }
    Ok(())
}

/// Events per generated chunk: each chunk is one ingest, so memory stays bounded.
const GENERATE_CHUNK_EVENTS: u64 = 1_000_000;

/// Builds an [`Engine`].
pub struct EngineBuilder {
    location: DataLocation,
    config: SessionConfig,
    settings: Option<Settings>,
    create: bool,
    memory_limit: Option<usize>,
    store_settings: StoreSettings,
    upgrade: Option<StateUpgrade>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("location", &self.location)
            .field("settings", &self.settings)
            .field("memory_limit", &self.memory_limit)
            .field("upgraded", &self.upgrade.is_some())
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// Runs queries elsewhere (see [`StateUpgrade`]): `dwell-cluster` passes one that sends
    /// them to a Ballista scheduler. Tables, views and settings stay the engine's.
    #[must_use]
    pub fn with_state_upgrade(mut self, upgrade: StateUpgrade) -> Self {
        self.upgrade = Some(upgrade);
        self
    }

    /// Bounds every object store call (see [`StoreSettings`]; S3's own request timeout and
    /// retries are set when the location is parsed, [`DataLocation::parse_with`]).
    #[must_use]
    pub fn with_store_settings(mut self, settings: StoreSettings) -> Self {
        self.store_settings = settings;
        self
    }

    /// DataFusion settings (partitions, batch size, ...).
    #[must_use]
    pub fn with_config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// Settings to use instead of the location's `dwell.toml`.
    #[must_use]
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Limits the memory a query's operators may hold (see
    /// [`session_context_with_memory_limit`]); `None`, the default, is no limit.
    #[must_use]
    pub fn with_memory_limit(mut self, bytes: Option<usize>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Create a missing local folder (for commands that write) instead of failing.
    #[must_use]
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Opens the location, reads its settings and registers tables and views.
    pub async fn build(self) -> Result<Engine> {
        let location = self.location;
        if let Some(folder) = location.local_folder()
            && !folder.is_dir()
        {
            if self.create {
                std::fs::create_dir_all(&folder).map_err(|e| Error::Location {
                    location: location.to_string(),
                    reason: format!("cannot create it: {e}"),
                })?;
            } else {
                return Err(Error::Location {
                    location: location.to_string(),
                    reason: "does not exist (create it with `dwell ingest` or `dwell generate`)"
                        .into(),
                });
            }
        }
        // Every call, the settings' read included, within its deadline.
        let (location, committed) = location_stores(&location, &self.store_settings);
        let fixed_settings = self.settings.is_some();
        let settings = match self.settings {
            Some(settings) => settings,
            None => read_settings(&location).await?,
        };
        let (config, runtime) = engine_config_and_runtime(self.config, self.memory_limit)?;
        let ctx = context_over(
            config,
            runtime,
            self.memory_limit.is_some(),
            self.upgrade.as_ref(),
        )?;
        ctx.register_object_store(location.store_url(), Arc::clone(&committed));
        let engine = Engine {
            ctx,
            location: location.with_store(committed),
            settings: RwLock::new(settings),
            fixed_settings,
            memory_limited: self.memory_limit.is_some(),
            upgrade: self.upgrade,
            ingest_lock: Mutex::new(()),
            generation: AtomicU64::new(0),
            tenants: std::sync::Mutex::new(HashMap::new()),
        };
        engine.refresh().await?;
        Ok(engine)
    }
}

async fn read_settings(location: &DataLocation) -> Result<Settings> {
    let file = format!(
        "{}/{SETTINGS_FILE}",
        location.to_string().trim_end_matches('/')
    );
    match location.store().get(&location.child(SETTINGS_FILE)).await {
        Ok(found) => {
            let bytes = found.bytes().await?;
            let text = std::str::from_utf8(&bytes).map_err(|e| Error::Setting {
                file: file.clone(),
                key: "(file)".into(),
                reason: format!("not UTF-8 text: {e}"),
            })?;
            Settings::parse(text, &file)
        }
        Err(object_store::Error::NotFound { .. }) => Ok(Settings::default()),
        Err(e) => Err(e.into()),
    }
}

/// dwell over one data location: a DataFusion context with the tables and views registered,
/// and the ingest path into that location.
pub struct Engine {
    ctx: SessionContext,
    location: DataLocation,
    settings: RwLock<Settings>,
    /// Settings given by the builder rather than read from `dwell.toml`.
    fixed_settings: bool,
    memory_limited: bool,
    upgrade: Option<StateUpgrade>,
    /// Ingests land one at a time, so each sees the schema the previous one left.
    ingest_lock: Mutex<()>,
    /// Counts re-registrations of the tables and views; a tenant's context from an older
    /// generation is built again.
    generation: AtomicU64,
    /// Each account's context, with the generation it was built at.
    tenants: std::sync::Mutex<HashMap<String, (u64, SessionContext)>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("location", &self.location)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts building an engine over `location`.
    #[must_use]
    pub fn builder(location: DataLocation) -> EngineBuilder {
        EngineBuilder {
            location,
            config: SessionConfig::new(),
            settings: None,
            create: false,
            memory_limit: None,
            store_settings: StoreSettings::default(),
            upgrade: None,
        }
    }

    /// The DataFusion context, for anything the engine does not wrap.
    #[must_use]
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> Settings {
        // A writer that panicked left whole settings behind; they are still the latest.
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The data location.
    #[must_use]
    pub fn location(&self) -> &DataLocation {
        &self.location
    }

    /// Plans SQL over the tables and views.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        Ok(self.ctx.sql(sql).await?)
    }

    /// The visible Parquet files under a folder of the location, in name order, each with its
    /// path relative to `folder`.
    async fn parquet_files(&self, folder: &str) -> Result<Vec<(String, object_store::ObjectMeta)>> {
        let prefix = self.location.child(folder);
        let mut files: Vec<_> = self
            .location
            .store()
            .list(Some(&prefix))
            .try_filter_map(|meta| {
                let relative = meta.location.prefix_match(&prefix).map(|parts| {
                    parts
                        .map(|p| p.as_ref().to_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                });
                std::future::ready(Ok(relative
                    .filter(|r| {
                        std::path::Path::new(r)
                            .extension()
                            // Exactly what the listing table reads (its extension match is exact).
                            .is_some_and(|e| e == "parquet")
                    })
                    .map(|r| (r, meta))))
            })
            .try_collect()
            .await?;
        files.sort_by(|a, b| a.1.location.cmp(&b.1.location));
        Ok(files)
    }

    /// The listing table over a folder of the location, with the schema its files agree on.
    async fn listing_table(
        &self,
        folder: &str,
        partitions: Vec<(String, DataType)>,
    ) -> Result<Arc<dyn TableProvider>> {
        let url = ListingTableUrl::parse(self.location.folder_url(folder))?;
        let state = self.ctx.state();
        let options = self.listing_options(partitions);
        let inferred = AssertUnwindSafe(options.infer_schema(&state, &url))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(datafusion::error::DataFusionError::Execution(format!(
                    "the Parquet reader failed on a damaged file: {}",
                    panic_message(panic.as_ref())
                )))
            });
        let schema = match inferred {
            Ok(schema) => schema,
            Err(e) => {
                // DataFusion's error does not say which file; find it, one file at a time.
                let listed = self.parquet_files(folder).await?;
                let files = self
                    .file_schemas(listed.into_iter().map(|(_, meta)| meta).collect())
                    .await?;
                let mut merged: Option<(Schema, &str)> = None;
                for (name, schema) in &files {
                    merged = match merged {
                        None => Some((schema.as_ref().clone(), name)),
                        Some((so_far, first)) => {
                            match Schema::try_merge([so_far, schema.as_ref().clone()]) {
                                Ok(both) => Some((both, first)),
                                Err(e) => {
                                    return Err(self.location_error(format!(
                                        "{name}: its columns do not agree with {first} and \
                                         the files after it: {e}"
                                    )));
                                }
                            }
                        }
                    };
                }
                return Err(Error::DataFusion(e.context(format!(
                    "reading the schema of {}/{folder}",
                    self.location
                ))));
            }
        };
        Self::listing_table_with_schema(url, options, schema)
    }

    /// `events`: the canonical schema (see [`events`]), every file read into it.
    async fn events_table(
        &self,
        files: Vec<object_store::ObjectMeta>,
        partitions: Vec<(String, DataType)>,
    ) -> Result<Arc<dyn TableProvider>> {
        let url = ListingTableUrl::parse(self.location.folder_url("events"))?;
        let files = self.file_schemas(files).await?;
        let (schema, left_out) = events::table_schema(&files, &self.string_type())
            .map_err(|reason| self.location_error(reason))?;
        if !left_out.is_empty() {
            // Not an error (the engine's columns are all there), but not silent either.
            log::warn!(
                target: "dwell::events",
                "{}/events: column(s) {} left out of `events`: their files give them \
                 different types",
                self.location,
                left_out.join(", ")
            );
        }
        Self::listing_table_with_schema(url, self.listing_options(partitions), Arc::new(schema))
    }

    fn listing_table_with_schema(
        url: ListingTableUrl,
        options: ListingOptions,
        schema: SchemaRef,
    ) -> Result<Arc<dyn TableProvider>> {
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    /// Parquet with the session's options (view types or not, see
    /// `session_context_with_memory_limit`).
    fn parquet_format(&self) -> ParquetFormat {
        ParquetFormat::default().with_options(self.ctx.state().default_table_options().parquet)
    }

    fn listing_options(&self, partitions: Vec<(String, DataType)>) -> ListingOptions {
        ListingOptions::new(Arc::new(self.parquet_format()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partitions)
    }

    /// The string type the session reads Parquet text as.
    fn string_type(&self) -> DataType {
        if self
            .ctx
            .state()
            .config_options()
            .execution
            .parquet
            .schema_force_view_types
        {
            DataType::Utf8View
        } else {
            DataType::Utf8
        }
    }

    fn location_error(&self, reason: String) -> Error {
        Error::Location {
            location: self.location.to_string(),
            reason,
        }
    }

    /// Each of `files` with its schema as DataFusion's reader sees it. A file that cannot be
    /// read is an error that names it.
    async fn file_schemas(
        &self,
        files: Vec<object_store::ObjectMeta>,
    ) -> Result<Vec<(String, SchemaRef)>> {
        use datafusion::datasource::file_format::FileFormat as _;
        // Footers are read a few at a time, as DataFusion's own inference does.
        const AT_ONCE: usize = 16;
        let state = self.ctx.state();
        let store = self.location.store();
        let format = self.parquet_format();
        futures::stream::iter(files)
            .map(|meta| {
                let (state, format) = (&state, &format);
                async move {
                    let name = meta.location.to_string();
                    // A damaged footer can make the Parquet reader panic (arithmetic on absurd
                    // lengths); that is this location's error, not the process's end.
                    let read = AssertUnwindSafe(format.infer_schema(state, store, &[meta]))
                        .catch_unwind()
                        .await;
                    match read {
                        Ok(Ok(schema)) => Ok((name, schema)),
                        Ok(Err(e)) => {
                            Err(self.location_error(format!("{name}: {}", e.strip_backtrace())))
                        }
                        Err(panic) => Err(self.location_error(format!(
                            "{name}: the Parquet reader failed on it: {}",
                            panic_message(panic.as_ref())
                        ))),
                    }
                }
            })
            .buffered(AT_ONCE)
            .try_collect()
            .await
    }

    /// Re-reads the location: settings, tables, then views. Called after every ingest; call
    /// it after other processes wrote new columns.
    ///
    /// # Panics
    ///
    /// Never: the view statements are the engine's own.
    pub async fn refresh(&self) -> Result<()> {
        if !self.fixed_settings {
            let settings = read_settings(&self.location).await?;
            *self
                .settings
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
        }
        let settings = self.settings();
        let files = self.parquet_files("events").await?;
        let events: Arc<dyn TableProvider> = if files.is_empty() {
            Arc::new(MemTable::try_new(
                Arc::new(events::events_schema(&self.string_type())),
                vec![vec![]],
            )?)
        } else {
            let hive = files.iter().all(|(f, _)| {
                f.split_once('/').is_some_and(|(dir, rest)| {
                    !rest.contains('/')
                        && dir.strip_prefix("date=").is_some_and(|d| {
                            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()
                        })
                })
            });
            let partitions = if hive {
                vec![(PARTITION_COLUMN.to_owned(), DataType::Date32)]
            } else {
                vec![]
            };
            self.events_table(
                files.into_iter().map(|(_, meta)| meta).collect(),
                partitions,
            )
            .await?
        };
        let mut tables = vec![("events", events)];
        if !self.parquet_files("users").await?.is_empty() {
            tables.push(("users", self.listing_table("users", vec![]).await?));
        }
        tables.push(("app_settings", app_settings_table(&settings)?));
        tables.push(("dwell_settings", settings_table(&settings)?));
        tables.push(("dwell_columns", columns_table()?));
        self.swap_in(tables).await
    }

    /// Re-creates the views over the `events` table now registered (after a test or an embedding
    /// program replaced `events` by other means).
    pub async fn refresh_views(&self) -> Result<()> {
        self.swap_in(vec![]).await
    }

    /// Puts `tables` and views over them in place of the engine's tables and views, all at
    /// once: they are built in a context of their own, whose schema then replaces the engine's
    /// default schema in one step. A query planned meanwhile sees the old tables or the new,
    /// never a missing one. Tables others registered in the default schema are carried over.
    async fn swap_in(&self, tables: Vec<(&str, Arc<dyn TableProvider>)>) -> Result<()> {
        let scratch = context_over(
            self.ctx.copied_config(),
            self.ctx.runtime_env(),
            self.memory_limited,
            self.upgrade.as_ref(),
        )?;
        let (catalog_name, schema_name) = {
            let config = self.ctx.copied_config();
            let options = config.options();
            (
                options.catalog.default_catalog.clone(),
                options.catalog.default_schema.clone(),
            )
        };
        let current = self
            .ctx
            .catalog(&catalog_name)
            .and_then(|catalog| catalog.schema(&schema_name));
        let managed: Vec<&str> = ENGINE_TABLES
            .iter()
            .copied()
            .chain(VIEWS.iter().map(|v| v.name))
            .collect();
        if let Some(current) = &current {
            for name in current.table_names() {
                // Kept: tables others registered, and the engine's own tables when only the
                // views are made anew.
                let replaced = tables.iter().any(|(n, _)| *n == name)
                    || (managed.contains(&name.as_str())
                        && (!tables.is_empty() || VIEWS.iter().any(|v| v.name == name)));
                if !replaced && let Some(table) = current.table(&name).await? {
                    scratch.register_table(name.as_str(), table)?;
                }
            }
        }
        for (name, table) in tables {
            scratch.register_table(name, table)?;
        }
        if scratch.table_exist("events")? {
            create_views(&scratch, &self.settings()).await?;
        }
        let built = scratch
            .catalog(&catalog_name)
            .and_then(|catalog| catalog.schema(&schema_name))
            .ok_or_else(|| Error::Location {
                location: self.location.to_string(),
                reason: format!("no schema {catalog_name}.{schema_name} to build into"),
            })?;
        let catalog = self
            .ctx
            .catalog(&catalog_name)
            .ok_or_else(|| Error::Location {
                location: self.location.to_string(),
                reason: format!("no catalog {catalog_name}"),
            })?;
        catalog.register_schema(&schema_name, built)?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The context a caller of `scope` queries: the engine's own for [`Scope::All`]; for an
    /// account, one where `events` and `users` hold only that account's rows (filtered at the
    /// scan, whatever the SQL), with the same settings tables and the views built over those.
    /// A table without an `account_id` column is left out of an account's context.
    pub async fn context_for(&self, scope: &Scope) -> Result<SessionContext> {
        let Scope::Account(account) = scope else {
            return Ok(self.ctx.clone());
        };
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some((built, ctx)) = self.tenant_contexts().get(account)
            && *built == generation
        {
            return Ok(ctx.clone());
        }
        let ctx = context_over(
            self.ctx.copied_config(),
            self.ctx.runtime_env(),
            self.memory_limited,
            self.upgrade.as_ref(),
        )?;
        for name in [
            "events",
            "users",
            "app_settings",
            "dwell_settings",
            "dwell_columns",
        ] {
            if !self.ctx.table_exist(name)? {
                continue;
            }
            let table = self.ctx.table_provider(name).await?;
            let table: Arc<dyn TableProvider> = if matches!(name, "events" | "users") {
                match tenant::AccountScoped::new(table, account) {
                    Some(scoped) => Arc::new(scoped),
                    None => continue,
                }
            } else {
                table
            };
            ctx.register_table(name, table)?;
        }
        if ctx.table_exist("events")? {
            create_views(&ctx, &self.settings()).await?;
        }
        let mut tenants = self.tenant_contexts();
        // Accounts come and go with the callers; a bound keeps the cache from growing without
        // end (a context is rebuilt in milliseconds).
        if tenants.len() >= MAX_CACHED_TENANTS {
            tenants.clear();
        }
        tenants.insert(account.clone(), (generation, ctx.clone()));
        Ok(ctx)
    }

    fn tenant_contexts(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, SessionContext)>> {
        // A panic while the map was held left whole entries behind.
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn app_settings_table(settings: &Settings) -> Result<Arc<dyn TableProvider>> {
    let apps: Vec<&str> = settings.app_timeouts.keys().map(String::as_str).collect();
    let timeouts: Vec<f64> = settings
        .app_timeouts
        .values()
        .map(std::time::Duration::as_secs_f64)
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("app_id", DataType::Utf8, false),
        Field::new("timeout_seconds", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(apps)),
        Arc::new(Float64Array::from(timeouts)),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn settings_table(settings: &Settings) -> Result<Arc<dyn TableProvider>> {
    let text = settings.to_toml();
    let mut keys = Vec::new();
    let mut values = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, value)) = line.split_once(" = ") {
            keys.push(format!("{section}{key}"));
            values.push(value.trim_matches('"').to_owned());
        }
    }
    string_table(&["key", "value"], vec![keys, values])
}

impl Engine {
    /// Ingests one file (Parquet, CSV or JSON lines, by extension): validated whole, landed
    /// atomically, and never twice (the same bytes land once).
    pub async fn ingest_file(&self, path: &std::path::Path) -> Result<IngestReport> {
        let name = path.display().to_string();
        let format = SourceFormat::of(&name).ok_or_else(|| {
            Error::ingest(
                &name,
                None,
                "unknown format: name the file .parquet, .csv or .jsonl/.json",
            )
        })?;
        let bytes = Bytes::from(
            tokio::fs::read(path)
                .await
                .map_err(|e| Error::ingest(&name, None, format!("cannot read it: {e}")))?,
        );
        let id = IngestId::of_bytes(&bytes);
        let _guard = self.ingest_lock.lock().await;
        if ingest::is_committed(&self.location, &id).await? {
            return Ok(already_landed(&name, &id));
        }
        let source = name.clone();
        let (schema, batches) =
            tokio::task::spawn_blocking(move || ingest::read_source(&source, format, bytes))
                .await
                .map_err(|e| Error::ingest(&name, None, format!("reader failed: {e}")))??;
        self.land(&name, &id, &schema, &batches, true).await
    }

    /// Ingests batches from another source (the server, the generator) under the given id.
    pub async fn ingest_batches(
        &self,
        source: &str,
        id: &IngestId,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<IngestReport> {
        self.ingest_batches_then(source, id, schema, batches, true)
            .await
    }

    /// Ingests batches on behalf of a caller of `scope`: an account's caller lands events of
    /// its account only (see `tenant::confine_ingest`). The ingest id is the hash of the
    /// batches as landed, so a retry lands nothing new and two accounts' identical uploads stay
    /// two ingests.
    pub async fn ingest_batches_for(
        &self,
        scope: &Scope,
        source: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<IngestReport> {
        let (schema, batches) = match scope {
            Scope::All => (Arc::clone(schema), batches.to_vec()),
            Scope::Account(account) => tenant::confine_ingest(source, account, schema, batches)?,
        };
        let id = IngestId::of_batches(&batches)?;
        self.ingest_batches(source, &id, &schema, &batches).await
    }

    async fn ingest_batches_then(
        &self,
        source: &str,
        id: &IngestId,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        refresh: bool,
    ) -> Result<IngestReport> {
        let _guard = self.ingest_lock.lock().await;
        if ingest::is_committed(&self.location, id).await? {
            return Ok(already_landed(source, id));
        }
        self.land(source, id, schema, batches, refresh).await
    }

    /// Validates, lands and (unless told not to, for a run of ingests) refreshes; the caller
    /// holds the ingest lock.
    async fn land(
        &self,
        source: &str,
        id: &IngestId,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        refresh: bool,
    ) -> Result<IngestReport> {
        let landed = if self.parquet_files("events").await?.is_empty() {
            None
        } else {
            Some(self.ctx.table_provider("events").await?.schema())
        };
        // Checking, sorting and encoding are CPU work: off the async threads.
        let (source_owned, id_owned, schema, batches) = (
            source.to_owned(),
            id.clone(),
            Arc::clone(schema),
            batches.to_vec(),
        );
        let (rows, encoded) = tokio::task::spawn_blocking(move || {
            let batch = ingest::normalize(&source_owned, &schema, &batches, landed.as_deref())?;
            Ok::<_, Error>((batch.num_rows(), ingest::encode(&id_owned, &batch)?))
        })
        .await
        .map_err(|e| Error::ingest(source, None, format!("ingest failed: {e}")))??;
        let report = ingest::land(&self.location, source, id, rows, encoded).await?;
        if refresh {
            self.refresh().await?;
        }
        Ok(report)
    }

    /// Generates synthetic events into the location (see [`generate`]): `users/users.parquet`,
    /// a `dwell.toml` with the applications' timeouts when there is none, and the events through
    /// the ingest path in chunks. `progress` hears the number of events landed so far.
    pub async fn generate(
        &self,
        options: &GenerateOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<IngestReport>> {
        let users = generate::users(options);
        if users.is_empty() && options.events > 0 {
            return Err(Error::ingest(
                "generate",
                None,
                "--users must be at least 1",
            ));
        }
        let users_file = generate::users_batch(options, &users);
        let mut bytes = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut bytes, users_file.schema(), None)?;
        writer.write(&users_file)?;
        writer.close()?;
        self.location
            .store()
            .put(
                &self.location.child("users/users.parquet"),
                PutPayload::from(bytes),
            )
            .await?;
        let settings_path = self.location.child(SETTINGS_FILE);
        if matches!(
            self.location.store().head(&settings_path).await,
            Err(object_store::Error::NotFound { .. })
        ) {
            let mut settings = self.settings();
            for (app, timeout) in generate::APPS {
                if let Some(timeout) = timeout {
                    settings.app_timeouts.insert(app.to_owned(), timeout);
                }
            }
            self.location
                .store()
                .put(
                    &settings_path,
                    PutPayload::from(settings.to_toml().into_bytes()),
                )
                .await?;
        }

        let budgets = generate::budgets(&users, options.events);
        let schema = generate::event_schema();
        // Chunks of whole users, about GENERATE_CHUNK_EVENTS events each.
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < users.len() {
            let mut end = start;
            let mut events = 0;
            while end < users.len() && (events < GENERATE_CHUNK_EVENTS || end == start) {
                events += budgets[end];
                end += 1;
            }
            chunks.push((start..end, events));
            start = end;
        }
        let spawn = |range: std::ops::Range<usize>| {
            let (options, users, budgets) = (
                options.clone(),
                users[range.clone()].to_vec(),
                budgets[range].to_vec(),
            );
            tokio::task::spawn_blocking(move || {
                let mut columns = generate::EventColumns::new();
                for (user, budget) in users.iter().zip(&budgets) {
                    generate::user_events(&options, user, *budget, &mut columns);
                }
                columns.finish()
            })
        };
        let mut reports = Vec::new();
        let mut done = 0;
        // The next chunk is generated while the current one lands: two cores busy.
        let mut next = chunks.first().map(|(range, _)| spawn(range.clone()));
        for (chunk, (_, events)) in chunks.iter().enumerate() {
            let Some(generating) = next.take() else {
                break;
            };
            let batch = generating
                .await
                .map_err(|e| Error::ingest("generate", None, format!("generator failed: {e}")))?;
            next = chunks.get(chunk + 1).map(|(range, _)| spawn(range.clone()));
            let id = IngestId::of_bytes(
                format!(
                    "generate/{}/{}/{}/{}/{}/{chunk}",
                    options.seed, options.events, options.users, options.days, options.start
                )
                .as_bytes(),
            );
            let source = format!("generate chunk {chunk}");
            // One refresh at the end rather than one per chunk.
            let report = self
                .ingest_batches_then(&source, &id, &schema, std::slice::from_ref(&batch), false)
                .await?;
            done += events;
            progress(done);
            reports.push(report);
        }
        self.refresh().await?;
        Ok(reports)
    }
}

fn already_landed(source: &str, id: &IngestId) -> IngestReport {
    IngestReport {
        source: source.to_owned(),
        ingest_id: id.as_str().to_owned(),
        rows: 0,
        files: vec![],
        already_landed: true,
    }
}

fn string_table(names: &[&str], columns: Vec<Vec<String>>) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// `dwell_columns`: what each column of each view means.
fn columns_table() -> Result<Arc<dyn TableProvider>> {
    let mut tables = Vec::new();
    let mut columns = Vec::new();
    let mut descriptions = Vec::new();
    for doc in &VIEWS {
        for (column, description) in doc.columns {
            tables.push(doc.name.to_owned());
            columns.push((*column).to_owned());
            descriptions.push((*description).to_owned());
        }
    }
    string_table(
        &["table_name", "column_name", "description"],
        vec![tables, columns, descriptions],
    )
}
