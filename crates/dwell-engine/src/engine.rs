//! [`Engine`] and its builder: what one engine is made of, and how it is put together. What it
//! does lives with each concern: the catalog (`catalog.rs`), tenants (`tenant/`), ingest
//! (`ingest/`), generation (`generate.rs`).

use std::sync::{Arc, RwLock};

use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use tokio::sync::Mutex;

use crate::context::{self, ContextFactory, StateUpgrade};
use crate::deadline::StoreSettings;
use crate::error::{Error, Result};
use crate::location::DataLocation;
use crate::settings::Settings;
use crate::tenant::TenantContexts;

/// Builds an [`Engine`].
pub struct EngineBuilder {
    location: DataLocation,
    config: SessionConfig,
    settings: Option<Settings>,
    create: bool,
    memory_limit: Option<usize>,
    store_settings: StoreSettings,
    upgrade: Option<StateUpgrade>,
    session_upkeep: bool,
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

    /// Whether ingests keep the persisted sessions up to date (the default). Without, an ingest
    /// lands its events with a commit marker only: they are visible at once, and the session
    /// views sessionize at query time until `dwell rebuild` or the next ingest with upkeep
    /// covers them (for bulk loads, and to measure what upkeep costs).
    #[must_use]
    pub fn with_session_upkeep(mut self, upkeep: bool) -> Self {
        self.session_upkeep = upkeep;
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
                return Err(Error::NoLocation {
                    location: location.to_string(),
                });
            }
        }
        // Every call, the settings' read included, within its deadline.
        let (location, committed) = context::location_stores(&location, &self.store_settings);
        let fixed_settings = self.settings.is_some();
        let settings = match self.settings {
            Some(settings) => settings,
            None => Settings::read(&location).await?,
        };
        let upgraded = self.upgrade.is_some();
        let (contexts, config) = ContextFactory::new(self.config, self.memory_limit, self.upgrade)?;
        let ctx = contexts.context(config)?;
        ctx.register_object_store(location.store_url(), Arc::clone(&committed));
        let engine = Engine {
            ctx,
            contexts,
            raw_store: Arc::clone(location.store()),
            location: location.with_store(committed),
            settings: RwLock::new(settings),
            fixed_settings,
            ingest_lock: Mutex::new(()),
            tenants: TenantContexts::default(),
            // A cluster client lands without upkeep: the upkeep's local plans were seen to wait
            // forever in a process that runs Ballista (issue 17's closing note); its views then
            // sessionize on the cluster until a `dwell rebuild` in a plain process.
            session_upkeep: self.session_upkeep && !upgraded,
            seen: std::sync::Mutex::new(None),
        };
        engine.refresh().await?;
        Ok(engine)
    }
}

/// dwell over one data location: a DataFusion context with the tables and views registered,
/// and the ingest path into that location.
pub struct Engine {
    /// The context of callers who see every account; its schema is swapped on a refresh
    /// (`catalog.rs`).
    pub(crate) ctx: SessionContext,
    /// Makes every other context: tenants' (`tenant/`), a refresh's scratch one.
    pub(crate) contexts: ContextFactory,
    /// The location, read through the committed view of its store.
    pub(crate) location: DataLocation,
    /// The location's store under the committed view (deadlines only): what a commit's own
    /// view, with its pending ingests visible, is made over.
    pub(crate) raw_store: Arc<dyn object_store::ObjectStore>,
    pub(crate) settings: RwLock<Settings>,
    /// Settings given by the builder rather than read from `dwell.toml`.
    pub(crate) fixed_settings: bool,
    /// Ingests land one at a time, so each sees the schema the previous one left (`ingest/`).
    pub(crate) ingest_lock: Mutex<()>,
    /// Each account's context, rebuilt after a refresh.
    pub(crate) tenants: TenantContexts,
    /// Ingests keep the persisted sessions up to date (see `EngineBuilder::with_session_upkeep`).
    pub(crate) session_upkeep: bool,
    /// The location as the last refresh saw it (`catalog::Engine::follow_location`).
    pub(crate) seen: std::sync::Mutex<Option<u64>>,
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
            session_upkeep: true,
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

    /// Plans SQL over the tables and views (after catching up with files other processes
    /// placed or committed, see [`Engine::follow_location`]).
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        self.follow_location().await?;
        Ok(self.ctx.sql(sql).await?)
    }
}
