//! The engine's catalog: which tables and views it registers over the location, how they are
//! (re)built on a refresh and swapped in at once, and how a file that spoils a table's schema
//! is found and named.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow::array::AsArray as _;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::ObjectStoreExt as _;

use crate::error::{Error, Result};
use crate::events;
use crate::ingest::PARTITION_COLUMN;
use crate::persisted::{self, CHANGES_TABLE, RETRACTIONS_TABLE, ROWS_TABLE, manifest};
use crate::settings::Settings;
use crate::settings_tables::{app_settings_table, columns_table, settings_table};
use crate::views::{self, VIEWS};
use crate::what_if::register_sessions_with;
use crate::{Engine, panic_message};

/// The tables the engine registers (besides the views).
pub(crate) const ENGINE_TABLES: [&str; 8] = [
    "events",
    "users",
    "app_settings",
    "dwell_settings",
    "dwell_columns",
    ROWS_TABLE,
    RETRACTIONS_TABLE,
    CHANGES_TABLE,
];

/// (Re-)creates the views in `ctx` over the `events` table registered there: `sessions` reads
/// the persisted sessions when `ctx` has them ([`ROWS_TABLE`]), else sessionizes `events`.
pub(crate) async fn create_views(ctx: &SessionContext, settings: &Settings) -> Result<()> {
    let schema = ctx.table_provider("events").await?.schema();
    let persisted = ctx.table_exist(ROWS_TABLE)?;
    for (name, query) in views::view_queries(settings, &schema, persisted) {
        ctx.deregister_table(name)?;
        if persisted && name == "sessions" {
            // The live rows: those whose key no retraction carries (`RETRACTIONS_TABLE`,
            // read here: a small in-memory table, scoped like the rows for a tenant).
            let retracted = if ctx.table_exist(RETRACTIONS_TABLE)? {
                retracted_keys(ctx).await?
            } else {
                persisted::RetractedRows::default()
            };
            let live = persisted::upkeep::live_rows(ctx, ROWS_TABLE, retracted)
                .await?
                .select_columns(&persisted::upkeep::SESSION_COLUMNS)?;
            ctx.register_table(name, live.into_view())?;
            continue;
        }
        ctx.sql(&format!("CREATE VIEW {name} AS\n{query}"))
            .await
            .map_err(|e| Error::DataFusion(e.context(format!("creating view {name}"))))?;
    }
    if ctx.table_exist(CHANGES_TABLE)? {
        ctx.deregister_table(views::SESSION_CHANGES.name)?;
        ctx.sql(&format!(
            "CREATE VIEW {} AS\n{}",
            views::SESSION_CHANGES.name,
            views::session_changes_query(CHANGES_TABLE)
        ))
        .await
        .map_err(|e| Error::DataFusion(e.context("creating view session_changes")))?;
    }
    Ok(())
}

/// The `(row_version, row_index)` keys of `RETRACTIONS_TABLE` in `ctx`, read by running its
/// scan here (not through the context's planner, which on a cluster would send it away).
async fn retracted_keys(ctx: &SessionContext) -> Result<persisted::RetractedRows> {
    let table = ctx.table_provider(RETRACTIONS_TABLE).await?;
    let plan = table.scan(&ctx.state(), None, &[], None).await?;
    let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await?;
    let mut keys = Vec::new();
    for batch in &batches {
        let versions = arrow::compute::cast(batch.column(1), &DataType::Int64)?;
        let versions = versions.as_primitive::<arrow::datatypes::Int64Type>();
        let indices = arrow::compute::cast(batch.column(2), &DataType::Int64)?;
        let indices = indices.as_primitive::<arrow::datatypes::Int64Type>();
        keys.extend(
            versions
                .values()
                .iter()
                .copied()
                .zip(indices.values().iter().copied()),
        );
    }
    Ok(persisted::RetractedRows::from_keys(keys))
}

/// Whether `path` (relative to the location root) is a file of dwell's day layout,
/// `events/date=YYYY-MM-DD/<file>`.
pub(crate) fn is_day_file(path: &str) -> bool {
    path.strip_prefix("events/").is_some_and(is_day_relative)
}

/// The same, for a path relative to `events/`.
fn is_day_relative(path: &str) -> bool {
    path.split_once('/').is_some_and(|(dir, rest)| {
        !rest.contains('/')
            && dir
                .strip_prefix("date=")
                .is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
    })
}

impl Engine {
    /// Re-reads the location: settings, tables, then views. Called after every ingest; call
    /// it after other processes wrote new columns.
    pub async fn refresh(&self) -> Result<()> {
        // Taken first: a change made while this refresh reads is seen by the next query.
        let seen = self.location_fingerprint().await?;
        if !self.fixed_settings {
            let settings = Settings::read(&self.location).await?;
            *self
                .settings
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
        }
        let settings = self.settings();
        let files = self.listed_parquet(self.location.store(), "events").await?;
        let url = ListingTableUrl::parse(self.location.folder_url("events"))?;
        let events = self.events_provider(url, &files).await?;
        let mut tables = vec![("events", events)];
        // The persisted sessions, when they are those of these events under these settings.
        let latest = manifest::latest(self.location.store().as_ref(), self.location.root()).await?;
        let coverage = persisted::coverage(latest.as_ref(), &files, &settings);
        if let Some(why) = coverage.why_not_current() {
            if !files.is_empty() {
                log::warn!(
                    target: "dwell::sessions",
                    "{}: {why}; the session views sessionize the events at query time until \
                     `dwell rebuild` or the next ingest brings the persisted sessions up to date",
                    self.location
                );
            }
        } else if latest.as_ref().is_some_and(|m| !m.rows.is_empty()) {
            let url = ListingTableUrl::parse(self.location.folder_url(manifest::ROWS_DIR))?;
            tables.push((ROWS_TABLE, self.listing_over(url).await?));
            if latest.as_ref().is_some_and(|m| m.retractions > 0) {
                tables.push((RETRACTIONS_TABLE, self.retractions_table().await?));
            }
        }
        let changes: Arc<dyn TableProvider> =
            if latest.as_ref().is_some_and(|m| !m.changes.is_empty()) {
                let url = ListingTableUrl::parse(self.location.folder_url(manifest::CHANGES_DIR))?;
                self.listing_over(url).await?
            } else {
                let schema =
                    persisted::upkeep::storage_schema(&self.contexts, &self.ctx, &settings).await?;
                Arc::new(MemTable::try_new(schema, vec![vec![]])?)
            };
        tables.push((CHANGES_TABLE, changes));
        if !self.parquet_files("users").await?.is_empty() {
            tables.push(("users", self.listing_table("users", vec![]).await?));
        }
        tables.push(("app_settings", app_settings_table(&settings)?));
        tables.push(("dwell_settings", settings_table(&settings)?));
        tables.push(("dwell_columns", columns_table()?));
        self.swap_in(tables).await?;
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(seen);
        Ok(())
    }

    /// Catches up with the location when it changed since the last refresh: event files placed
    /// by other means, another process's commit, an edited `dwell.toml`. Then the session views
    /// never answer from persisted sessions that do not cover the events (they sessionize at
    /// query time instead, and say so). When the refresh fails (a damaged file), the error is
    /// logged and the views sessionize over the tables as they were, rather than answer stale.
    pub async fn follow_location(&self) -> Result<()> {
        let now = self.location_fingerprint().await?;
        let last = *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last == Some(now) {
            return Ok(());
        }
        if let Err(e) = self.refresh().await {
            log::warn!(
                target: "dwell::sessions",
                "{}: changed, but cannot be read afresh ({e}); the session views sessionize the \
                 events at query time",
                self.location
            );
            self.drop_persisted().await?;
            *self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
        }
        Ok(())
    }

    /// What the catalog depends on, as one number: the visible event files, the latest commit,
    /// the old commit markers, `dwell.toml`.
    async fn location_fingerprint(&self) -> Result<u64> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for (path, meta) in self.parquet_files("events").await? {
            (path, meta.size, meta.last_modified.timestamp_nanos_opt()).hash(&mut hasher);
        }
        let store = self.location.store();
        for folder in [manifest::MANIFESTS_DIR, crate::committed::MARKERS_DIR] {
            let mut names: Vec<String> = store
                .list(Some(&self.location.child(folder)))
                .map_ok(|meta| meta.location.to_string())
                .try_collect()
                .await?;
            names.sort();
            names.hash(&mut hasher);
        }
        match store
            .head(&self.location.child(crate::settings::SETTINGS_FILE))
            .await
        {
            Ok(meta) => (meta.size, meta.last_modified.timestamp_nanos_opt()).hash(&mut hasher),
            Err(object_store::Error::NotFound { .. }) => 0u8.hash(&mut hasher),
            Err(e) => return Err(e.into()),
        }
        Ok(hasher.finish())
    }

    /// The views made anew without the persisted sessions, over the tables as they are.
    async fn drop_persisted(&self) -> Result<()> {
        let mut tables = Vec::new();
        for name in ENGINE_TABLES {
            if name != ROWS_TABLE && self.ctx.table_exist(name)? {
                tables.push((name, self.ctx.table_provider(name).await?));
            }
        }
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
        let scratch = self.contexts.sibling_of(&self.ctx)?;
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
            .ok_or_else(|| {
                Error::Internal(format!(
                    "no schema {catalog_name}.{schema_name} to build into"
                ))
            })?;
        let catalog = self
            .ctx
            .catalog(&catalog_name)
            .ok_or_else(|| Error::Internal(format!("no catalog {catalog_name}")))?;
        catalog.register_schema(&schema_name, built)?;
        // Table functions live in the context's state, not its schema: registered over the
        // new `events` once that is in place.
        if scratch.table_exist("events")? {
            let events = scratch.table_provider("events").await?;
            register_sessions_with(&self.ctx, events, &self.settings());
        }
        self.tenants.invalidate();
        Ok(())
    }

    /// The visible Parquet files under a folder of the location, in name order, each with its
    /// path relative to `folder`.
    pub(crate) async fn parquet_files(
        &self,
        folder: &str,
    ) -> Result<Vec<(String, object_store::ObjectMeta)>> {
        self.parquet_files_in(self.location.store(), folder).await
    }

    /// The Parquet files under `folder` as `store` lists them, each with its path relative to
    /// the location root.
    pub(crate) async fn listed_parquet(
        &self,
        store: &Arc<dyn object_store::ObjectStore>,
        folder: &str,
    ) -> Result<Vec<(String, object_store::ObjectMeta)>> {
        Ok(self
            .parquet_files_in(store, folder)
            .await?
            .into_iter()
            .map(|(path, meta)| (format!("{folder}/{path}"), meta))
            .collect())
    }

    async fn parquet_files_in(
        &self,
        store: &Arc<dyn object_store::ObjectStore>,
        folder: &str,
    ) -> Result<Vec<(String, object_store::ObjectMeta)>> {
        let prefix = self.location.child(folder);
        let mut files: Vec<_> = store
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

    /// `events` over `files` (listed under `url`, paths relative to the root): the canonical
    /// schema (see [`events`]), every file read into it; with the `date` partition column when
    /// every file sits in a day folder; empty when there are no files.
    pub(crate) async fn events_provider(
        &self,
        url: ListingTableUrl,
        files: &[(String, object_store::ObjectMeta)],
    ) -> Result<Arc<dyn TableProvider>> {
        if files.is_empty() {
            return Ok(Arc::new(MemTable::try_new(
                Arc::new(events::events_schema(&self.string_type())),
                vec![vec![]],
            )?));
        }
        let partitions = if files.iter().all(|(path, _)| is_day_file(path)) {
            vec![(PARTITION_COLUMN.to_owned(), DataType::Date32)]
        } else {
            vec![]
        };
        self.events_table(
            url,
            files.iter().map(|(_, meta)| meta.clone()).collect(),
            partitions,
        )
        .await
    }

    /// `events`-shaped table over exactly these files (each its own URL), no partitions.
    pub(crate) async fn files_provider(
        &self,
        urls: Vec<ListingTableUrl>,
        files: &[object_store::ObjectMeta],
    ) -> Result<Arc<dyn TableProvider>> {
        let files = self.file_schemas(files.to_vec()).await?;
        let (schema, _) = events::table_schema(&files, &self.string_type())
            .map_err(|reason| self.location_error(reason))?;
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(self.listing_options(vec![]))
            .with_schema(Arc::new(schema));
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    /// The retractions the live session rows hold, `(account_id, row_version, row_index)`, in
    /// memory: read once per refresh in a context of its own.
    async fn retractions_table(&self) -> Result<Arc<dyn TableProvider>> {
        let ctx = self
            .contexts
            .isolated(&[(self.location.store_url(), Arc::clone(self.location.store()))])?;
        let url = ListingTableUrl::parse(self.location.folder_url(manifest::ROWS_DIR))?;
        ctx.register_table(ROWS_TABLE, self.listing_in(&ctx, url).await?)?;
        let keys = persisted::upkeep::retractions_of(&ctx, ROWS_TABLE).await?;
        let accounts: arrow::array::StringArray = keys.iter().map(|k| k.0.as_deref()).collect();
        let versions: arrow::array::Int64Array = keys.iter().map(|k| Some(k.1)).collect();
        let indices: arrow::array::Int64Array = keys.iter().map(|k| Some(k.2)).collect();
        let batch = arrow::array::RecordBatch::try_from_iter([
            ("account_id", Arc::new(accounts) as arrow::array::ArrayRef),
            ("row_version", Arc::new(versions) as arrow::array::ArrayRef),
            ("row_index", Arc::new(indices) as arrow::array::ArrayRef),
        ])?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }

    /// A listing table over a folder dwell wrote (one schema), inferred from its files.
    pub(crate) async fn listing_over(
        &self,
        url: ListingTableUrl,
    ) -> Result<Arc<dyn TableProvider>> {
        self.listing_in(&self.ctx, url).await
    }

    /// [`Engine::listing_over`], its files found through `ctx`'s stores.
    pub(crate) async fn listing_in(
        &self,
        ctx: &SessionContext,
        url: ListingTableUrl,
    ) -> Result<Arc<dyn TableProvider>> {
        let state = ctx.state();
        let options = self.listing_options(vec![]);
        let schema = options.infer_schema(&state, &url).await?;
        Self::listing_table_with_schema(url, options, schema)
    }

    async fn events_table(
        &self,
        url: ListingTableUrl,
        files: Vec<object_store::ObjectMeta>,
        partitions: Vec<(String, DataType)>,
    ) -> Result<Arc<dyn TableProvider>> {
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
}
