//! Persisted sessions: the sessions of the committed events, kept as Parquet beside them and
//! brought up to date by every commit, so the session views read them instead of sessionizing
//! all events again.
//!
//! Layout under `_dwell/`:
//!
//! - `commits/<seq>.json`: the commit log ([`manifest`]). The latest manifest is the state:
//!   which ingests are committed, which foreign event files and settings the sessions cover,
//!   and which session files are live.
//! - `sessions/rows/`: the live session rows: a base (after a full recompute or a compaction)
//!   and one delta file per commit since, each row an insert or a retraction of an earlier
//!   row. Every row carries its key `(row_version, row_index)`, a retraction the key of the
//!   row it retracts: `sessions` is the rows whose key no retraction carries ([`live`]).
//!   Session files are LZ4-compressed in row groups of 128Ki rows ([`session_file_bytes`]),
//!   event files ZSTD: the events are the record, the sessions are read by every query.
//! - `sessions/changes/`: the change log, one file per commit (the delta's rows, whole, less
//!   `row_index`), read by `session_changes`.
//!
//! A commit (an ingest, `dwell generate`, `dwell rebuild`, `dwell compact`) puts its event
//! files, then its session files, then its manifest: one conditional put that makes all of it
//! visible at once ([`crate::committed`]). What each commit recomputes is in [`upkeep`].

pub(crate) mod compact;
pub(crate) mod live;
pub(crate) mod manifest;
pub(crate) mod upkeep;

pub use compact::CompactReport;
pub use live::LiveRowFilter;
pub(crate) use live::RetractedRows;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimestampNanosecondType};
use datafusion::catalog::TableProvider;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use crate::Engine;
use crate::committed::{CommittedStore, ingest_id_of};
use crate::error::{Error, Result};
use crate::events;
use crate::settings::{SegmentThresholds, Settings};

use manifest::{CHANGES_DIR, CoveredFile, Manifest, ROWS_DIR, STORED_FORM};
use upkeep::{Outcome, Scope, Upkeep, UserKey};

/// The table of live session rows (base and deltas), internal to the views.
pub(crate) const ROWS_TABLE: &str = "_dwell_session_rows";
/// Present when the live session rows hold retractions: their keys, `(account_id,
/// row_version, row_index)`, in memory, which the views then drop ([`live`]); a compaction
/// folds them away.
pub(crate) const RETRACTIONS_TABLE: &str = "_dwell_session_retractions";
/// The table of the change log's files, read by the `session_changes` view.
pub(crate) const CHANGES_TABLE: &str = "_dwell_session_changes";

/// Rows per row group of a session file: row groups are what a scan splits among the cores,
/// and Parquet's default 1Mi rows made the 2.29M-session base of 10M generated events three
/// uneven groups for two cores. With LZ4 (below; the two were measured together, not apart),
/// daily metrics over that base took 0.65x and segments 0.72x the time (`benches/RESULTS.md`,
/// 2026-12-03 later).
const SESSION_ROW_GROUP_ROWS: usize = 128 * 1024;

/// A session file's bytes. LZ4 rather than the events' ZSTD: session files are derived (a
/// rebuild makes them again) and every view query and every upkeep decodes them, where ZSTD's
/// decoding was the largest cost (`benches/profiles/upkeep-next-hour-2026-12-03.txt`).
pub(crate) fn session_file_bytes(rows: &RecordBatch) -> Result<Vec<u8>> {
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(SESSION_ROW_GROUP_ROWS))
        // Unique per row: a dictionary would only be built to be dropped.
        .set_column_dictionary_enabled(
            parquet::schema::types::ColumnPath::from("session_id"),
            false,
        )
        // Positions, 0, 1, ...: delta encoding stores each in a few bits.
        .set_column_dictionary_enabled(
            parquet::schema::types::ColumnPath::from(upkeep::ROW_INDEX),
            false,
        )
        .set_column_encoding(
            parquet::schema::types::ColumnPath::from(upkeep::ROW_INDEX),
            parquet::basic::Encoding::DELTA_BINARY_PACKED,
        )
        .build();
    let mut buffer = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut buffer, rows.schema(), Some(properties))?;
    writer.write(rows)?;
    writer.close()?;
    Ok(buffer)
}

/// Commits that may be lost to other writers in a row before an ingest gives up.
const COMMIT_ATTEMPTS: usize = 32;

/// The fingerprint of the settings that shape sessions (the segments' thresholds do not).
pub(crate) fn settings_fingerprint(settings: &Settings) -> String {
    let shaping = Settings {
        segments: SegmentThresholds::default(),
        ..settings.clone()
    };
    format!(
        "{:032x}",
        xxhash_rust::xxh3::xxh3_128(shaping.to_toml().as_bytes())
    )
}

/// How the persisted sessions stand against the visible event files and the settings.
#[derive(Debug)]
pub(crate) enum Coverage {
    /// They are the sessions of exactly these events under these settings.
    Current,
    /// They cover all but these files (placed by other tools, or landed before the commit
    /// log): a commit adds their events' users.
    Uncovered(Vec<ObjectMeta>),
    /// They cannot be brought up to date but by a full recompute, for this reason.
    Stale(String),
    /// No commit has persisted sessions yet.
    Missing,
}

impl Coverage {
    /// What a person should hear when the views cannot read the persisted sessions.
    pub(crate) fn why_not_current(&self) -> Option<String> {
        match self {
            Coverage::Current => None,
            Coverage::Uncovered(files) => Some(format!(
                "{} event file(s) are not covered by the persisted sessions ({}{})",
                files.len(),
                files
                    .iter()
                    .take(3)
                    .map(|f| f.location.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if files.len() > 3 { ", ..." } else { "" }
            )),
            Coverage::Stale(reason) => Some(reason.clone()),
            Coverage::Missing => Some("no sessions are persisted in this location yet".into()),
        }
    }
}

/// How `manifest` covers `files` (the visible event files, relative to the location root,
/// with their metadata) under `settings`.
pub(crate) fn coverage(
    manifest: Option<&Manifest>,
    files: &[(String, ObjectMeta)],
    settings: &Settings,
) -> Coverage {
    let Some(manifest) = manifest else {
        return Coverage::Missing;
    };
    if manifest.form < STORED_FORM && !manifest.rows.is_empty() {
        return Coverage::Stale(
            "the sessions are persisted in an earlier form, which the next commit (or \
             `dwell rebuild`) replaces"
                .into(),
        );
    }
    if manifest.settings != settings_fingerprint(settings) {
        return Coverage::Stale(
            "the settings (dwell.toml) changed since the sessions were computed".into(),
        );
    }
    let visible: HashMap<&str, u64> = files.iter().map(|(p, m)| (p.as_str(), m.size)).collect();
    for covered in &manifest.foreign {
        match visible.get(covered.path.as_str()) {
            Some(size) if *size == covered.size => {}
            Some(_) => {
                return Coverage::Stale(format!(
                    "event file {} changed since the sessions were computed",
                    covered.path
                ));
            }
            None => {
                return Coverage::Stale(format!(
                    "event file {} is gone since the sessions were computed",
                    covered.path
                ));
            }
        }
    }
    let uncovered: Vec<ObjectMeta> = files
        .iter()
        .filter(|(path, meta)| match ingest_id_of(&meta.location) {
            Some(id) => !manifest.ingests.contains(id),
            None => !manifest.foreign.iter().any(|c| &c.path == path),
        })
        .map(|(_, meta)| meta.clone())
        .collect();
    if uncovered.is_empty() {
        Coverage::Current
    } else {
        Coverage::Uncovered(uncovered)
    }
}

/// What a commit brings.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Ingests whose files are put and become visible with this commit.
    pub ingests: Vec<String>,
    /// Their users, each with its earliest event (ns).
    pub touched: HashMap<UserKey, i64>,
    /// Recompute everything (`dwell rebuild`).
    pub full: bool,
    /// What the commit is, for the log.
    pub summary: String,
}

impl Pending {
    /// Adds a batch's users (landed form: `event_time` ns UTC, strings).
    pub(crate) fn touch(&mut self, batch: &RecordBatch) -> Result<()> {
        let (Some(times), Some(users)) = (
            batch.column_by_name("event_time"),
            batch.column_by_name("user_id"),
        ) else {
            return Ok(());
        };
        let times = cast(times, &events::event_time_type())?;
        let times = times.as_primitive::<TimestampNanosecondType>();
        let users = cast(users, &DataType::Utf8)?;
        let users = users.as_string::<i32>();
        let accounts = batch
            .column_by_name("account_id")
            .map(|a| cast(a, &DataType::Utf8))
            .transpose()?;
        let accounts = accounts.as_ref().map(AsArray::as_string::<i32>);
        for row in 0..batch.num_rows() {
            if times.is_null(row) || users.is_null(row) {
                continue;
            }
            let account = accounts
                .filter(|a| a.is_valid(row))
                .map(|a| a.value(row).to_owned());
            let key = (account, users.value(row).to_owned());
            let time = times.value(row);
            self.touched
                .entry(key)
                .and_modify(|t| *t = (*t).min(time))
                .or_insert(time);
        }
        Ok(())
    }
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReport {
    /// The commit id (its sequence number).
    pub commit: u64,
    /// Users whose sessions were recomputed.
    pub users: usize,
    /// Session rows retracted and inserted.
    pub retracted: usize,
    pub inserted: usize,
    /// Whether everything was recomputed, and why.
    pub full: Option<String>,
    /// Commits since the last compaction, this one included.
    pub since_compaction: u64,
}

/// The store URL a commit's upkeep reads through (its pending ingests visible).
const UPKEEP_URL: &str = "dwell-upkeep://commit/";

impl Engine {
    /// Commits `pending`: brings the persisted sessions up to date with its events (and any
    /// uncovered ones) and puts the manifest that makes both visible. Retries against a newer
    /// state when another writer commits first. The caller holds the ingest lock.
    pub(crate) async fn commit(&self, pending: &Pending) -> Result<CommitReport> {
        for _ in 0..COMMIT_ATTEMPTS {
            if let Some(report) = self.try_commit(pending).await? {
                return Ok(report);
            }
        }
        Err(Error::Location {
            location: self.location.to_string(),
            reason: format!(
                "other writers committed {COMMIT_ATTEMPTS} times while this commit was \
                 prepared; nothing of it is visible, try again"
            ),
        })
    }

    async fn try_commit(&self, pending: &Pending) -> Result<Option<CommitReport>> {
        let store = self.location.store();
        let root = self.location.root().clone();
        let latest = manifest::latest(store.as_ref(), &root).await?;
        let seq = latest.as_ref().map_or(1, |m| m.seq + 1);
        let time_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let settings = self.settings();

        // The upkeep reads through a store that shows the pending ingests' files too.
        let upkeep_store: Arc<dyn ObjectStore> = Arc::new(CommittedStore::with_pending(
            Arc::clone(&self.raw_store),
            root.clone(),
            pending.ingests.iter().cloned().collect(),
        ));
        let upkeep_url = url::Url::parse(UPKEEP_URL).expect("static URL");
        let ctx = self.contexts.isolated(&[
            (self.location.store_url(), Arc::clone(self.location.store())),
            (&upkeep_url, Arc::clone(&upkeep_store)),
        ])?;
        let files = self.listed_parquet(&upkeep_store, "events").await?;
        let events_url = |folder: &str| {
            ListingTableUrl::parse(format!(
                "{UPKEEP_URL}{}/",
                manifest::child(&root, folder).as_ref()
            ))
        };
        let events: Arc<dyn TableProvider> =
            self.events_provider(events_url("events")?, &files).await?;
        ctx.register_table("events", events)?;
        // Files a pending ingest brings are covered by this commit.
        let pending_ids: HashSet<&str> = pending.ingests.iter().map(String::as_str).collect();
        let prior: Vec<(String, ObjectMeta)> = files
            .iter()
            .filter(|(_, m)| ingest_id_of(&m.location).is_none_or(|id| !pending_ids.contains(id)))
            .cloned()
            .collect();
        let mut full = pending.full.then(|| "a rebuild was asked for".to_owned());
        let mut touched = pending.touched.clone();
        match coverage(latest.as_ref(), &prior, &settings) {
            Coverage::Current => {}
            Coverage::Missing => {
                if latest.is_none() && !prior.is_empty() {
                    full.get_or_insert_with(|| "no sessions were persisted yet".into());
                } else {
                    full.get_or_insert_with(|| "first commit".into());
                }
            }
            Coverage::Stale(reason) => {
                full.get_or_insert(reason);
            }
            Coverage::Uncovered(uncovered) => {
                if full.is_none() {
                    self.touch_files(&ctx, &uncovered, &mut touched).await?;
                }
            }
        }
        let has_rows = latest.as_ref().is_some_and(|m| !m.rows.is_empty());
        if has_rows {
            let rows = self.listing_in(&ctx, events_url(ROWS_DIR)?).await?;
            ctx.register_table(ROWS_TABLE, rows)?;
        }
        let dated = files.iter().all(|(path, meta)| {
            ingest_id_of(&meta.location).is_some() && crate::catalog::is_day_file(path)
        });
        let upkeep = Upkeep {
            ctx: &ctx,
            contexts: &self.contexts,
            settings: &settings,
            seq,
            time_ns,
            dated,
            has_rows,
            retractions: match latest.as_ref() {
                Some(m) if m.form < STORED_FORM => upkeep::Retractions::BySessionId,
                Some(m) if m.retractions > 0 => upkeep::Retractions::ByKey,
                _ => upkeep::Retractions::None,
            },
        };
        let outcome: Outcome = upkeep
            .run(if full.is_some() {
                Scope::Full
            } else {
                Scope::Users(touched)
            })
            .await?;

        self.finish_commit(
            pending,
            latest.as_ref(),
            &files,
            &settings,
            seq,
            time_ns,
            full,
            &outcome,
        )
        .await
    }

    /// Puts a commit's session files, then its manifest; `None` (and its files deleted) when
    /// another writer committed first.
    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of one commit, computed above"
    )]
    async fn finish_commit(
        &self,
        pending: &Pending,
        latest: Option<&Manifest>,
        files: &[(String, ObjectMeta)],
        settings: &Settings,
        seq: u64,
        time_ns: i64,
        full: Option<String>,
        outcome: &Outcome,
    ) -> Result<Option<CommitReport>> {
        let store = self.location.store();
        let root = self.location.root().clone();
        // The commit's files, under names no other attempt uses.
        let nonce = format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(
                format!(
                    "{seq}/{time_ns}/{}/{:?}",
                    std::process::id(),
                    pending.ingests
                )
                .as_bytes()
            )
        );
        let mut written = Vec::new();
        let mut rows = latest.map(|m| m.rows.clone()).unwrap_or_default();
        let mut changes = latest.map(|m| m.changes.clone()).unwrap_or_default();
        if let Some(base) = &outcome.base {
            let path = format!("{ROWS_DIR}/base-{seq:020}-{nonce}.parquet");
            self.put_rows(&root, &path, base).await?;
            written.push(path.clone());
            rows = vec![path];
        }
        let (retracted, inserted) = op_counts(&outcome.delta)?;
        if outcome.delta.num_rows() > 0 {
            if outcome.base.is_none() {
                let path = format!("{ROWS_DIR}/delta-{seq:020}-{nonce}.parquet");
                self.put_rows(&root, &path, &outcome.delta).await?;
                written.push(path.clone());
                rows.push(path);
            }
            let path = format!("{CHANGES_DIR}/{seq:020}-{nonce}.parquet");
            self.put_rows(&root, &path, &upkeep::without_row_index(&outcome.delta))
                .await?;
            written.push(path.clone());
            changes.push(path);
        }
        let mut ingests: BTreeSet<String> = latest.map(|m| m.ingests.clone()).unwrap_or_default();
        ingests.extend(pending.ingests.iter().cloned());
        let mut foreign = BTreeSet::new();
        for (path, meta) in files {
            match ingest_id_of(&meta.location) {
                Some(id) => {
                    ingests.insert(id.to_owned());
                }
                None => {
                    foreign.insert(CoveredFile {
                        path: path.clone(),
                        size: meta.size,
                    });
                }
            }
        }
        let next = Manifest {
            seq,
            time_ns,
            ingests,
            foreign,
            replaced: latest.map(|m| m.replaced.clone()).unwrap_or_default(),
            settings: settings_fingerprint(settings),
            retractions: if outcome.base.is_some() {
                0
            } else {
                latest.map_or(0, |m| m.retractions) + u64::try_from(retracted).unwrap_or(u64::MAX)
            },
            since_compaction: latest.map_or(0, |m| m.since_compaction) + 1,
            // A delta is written only over rows of this form (`coverage`).
            form: STORED_FORM,
            rows,
            changes,
            summary: match &full {
                Some(why) => format!("{} (all sessions recomputed: {why})", pending.summary),
                None => pending.summary.clone(),
            },
        };
        if manifest::put_new(store.as_ref(), &root, &next).await? {
            Ok(Some(CommitReport {
                commit: seq,
                users: outcome.users,
                retracted,
                inserted,
                full,
                since_compaction: next.since_compaction,
            }))
        } else {
            // Another writer took this number: its state is the new base; ours is redone.
            for path in written {
                let _ = store.delete(&manifest::child(&root, &path)).await;
            }
            Ok(None)
        }
    }

    /// Adds the users of `files` (visible event files no commit covers) to `touched`.
    async fn touch_files(
        &self,
        ctx: &SessionContext,
        files: &[ObjectMeta],
        touched: &mut HashMap<UserKey, i64>,
    ) -> Result<()> {
        let urls = files
            .iter()
            .map(|meta| ListingTableUrl::parse(format!("{UPKEEP_URL}{}", meta.location.as_ref())))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let table = self.files_provider(urls, files).await?;
        let scratch = self.contexts.local_sibling_of(ctx)?;
        let has_account = table.schema().field_with_name("account_id").is_ok();
        scratch.register_table("uncovered", table)?;
        let account = if has_account {
            "account_id"
        } else {
            "CAST(NULL AS VARCHAR)"
        };
        let batches = scratch
            .sql(&format!(
                "SELECT {account} AS account_id, user_id, event_time FROM uncovered
                 WHERE user_id IS NOT NULL AND event_time IS NOT NULL"
            ))
            .await?
            .collect()
            .await?;
        let mut found = Pending::default();
        for batch in &batches {
            found.touch(batch)?;
        }
        for (user, time) in found.touched {
            touched
                .entry(user)
                .and_modify(|t| *t = (*t).min(time))
                .or_insert(time);
        }
        Ok(())
    }

    async fn put_rows(&self, root: &Path, path: &str, rows: &RecordBatch) -> Result<()> {
        let bytes = session_file_bytes(rows)?;
        self.location
            .store()
            .put(&manifest::child(root, path), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Recomputes every session from the events and commits them (`dwell rebuild`); the change
    /// log records only the sessions that differ.
    pub async fn rebuild(&self) -> Result<CommitReport> {
        let _guard = self.ingest_lock.lock().await;
        let report = self
            .commit(&Pending {
                full: true,
                summary: "rebuild".into(),
                ..Pending::default()
            })
            .await?;
        self.refresh().await?;
        Ok(report)
    }
}

/// (retracted, inserted) rows of a delta.
fn op_counts(delta: &RecordBatch) -> Result<(usize, usize)> {
    let ops = cast(
        delta
            .column_by_name("op")
            .ok_or_else(|| Error::Internal("a delta without op".into()))?,
        &DataType::Utf8,
    )?;
    let ops = ops.as_string::<i32>();
    let retracted = ops.iter().filter(|op| *op == Some("retract")).count();
    Ok((retracted, delta.num_rows() - retracted))
}
