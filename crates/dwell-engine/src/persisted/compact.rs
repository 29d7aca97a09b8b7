//! Compaction: many small ingests make many small files, and every query lists and opens them
//! all. `dwell compact` (and an ingest, every [`COMPACT_EVERY`] commits) merges them in one
//! commit: each day's landed event files into one file, the live session rows into one base,
//! the change log into one file. The answers do not change: the merged files hold the same
//! rows, and the manifest that swaps them in is one put, as every commit is. Files no manifest
//! has named for [`GRACE`] (replaced ones, and those of commits that lost a race) are deleted
//! then; a query that listed them before stays able to read them that long.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::listing::ListingTableUrl;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::Engine;
use crate::committed::ingest_id_of;
use crate::error::{Error, Result};
use crate::ingest::IngestId;

use super::manifest::{self, CHANGES_DIR, Manifest, ROWS_DIR};
use super::upkeep::{conform, live_rows, retracted_in, storage_schema};
use super::{ROWS_TABLE, coverage};

/// An ingest compacts after this many commits since the last compaction.
pub(crate) const COMPACT_EVERY: u64 = 64;

/// How long a file no manifest names any more is kept for queries that listed it before.
pub(crate) const GRACE: Duration = Duration::from_mins(10);

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactReport {
    /// The commit id, `None` when there was nothing to merge.
    pub commit: Option<u64>,
    /// Event files merged, and the files they became.
    pub event_files_merged: usize,
    pub event_files_written: usize,
    /// Session row files and change log files merged.
    pub session_files_merged: usize,
    pub change_files_merged: usize,
    /// Files deleted (no manifest had named them for the grace period).
    pub files_deleted: usize,
}

impl Engine {
    /// Merges small event and session files (see [`crate::persisted`]); deletes files no
    /// manifest has named for `grace`.
    pub async fn compact(&self, grace: Duration) -> Result<CompactReport> {
        let _guard = self.ingest_lock.lock().await;
        let report = self.compact_locked(grace).await?;
        self.refresh().await?;
        Ok(report)
    }

    /// [`Engine::compact`] with the ingest lock held.
    pub(crate) async fn compact_locked(&self, grace: Duration) -> Result<CompactReport> {
        let store = self.location.store();
        let root = self.location.root().clone();
        loop {
            let Some(latest) = manifest::latest(store.as_ref(), &root).await? else {
                return Ok(CompactReport {
                    commit: None,
                    event_files_merged: 0,
                    event_files_written: 0,
                    session_files_merged: 0,
                    change_files_merged: 0,
                    files_deleted: 0,
                });
            };
            let files = self.listed_parquet(store, "events").await?;
            let settings = self.settings();
            let current = matches!(
                coverage(Some(&latest), &files, &settings),
                super::Coverage::Current
            );
            let seq = latest.seq + 1;
            let mut next = Manifest {
                seq,
                time_ns: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX),
                summary: "compact".into(),
                since_compaction: 0,
                ..latest.clone()
            };
            let mut written = Vec::new();
            let mut report = CompactReport {
                commit: Some(seq),
                event_files_merged: 0,
                event_files_written: 0,
                session_files_merged: 0,
                change_files_merged: 0,
                files_deleted: 0,
            };

            self.merge_days(&latest, &files, &mut next, &mut written, &mut report)
                .await?;

            // The live session rows as one base, the change log as one file.
            let nonce = format!(
                "{:016x}",
                xxhash_rust::xxh3::xxh3_64(format!("{seq}/{}", next.time_ns).as_bytes())
            );
            if current && latest.rows.len() > 1 {
                let base = self.live_base(&settings).await?;
                let path = format!("{ROWS_DIR}/base-{seq:020}-{nonce}.parquet");
                self.put_rows(&root, &path, &base).await?;
                written.push(path.clone());
                report.session_files_merged = latest.rows.len();
                next.rows = vec![path];
                next.retractions = 0;
            }
            if latest.changes.len() > 1 {
                let ctx = self.local_context()?;
                let url = ListingTableUrl::parse(self.location.folder_url(CHANGES_DIR))?;
                ctx.register_table("changes", self.listing_in(&ctx, url).await?)?;
                let frame = ctx.sql("SELECT * FROM changes ORDER BY commit_seq").await?;
                let schema = Arc::new(plain_strings(frame.schema().as_arrow()));
                let rows = frame.collect().await?;
                let rows = rows
                    .iter()
                    .map(|b| conform(b, &schema))
                    .collect::<Result<Vec<_>>>()?;
                let all = concat_batches(&schema, &rows)?;
                let path = format!("{CHANGES_DIR}/{seq:020}-{nonce}-compacted.parquet");
                self.put_rows(&root, &path, &all).await?;
                written.push(path.clone());
                report.change_files_merged = latest.changes.len();
                next.changes = vec![path];
            }
            let merged = report.event_files_merged
                + report.session_files_merged
                + report.change_files_merged;
            if merged == 0 {
                report.commit = None;
                report.files_deleted = self.collect_garbage(&latest, grace).await?;
                return Ok(report);
            }
            if manifest::put_new(store.as_ref(), &root, &next).await? {
                report.files_deleted = self.collect_garbage(&next, grace).await?;
                return Ok(report);
            }
            for path in written {
                let _ = store.delete(&self.location.child(&path)).await;
            }
        }
    }

    /// Merges each day's committed landed files into one, adding the merged files to `next`.
    async fn merge_days(
        &self,
        latest: &Manifest,
        files: &[(String, object_store::ObjectMeta)],
        next: &mut Manifest,
        written: &mut Vec<String>,
        report: &mut CompactReport,
    ) -> Result<()> {
        let store = self.location.store();
        // Each day's committed landed files, merged.
        let mut days: BTreeMap<String, Vec<(String, object_store::ObjectMeta)>> = BTreeMap::new();
        for (path, meta) in files {
            if let (Some(id), Some((dir, _))) =
                (ingest_id_of(&meta.location), path.rsplit_once('/'))
                && latest.ingests.contains(id)
                && crate::catalog::is_day_file(path)
            {
                days.entry(dir.to_owned())
                    .or_default()
                    .push((path.clone(), meta.clone()));
            }
        }
        for (day, group) in days.into_iter().filter(|(_, g)| g.len() > 1) {
            let Some(batch) = self.read_files(&group).await? else {
                log::warn!(
                    target: "dwell::compact",
                    "{day}: its files do not agree on their columns' types; left as they are"
                );
                continue;
            };
            let names: Vec<&str> = group.iter().map(|(p, _)| p.as_str()).collect();
            let id = IngestId::of_bytes(format!("compact/{}", names.join("/")).as_bytes());
            let encoded = tokio::task::spawn_blocking({
                let id = id.clone();
                move || crate::ingest::encode_day_files(&id, &batch)
            })
            .await
            .map_err(|e| Error::Internal(format!("compaction failed: {e}")))??;
            for (relative, bytes) in encoded {
                store
                    .put(&self.location.child(&relative), bytes.into())
                    .await?;
                written.push(relative);
                report.event_files_written += 1;
            }
            next.ingests.insert(id.as_str().to_owned());
            for (path, _) in &group {
                next.replaced.insert(path.clone());
            }
            report.event_files_merged += group.len();
        }
        Ok(())
    }

    /// The live session rows, whole, as a base (no retractions).
    async fn live_base(&self, settings: &crate::settings::Settings) -> Result<RecordBatch> {
        let ctx = self.local_context()?;
        let url = ListingTableUrl::parse(self.location.folder_url(ROWS_DIR))?;
        ctx.register_table(ROWS_TABLE, self.listing_in(&ctx, url).await?)?;
        let schema = storage_schema(&self.contexts, &self.ctx, settings).await?;
        let retracted = retracted_in(&ctx, ROWS_TABLE).await?;
        let rows = live_rows(&ctx, ROWS_TABLE, retracted)
            .await?
            .collect()
            .await?;
        let rows = rows
            .iter()
            .map(|b| conform(b, &schema))
            .collect::<Result<Vec<_>>>()?;
        Ok(concat_batches(&schema, &rows)?)
    }

    /// A context that runs here over the location (see `ContextFactory::isolated`).
    fn local_context(&self) -> Result<datafusion::prelude::SessionContext> {
        Ok(self.contexts.isolated(&[(
            self.location.store_url(),
            std::sync::Arc::clone(self.location.store()),
        )])?)
    }

    /// The rows of `files` (one day's landed files) as one batch of plain strings; `None` when
    /// their columns do not agree.
    async fn read_files(
        &self,
        files: &[(String, object_store::ObjectMeta)],
    ) -> Result<Option<RecordBatch>> {
        let urls = files
            .iter()
            .map(|(path, _)| {
                ListingTableUrl::parse(format!(
                    "{}{}",
                    self.location.store_url(),
                    self.location.child(path).as_ref()
                ))
            })
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let ctx = self.local_context()?;
        let options = datafusion::datasource::listing::ListingOptions::new(Arc::new(
            datafusion::datasource::file_format::parquet::ParquetFormat::default(),
        ))
        .with_file_extension(".parquet");
        let state = ctx.state();
        let mut schemas = Vec::new();
        for url in &urls {
            schemas.push(options.infer_schema(&state, url).await?.as_ref().clone());
        }
        let Ok(schema) = Schema::try_merge(schemas) else {
            return Ok(None);
        };
        let schema = Arc::new(plain_strings(&schema));
        let config =
            datafusion::datasource::listing::ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(Arc::clone(&schema));
        let table = datafusion::datasource::listing::ListingTable::try_new(config)?;
        ctx.register_table("day", Arc::new(table))?;
        let batches = ctx.sql("SELECT * FROM day").await?.collect().await?;
        let batches = batches
            .iter()
            .map(|b| conform(b, &schema))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(concat_batches(&schema, &batches)?))
    }

    /// Deletes files under `_dwell/sessions/` and replaced event files that no manifest newer
    /// than `grace` names (nor `latest`), and that are older than `grace` themselves.
    async fn collect_garbage(&self, latest: &Manifest, grace: Duration) -> Result<usize> {
        let store = self.location.store();
        let root = self.location.root().clone();
        let now = chrono::Utc::now();
        let cutoff_ns = now
            .timestamp_nanos_opt()
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX));
        let mut named: HashSet<String> = HashSet::new();
        let mut replaced: HashSet<String> = latest.replaced.iter().cloned().collect();
        let name_all = |m: &Manifest, named: &mut HashSet<String>| {
            named.extend(m.rows.iter().cloned());
            named.extend(m.changes.iter().cloned());
        };
        name_all(latest, &mut named);
        // Manifests committed within the grace period: what they name may still be read.
        for seq in manifest::seqs(store.as_ref(), &root)
            .await?
            .into_iter()
            .filter(|s| *s != latest.seq)
        {
            let old = manifest::read(store.as_ref(), &root, seq).await?;
            if old.time_ns >= cutoff_ns {
                name_all(&old, &mut named);
                replaced.retain(|p| old.replaced.contains(p));
            }
        }
        let cutoff = now - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let mut doomed = Vec::new();
        for folder in [ROWS_DIR, CHANGES_DIR] {
            let prefix = self.location.child(folder);
            let listed: Vec<object_store::ObjectMeta> =
                self.raw_store.list(Some(&prefix)).try_collect().await?;
            for meta in listed {
                let Some(relative) = meta.location.prefix_match(&root).map(|parts| {
                    parts
                        .map(|p| p.as_ref().to_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                }) else {
                    continue;
                };
                if !named.contains(&relative) && meta.last_modified < cutoff {
                    doomed.push(meta.location);
                }
            }
        }
        for path in &replaced {
            let location = self.location.child(path);
            if let Ok(meta) = self.raw_store.head(&location).await
                && meta.last_modified < cutoff
            {
                doomed.push(location);
            }
        }
        let mut deleted = 0;
        for location in doomed {
            match self.raw_store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(deleted)
    }
}

/// `schema` with view and large strings as plain `Utf8`.
fn plain_strings(schema: &Schema) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let data_type = match f.data_type() {
                    DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                    other => other.clone(),
                };
                Field::new(f.name(), data_type, f.is_nullable())
            })
            .collect::<Vec<_>>(),
    )
}
