//! Bounded storage calls: every call to the object store ends, in success or in an error that
//! says which call on which path ran out of time, instead of hanging a query or an ingest.
//!
//! S3 has its own request timeout and retries ([`StoreSettings`], given to the client); this
//! wrapper is the outer bound for every store (local folders on a hung network mount too): a
//! call gets `settings.call_deadline()`, and a download stream may wait at most
//! `settings.timeout` for each next chunk.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// How long object store calls may take and how often S3 requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSettings {
    /// One request (S3), or the wait for the next chunk of a download (any store).
    pub timeout: Duration,
    /// Establishing a connection (S3).
    pub connect_timeout: Duration,
    /// Retries of a failed S3 request (with exponential backoff).
    pub retries: usize,
    /// How long S3 retries may go on, in all, for one request.
    pub retry_timeout: Duration,
}

impl Default for StoreSettings {
    /// 30 s a request, 5 s to connect, 3 retries within 60 s.
    fn default() -> Self {
        StoreSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retries: 3,
            retry_timeout: Duration::from_mins(1),
        }
    }
}

impl StoreSettings {
    /// The outer bound of one store call: every attempt and the backoff between them.
    #[must_use]
    pub fn call_deadline(&self) -> Duration {
        let attempts = u32::try_from(self.retries.saturating_add(1)).unwrap_or(u32::MAX);
        self.timeout
            .saturating_mul(attempts)
            .min(self.retry_timeout.saturating_add(self.timeout))
    }
}

/// Bounds every call of the store it wraps (see the module docs).
#[derive(Debug)]
pub(crate) struct DeadlineStore {
    inner: Arc<dyn ObjectStore>,
    call: Duration,
    chunk: Duration,
}

impl DeadlineStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, settings: &StoreSettings) -> Self {
        DeadlineStore {
            inner,
            call: settings.call_deadline(),
            chunk: settings.timeout,
        }
    }
}

impl fmt::Display for DeadlineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeadlineStore({})", self.inner)
    }
}

fn timed_out(what: &str, path: Option<&Path>, after: Duration) -> object_store::Error {
    let on = path.map(|p| format!(" of {p}")).unwrap_or_default();
    object_store::Error::Generic {
        store: "dwell",
        source: format!(
            "{what}{on} got no answer from storage within {}s (--store-timeout, --store-retries)",
            after.as_secs_f64()
        )
        .into(),
    }
}

impl DeadlineStore {
    async fn bounded<T>(
        &self,
        what: &str,
        path: Option<&Path>,
        call: impl Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        tokio::time::timeout(self.call, call)
            .await
            .unwrap_or_else(|_| Err(timed_out(what, path, self.call)))
    }

    /// A stream whose every next item comes within `chunk`, or ends in an error.
    fn bounded_stream<T: Send + 'static>(
        &self,
        what: &'static str,
        path: Option<Path>,
        stream: BoxStream<'static, object_store::Result<T>>,
    ) -> BoxStream<'static, object_store::Result<T>> {
        let chunk = self.chunk;
        futures::stream::unfold(Some(stream), move |state| {
            let path = path.clone();
            async move {
                let mut stream = state?;
                match tokio::time::timeout(chunk, stream.next()).await {
                    Ok(Some(item)) => Some((item, Some(stream))),
                    Ok(None) => None,
                    // One error, then the stream ends.
                    Err(_) => Some((Err(timed_out(what, path.as_ref(), chunk)), None)),
                }
            }
        })
        .boxed()
    }
}

#[async_trait]
impl ObjectStore for DeadlineStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.bounded(
            "writing",
            Some(location),
            self.inner.put_opts(location, payload, opts),
        )
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.bounded(
            "starting an upload",
            Some(location),
            self.inner.put_multipart_opts(location, opts),
        )
        .await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let mut result = self
            .bounded(
                "reading",
                Some(location),
                self.inner.get_opts(location, options),
            )
            .await?;
        if let GetResultPayload::Stream(stream) = result.payload {
            result.payload = GetResultPayload::Stream(self.bounded_stream(
                "reading",
                Some(location.clone()),
                stream,
            ));
        }
        Ok(result)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.bounded(
            "reading",
            Some(location),
            self.inner.get_ranges(location, ranges),
        )
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.bounded_stream("deleting", None, self.inner.delete_stream(locations))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.bounded_stream("listing", prefix.cloned(), self.inner.list(prefix))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.bounded("listing", prefix, self.inner.list_with_delimiter(prefix))
            .await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.bounded(
            "copying",
            Some(from),
            self.inner.copy_opts(from, to, options),
        )
        .await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.bounded(
            "renaming",
            Some(from),
            self.inner.rename_opts(from, to, options),
        )
        .await
    }
}
