//! The commit log: `_dwell/commits/<seq>.json`, one manifest per commit, each the whole state.
//!
//! A commit is one conditional put (`PutMode::Create`) of the next sequence number: of two
//! writers that read the same state, one wins and the other sees `AlreadyExists`, reads the new
//! state and tries again, so neither loses the other's events. Everything a manifest names was
//! put before it, so a crash at any put leaves the previous manifest, and the state it names,
//! in force; files of a commit that never happened are named by no manifest and stay hidden.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Folder, under the location root, of the manifests.
pub(crate) const MANIFESTS_DIR: &str = "_dwell/commits";
/// Folder of the live session rows (a base and the commits' deltas since).
pub(crate) const ROWS_DIR: &str = "_dwell/sessions/rows";
/// Folder of the change log's files.
pub(crate) const CHANGES_DIR: &str = "_dwell/sessions/changes";

/// A foreign event file (not named by an ingest) that the sessions were computed over.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct CoveredFile {
    /// Relative to the location root.
    pub path: String,
    pub size: u64,
}

/// One commit's view of the whole location.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// 1, 2, ...: the commit id.
    pub seq: u64,
    /// When it was committed, nanoseconds since the epoch (UTC).
    pub time_ns: i64,
    /// Every committed ingest (landed files are `part-<id>.parquet`), this one's included.
    pub ingests: BTreeSet<String>,
    /// Foreign event files the sessions cover.
    pub foreign: BTreeSet<CoveredFile>,
    /// Landed event files that compaction replaced (hidden from then on), relative paths.
    pub replaced: BTreeSet<String>,
    /// The fingerprint of the settings the sessions were computed with.
    pub settings: String,
    /// Files of `ROWS_DIR` that hold the live sessions, relative paths.
    pub rows: Vec<String>,
    /// Files of `CHANGES_DIR`, in commit order, relative paths.
    pub changes: Vec<String>,
    /// What the commit did, for people reading the log.
    pub summary: String,
    /// Commits since the last compaction (an ingest compacts when it reaches
    /// `compact::COMPACT_EVERY`).
    #[serde(default)]
    pub since_compaction: u64,
    /// Retractions among the rows files (0 after a base is written).
    #[serde(default)]
    pub retractions: u64,
    /// The form of the session rows files ([`STORED_FORM`] for those this build writes; 0, the
    /// default, for the first, without `row_index`).
    #[serde(default)]
    pub form: u32,
}

/// The form of the session rows this build writes: 1 added `row_index`, by which retractions
/// name rows (`super::live`). Rows of an earlier form are recomputed by the next commit.
pub(crate) const STORED_FORM: u32 = 1;

fn manifest_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

/// The sequence numbers of the manifests under `root`, in no particular order.
pub(crate) async fn seqs(store: &dyn ObjectStore, root: &Path) -> Result<Vec<u64>> {
    let dir = child(root, MANIFESTS_DIR);
    Ok(store
        .list(Some(&dir))
        .try_filter_map(|meta| async move {
            Ok(meta
                .location
                .filename()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok()))
        })
        .try_collect()
        .await?)
}

/// The latest manifest under `root`, or `None` before the first commit.
pub(crate) async fn latest(store: &dyn ObjectStore, root: &Path) -> Result<Option<Manifest>> {
    let Some(seq) = seqs(store, root).await?.into_iter().max() else {
        return Ok(None);
    };
    read(store, root, seq).await.map(Some)
}

/// Manifest `seq`.
pub(crate) async fn read(store: &dyn ObjectStore, root: &Path, seq: u64) -> Result<Manifest> {
    let path = child(root, &format!("{MANIFESTS_DIR}/{}", manifest_name(seq)));
    let bytes = store.get(&path).await?.bytes().await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("{path}: not a dwell manifest: {e}")))
}

/// Puts `manifest` as commit `manifest.seq` unless that commit exists; `Ok(false)` when another
/// writer took the number first.
pub(crate) async fn put_new(
    store: &dyn ObjectStore,
    root: &Path,
    manifest: &Manifest,
) -> Result<bool> {
    let path = child(
        root,
        &format!("{MANIFESTS_DIR}/{}", manifest_name(manifest.seq)),
    );
    let bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Internal(format!("encoding a manifest: {e}")))?;
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store
        .put_opts(&path, PutPayload::from(bytes), options)
        .await
    {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `relative` under `root`.
pub(crate) fn child(root: &Path, relative: &str) -> Path {
    relative
        .split('/')
        .filter(|part| !part.is_empty())
        .fold(root.clone(), Path::join)
}
