//! Atomic commits: a landed file is visible only once a commit names it.
//!
//! An ingest writes one Parquet file per day, `events/date=D/part-<ingest id>.parquet`, and the
//! session rows it implies, then commits with one manifest (see [`crate::persisted`]). Each put
//! is atomic on every store dwell supports; the manifest is the single point at which the
//! ingest's events and their sessions become visible together. Until then [`CommittedStore`],
//! the store the engine queries through, leaves the ingest's files out of every listing, so an
//! interrupted ingest shows nothing and a retry (same id) rewrites the same names and commits.
//! Session files are visible only while the latest manifest names them; event files compaction
//! replaced are hidden once it commits. Files that do not follow dwell's naming (placed by
//! other tools) are always visible. Locations written before the commit log keep their commit
//! markers, `_dwell/ingests/<ingest id>.json`, which still commit their ingests.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

use crate::persisted::manifest::{self, CHANGES_DIR, ROWS_DIR};

/// Folder, under the location root, of the commit markers of locations written before the
/// commit log.
pub(crate) const MARKERS_DIR: &str = "_dwell/ingests";

/// The file name dwell gives a landed file of an ingest.
pub(crate) fn landed_file_name(ingest_id: &str) -> String {
    format!("part-{ingest_id}.parquet")
}

/// The ingest id of a file dwell landed, from its name; `None` for any other file.
pub(crate) fn ingest_id_of(location: &Path) -> Option<&str> {
    let name = location.filename()?;
    let id = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// A store that hides what no commit names from listings; everything else passes through.
#[derive(Debug)]
pub(crate) struct CommittedStore {
    inner: Arc<dyn ObjectStore>,
    root: Path,
    /// Ingests treated as committed although no commit names them yet: only in the store a
    /// commit's own upkeep reads through, never in one that answers queries.
    pending: HashSet<String>,
}

impl CommittedStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, root: Path) -> Self {
        CommittedStore {
            inner,
            root,
            pending: HashSet::new(),
        }
    }

    /// The same view with `pending` ingests visible too (for a commit's upkeep).
    pub(crate) fn with_pending(
        inner: Arc<dyn ObjectStore>,
        root: Path,
        pending: HashSet<String>,
    ) -> Self {
        CommittedStore {
            inner,
            root,
            pending,
        }
    }
}

impl fmt::Display for CommittedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Committed({})", self.inner)
    }
}

/// What the latest commit (and the old markers) make visible.
#[derive(Debug, Default)]
struct Visibility {
    ingests: HashSet<String>,
    replaced: HashSet<Path>,
    rows: HashSet<Path>,
    changes: HashSet<Path>,
    rows_dir: Path,
    changes_dir: Path,
}

async fn visibility(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    pending: &HashSet<String>,
) -> object_store::Result<Visibility> {
    let markers = manifest::child(root, MARKERS_DIR);
    let mut ingests: HashSet<String> = store
        .list(Some(&markers))
        .try_filter_map(|meta| async move {
            Ok(meta
                .location
                .filename()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_owned))
        })
        .try_collect()
        .await?;
    ingests.extend(pending.iter().cloned());
    let latest = manifest::latest(store.as_ref(), root)
        .await
        .map_err(|e| match e {
            crate::error::Error::Store(e) => e,
            other => object_store::Error::Generic {
                store: "dwell",
                source: Box::new(other),
            },
        })?;
    let mut seen = Visibility {
        rows_dir: manifest::child(root, ROWS_DIR),
        changes_dir: manifest::child(root, CHANGES_DIR),
        ..Visibility::default()
    };
    if let Some(latest) = latest {
        let paths = |list: &mut dyn Iterator<Item = &String>| -> HashSet<Path> {
            list.map(|p| manifest::child(root, p)).collect()
        };
        ingests.extend(latest.ingests.iter().cloned());
        seen.replaced = paths(&mut latest.replaced.iter());
        seen.rows = paths(&mut latest.rows.iter());
        seen.changes = paths(&mut latest.changes.iter());
    }
    seen.ingests = ingests;
    Ok(seen)
}

fn visible(meta: &ObjectMeta, seen: &Visibility) -> bool {
    let path = &meta.location;
    if path.prefix_matches(&seen.rows_dir) {
        return seen.rows.contains(path);
    }
    if path.prefix_matches(&seen.changes_dir) {
        return seen.changes.contains(path);
    }
    ingest_id_of(path).is_none_or(|id| seen.ingests.contains(id) && !seen.replaced.contains(path))
}

#[async_trait]
impl ObjectStore for CommittedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let inner = Arc::clone(&self.inner);
        let root = self.root.clone();
        let pending = self.pending.clone();
        let prefix = prefix.cloned();
        stream::once(async move {
            match visibility(&inner, &root, &pending).await {
                Ok(seen) => inner
                    .list(prefix.as_ref())
                    .try_filter(move |meta| std::future::ready(visible(meta, &seen)))
                    .boxed(),
                Err(e) => stream::once(std::future::ready(Err(e))).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let seen = visibility(&self.inner, &self.root, &self.pending).await?;
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects.retain(|meta| visible(meta, &seen));
        Ok(result)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
