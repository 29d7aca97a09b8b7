//! Atomic ingest: a landed file is visible only once its ingest is committed.
//!
//! An ingest writes one Parquet file per day, `events/date=D/part-<ingest id>.parquet`, then a
//! commit marker `_dwell/ingests/<ingest id>.json`. Each put is atomic on every store dwell
//! supports; the marker is the single point at which the whole ingest becomes visible. Until
//! then [`CommittedStore`], the store the engine queries through, leaves the ingest's files out
//! of every listing, so an interrupted ingest shows nothing and a retry (same id) rewrites the
//! same names and commits. Files that do not follow dwell's naming (placed by other tools)
//! are always visible.

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

/// Folder, under the location root, of the commit markers.
pub(crate) const COMMITS_DIR: &str = "_dwell/ingests";

/// The file name dwell gives a landed file of an ingest.
pub(crate) fn landed_file_name(ingest_id: &str) -> String {
    format!("part-{ingest_id}.parquet")
}

/// The ingest id of a file dwell landed, from its name; `None` for any other file.
fn ingest_id_of(location: &Path) -> Option<&str> {
    let name = location.filename()?;
    let id = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// A store that hides the files of uncommitted ingests from listings; everything else passes
/// through.
#[derive(Debug)]
pub(crate) struct CommittedStore {
    inner: Arc<dyn ObjectStore>,
    commits: Path,
}

impl CommittedStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, commits: Path) -> Self {
        CommittedStore { inner, commits }
    }
}

impl fmt::Display for CommittedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Committed({})", self.inner)
    }
}

/// Ids of the committed ingests.
async fn committed_ids(
    store: &Arc<dyn ObjectStore>,
    commits: &Path,
) -> object_store::Result<HashSet<String>> {
    store
        .list(Some(commits))
        .try_filter_map(|meta| async move {
            Ok(meta
                .location
                .filename()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_owned))
        })
        .try_collect()
        .await
}

fn visible(meta: &ObjectMeta, committed: &HashSet<String>) -> bool {
    ingest_id_of(&meta.location).is_none_or(|id| committed.contains(id))
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
        let commits = self.commits.clone();
        let prefix = prefix.cloned();
        stream::once(async move {
            match committed_ids(&inner, &commits).await {
                Ok(committed) => inner
                    .list(prefix.as_ref())
                    .try_filter(move |meta| std::future::ready(visible(meta, &committed)))
                    .boxed(),
                Err(e) => stream::once(std::future::ready(Err(e))).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let committed = committed_ids(&self.inner, &self.commits).await?;
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects.retain(|meta| visible(meta, &committed));
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
