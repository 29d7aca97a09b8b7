//! Where the data lives: `--data LOC`.

use std::fmt;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use crate::deadline::StoreSettings;
use crate::error::{Error, Result};

/// A data location: an object store and the prefix under which `events/`, `users/` and
/// `dwell.toml` live.
///
/// - a local path (relative or absolute) or a `file://` URL;
/// - `s3://bucket/prefix`, configured from the standard `AWS_*` environment variables
///   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and for S3-compatible stores
///   `AWS_ENDPOINT` and `AWS_ALLOW_HTTP=true`);
/// - `memory://`: a fresh in-memory store, gone with the process (for tests).
#[derive(Clone)]
pub struct DataLocation {
    /// What the user gave, for messages.
    given: String,
    /// The store's URL: scheme and authority only (`file:///`, `s3://bucket/`, `memory:///`).
    store_url: Url,
    store: Arc<dyn ObjectStore>,
    /// The location's root inside the store.
    root: Path,
}

impl fmt::Debug for DataLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataLocation")
            .field("given", &self.given)
            .field("store_url", &self.store_url.as_str())
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for DataLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

impl DataLocation {
    /// Parses `--data LOC`. Nothing is contacted or created yet.
    ///
    /// # Panics
    ///
    /// Never: the URLs it parses are constants.
    pub fn parse(given: &str) -> Result<DataLocation> {
        Self::parse_with(given, &StoreSettings::default())
    }

    /// As [`DataLocation::parse`], with S3 requests bounded and retried as `settings` say
    /// (the engine bounds every store's calls with them too, see [`StoreSettings`]).
    ///
    /// # Panics
    ///
    /// Never: the URLs it parses are constants.
    pub fn parse_with(given: &str, settings: &StoreSettings) -> Result<DataLocation> {
        let error = |reason: String| Error::Location {
            location: given.to_owned(),
            reason,
        };
        if given.is_empty() {
            return Err(error("is empty".into()));
        }
        match given.split_once("://") {
            Some(("memory", rest)) => {
                if !rest.trim_matches('/').is_empty() {
                    return Err(error("memory:// takes no path".into()));
                }
                Ok(DataLocation {
                    given: given.to_owned(),
                    store_url: Url::parse("memory:///").expect("static URL"),
                    store: Arc::new(InMemory::new()),
                    root: Path::default(),
                })
            }
            Some(("file", _)) => {
                let url = Url::parse(given).map_err(|e| error(e.to_string()))?;
                let path = url
                    .to_file_path()
                    .map_err(|()| error("not a local file URL".into()))?;
                Self::local(given, &path)
            }
            Some(("s3", rest)) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(error("s3:// needs a bucket: s3://bucket/prefix".into()));
                }
                // `with_client_options` resets what `from_env` read of AWS_ALLOW_HTTP: read it
                // again after.
                let allow_http = std::env::var("AWS_ALLOW_HTTP")
                    .is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
                let store = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_client_options(
                        ClientOptions::new()
                            .with_timeout(settings.timeout)
                            .with_connect_timeout(settings.connect_timeout),
                    )
                    .with_allow_http(allow_http)
                    .with_retry(RetryConfig {
                        max_retries: settings.retries,
                        retry_timeout: settings.retry_timeout,
                        ..RetryConfig::default()
                    })
                    .build()
                    .map_err(|e| error(format!("cannot configure S3: {e}")))?;
                let root = Path::parse(prefix.trim_matches('/'))
                    .map_err(|e| error(format!("bad prefix: {e}")))?;
                Ok(DataLocation {
                    given: given.to_owned(),
                    store_url: Url::parse(&format!("s3://{bucket}/"))
                        .map_err(|e| error(e.to_string()))?,
                    store: Arc::new(store),
                    root,
                })
            }
            Some((scheme, _)) => Err(error(format!(
                "unsupported scheme {scheme}://; use a path, file://, s3:// or memory://"
            ))),
            None => Self::local(given, std::path::Path::new(given)),
        }
    }

    fn local(given: &str, path: &std::path::Path) -> Result<DataLocation> {
        let error = |reason: String| Error::Location {
            location: given.to_owned(),
            reason,
        };
        let absolute = std::path::absolute(path).map_err(|e| error(e.to_string()))?;
        // The folder is created on first write (ingest, generate); reading a missing one is an
        // error raised by the engine, which knows whether it is about to write.
        let root = Path::from_absolute_path(&absolute)
            .map_err(|e| error(format!("not a usable path: {e}")))?;
        Ok(DataLocation {
            given: given.to_owned(),
            store_url: Url::parse("file:///").expect("static URL"),
            store: Arc::new(LocalFileSystem::new()),
            root,
        })
    }

    /// The object store holding the data.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The store's URL, for registering it with DataFusion.
    #[must_use]
    pub fn store_url(&self) -> &Url {
        &self.store_url
    }

    /// The location's root inside its store.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path under the root.
    #[must_use]
    pub fn child(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(self.root.clone(), Path::join)
    }

    /// The URL of a folder under the root, with a trailing slash, as DataFusion lists it.
    #[must_use]
    pub fn folder_url(&self, relative: &str) -> String {
        let path = self.child(relative);
        format!("{}{}/", self.store_url, path.as_ref())
    }

    /// Whether this is a local folder (which then must exist to be read).
    #[must_use]
    pub fn local_folder(&self) -> Option<std::path::PathBuf> {
        (self.store_url.scheme() == "file")
            .then(|| std::path::PathBuf::from(format!("/{}", self.root.as_ref())))
    }

    /// The same location over another store (the engine wraps the store to hide uncommitted
    /// ingests).
    /// The same location through another store, made from its own: for wrappers (faults in
    /// tests, caches, metrics).
    #[must_use]
    pub fn wrap_store(
        &self,
        wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> DataLocation {
        self.with_store(wrap(Arc::clone(&self.store)))
    }

    pub(crate) fn with_store(&self, store: Arc<dyn ObjectStore>) -> DataLocation {
        DataLocation {
            store,
            ..self.clone()
        }
    }
}
