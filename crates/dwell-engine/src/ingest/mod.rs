//! Ingest: validate events against SESSIONS.md §1 and land them as Parquet.
//!
//! The unit of ingest is one source (a file, or a set of batches with an id). It is read and
//! checked whole before anything is written, so a bad source is rejected with nothing written.
//! It lands as one zstd Parquet file per UTC day under `events/date=YYYY-MM-DD/`, rows sorted by
//! account, user and time, named after the ingest id, and becomes visible all at once when its
//! commit marker is written (see [`crate::committed`]).
//!
//! The ingest id of a file is the 128-bit XXH3 of its bytes, so landing the same file again
//! finds the marker and lands nothing. Events that arrive twice in *different* files are told
//! apart by `event_id`: the session views count each id once per user (SESSIONS.md §2).

mod landing;
mod normalize;
mod source;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;

use crate::error::{Error, Result};

pub use source::{SourceFormat, validate_source};

pub(crate) use landing::{encode as encode_day_files, is_committed};

use crate::Engine;
use crate::persisted::Pending;
use crate::tenant::{self, Scope};

pub use crate::events::{OPTIONAL_COLUMNS, REQUIRED_COLUMNS};
/// The hive partition column of `events/`; a source may not carry its own.
pub const PARTITION_COLUMN: &str = "date";

/// What an ingest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// The source, as named by the caller.
    pub source: String,
    /// The ingest id (content hash of the source).
    pub ingest_id: String,
    /// Events landed (0 when the source had landed before).
    pub rows: usize,
    /// Paths of the landed files, relative to the data location.
    pub files: Vec<String>,
    /// The same source had landed before; nothing was written.
    pub already_landed: bool,
}

/// An ingest id: 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IngestId(String);

impl IngestId {
    /// The id of a source's bytes.
    #[must_use]
    pub fn of_bytes(bytes: &[u8]) -> IngestId {
        IngestId(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes)))
    }

    /// The id of batches: the hash of their Arrow IPC stream.
    pub fn of_batches(batches: &[RecordBatch]) -> Result<IngestId> {
        let Some(first) = batches.first() else {
            return Ok(IngestId::of_bytes(&[]));
        };
        let mut buffer = Vec::new();
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut buffer, &first.schema())?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
        drop(writer);
        Ok(IngestId::of_bytes(&buffer))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
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
        if landing::is_committed(&self.location, &id).await? {
            return Ok(already_landed(&name, &id));
        }
        let source = name.clone();
        let (schema, batches) =
            tokio::task::spawn_blocking(move || source::read_source(&source, format, bytes))
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

    /// Takes the ingest lock, then lands the batches unless `id` is committed already;
    /// refreshes the tables after when `refresh` (the generator refreshes once, at its end).
    pub(crate) async fn ingest_batches_then(
        &self,
        source: &str,
        id: &IngestId,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        refresh: bool,
    ) -> Result<IngestReport> {
        let _guard = self.ingest_lock.lock().await;
        if landing::is_committed(&self.location, id).await? {
            return Ok(already_landed(source, id));
        }
        self.land(source, id, schema, batches, refresh).await
    }

    /// Validates, lands, commits with the sessions it implies and (unless told not to)
    /// refreshes; the caller holds the ingest lock.
    async fn land(
        &self,
        source: &str,
        id: &IngestId,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        refresh: bool,
    ) -> Result<IngestReport> {
        let mut pending = Pending {
            summary: format!("ingest {} ({source})", id.as_str()),
            ..Pending::default()
        };
        let report = self
            .stage(source, id, schema, batches, &mut pending)
            .await?;
        if report.rows == 0 {
            // A source with no events commits nothing.
            return Ok(report);
        }
        if !self.session_upkeep {
            landing::put_marker(&self.location, &report).await?;
            if refresh {
                self.refresh().await?;
            }
            return Ok(report);
        }
        let commit = self.commit(&pending).await?;
        if commit.since_compaction >= crate::persisted::compact::COMPACT_EVERY {
            self.compact_locked(crate::persisted::compact::GRACE)
                .await?;
        }
        if refresh {
            self.refresh().await?;
        }
        Ok(report)
    }

    /// Validates and puts an ingest's files, not yet visible, and adds it to `pending`; the
    /// caller holds the ingest lock and commits.
    pub(crate) async fn stage(
        &self,
        source: &str,
        id: &IngestId,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        pending: &mut Pending,
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
        let (rows, encoded, touched) = tokio::task::spawn_blocking(move || {
            let batch = normalize::normalize(&source_owned, &schema, &batches, landed.as_deref())?;
            let mut touched = Pending::default();
            touched.touch(&batch)?;
            Ok::<_, Error>((
                batch.num_rows(),
                landing::encode(&id_owned, &batch)?,
                touched.touched,
            ))
        })
        .await
        .map_err(|e| Error::ingest(source, None, format!("ingest failed: {e}")))??;
        let report = landing::put_files(&self.location, source, id, rows, encoded).await?;
        if rows > 0 {
            pending.ingests.push(id.as_str().to_owned());
            for (user, time) in touched {
                pending
                    .touched
                    .entry(user)
                    .and_modify(|t| *t = (*t).min(time))
                    .or_insert(time);
            }
        }
        Ok(report)
    }
}

pub(crate) fn already_landed(source: &str, id: &IngestId) -> IngestReport {
    IngestReport {
        source: source.to_owned(),
        ingest_id: id.as_str().to_owned(),
        rows: 0,
        files: vec![],
        already_landed: true,
    }
}
