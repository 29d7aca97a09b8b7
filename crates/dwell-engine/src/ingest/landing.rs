//! Landing a checked source: one sorted Parquet file per UTC day (its commit is
//! [`crate::persisted`]'s).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
use arrow::datatypes::TimestampNanosecondType;
use chrono::DateTime;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::committed::{MARKERS_DIR, landed_file_name};
use crate::error::Result;
use crate::location::DataLocation;
use crate::persisted::manifest;

use super::{IngestId, IngestReport, PARTITION_COLUMN};

/// Sorts by day, account, user and time, then splits by UTC day.
fn split_by_day(batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>> {
    const NANOS_PER_DAY: i64 = 86_400_000_000_000;
    let times = batch
        .column_by_name("event_time")
        .expect("normalized")
        .as_primitive::<TimestampNanosecondType>();
    let days: Int64Array = times.unary(|t| t.div_euclid(NANOS_PER_DAY));
    let days: ArrayRef = Arc::new(days);
    let mut keys = vec![SortColumn {
        values: Arc::clone(&days),
        options: None,
    }];
    for column in [
        "account_id",
        "user_id",
        "event_time",
        "event_id",
        "tab_id",
        "app_id",
        "event_type",
    ] {
        if let Some(values) = batch.column_by_name(column) {
            keys.push(SortColumn {
                values: Arc::clone(values),
                options: None,
            });
        }
    }
    let order = lexsort_to_indices(&keys, None)?;
    let sorted = take_record_batch(batch, &order)?;
    let days = arrow::compute::take(&days, &order, None)?;
    let days = days.as_primitive::<arrow::datatypes::Int64Type>();
    let mut parts = Vec::new();
    let mut start = 0;
    while start < sorted.num_rows() {
        let day = days.value(start);
        let end = (start..sorted.num_rows())
            .find(|&row| days.value(row) != day)
            .unwrap_or(sorted.num_rows());
        let date = DateTime::from_timestamp_nanos(day * NANOS_PER_DAY)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string();
        parts.push((date, sorted.slice(start, end - start)));
        start = end;
    }
    Ok(parts)
}

/// An event file's bytes: ZSTD, the events being the record (session files, derived and read
/// by every query, are LZ4: `persisted::session_file_bytes`).
fn parquet_bytes(batch: &RecordBatch) -> Result<Vec<u8>> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(buffer)
}

/// Whether an ingest has been committed: named by the latest manifest, or (in a location
/// written before the commit log) by its marker.
pub(crate) async fn is_committed(location: &DataLocation, id: &IngestId) -> Result<bool> {
    if let Some(latest) = manifest::latest(location.store().as_ref(), location.root()).await?
        && latest.ingests.contains(id.as_str())
    {
        return Ok(true);
    }
    let marker = location.child(&format!("{MARKERS_DIR}/{}.json", id.as_str()));
    match location.store().head(&marker).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The files an ingest lands: (path relative to the location, Parquet bytes). CPU work only,
/// for a blocking thread.
pub(crate) fn encode(id: &IngestId, batch: &RecordBatch) -> Result<Vec<(String, Vec<u8>)>> {
    split_by_day(batch)?
        .into_iter()
        .map(|(date, part)| {
            let relative = format!(
                "events/{PARTITION_COLUMN}={date}/{}",
                landed_file_name(id.as_str())
            );
            Ok((relative, parquet_bytes(&part)?))
        })
        .collect()
}

/// Puts the encoded files of an ingest (hidden until a commit names the ingest).
pub(crate) async fn put_files(
    location: &DataLocation,
    source: &str,
    id: &IngestId,
    rows: usize,
    encoded: Vec<(String, Vec<u8>)>,
) -> Result<IngestReport> {
    let mut files = Vec::new();
    for (relative, bytes) in encoded {
        location
            .store()
            .put(&location.child(&relative), PutPayload::from(bytes))
            .await?;
        files.push(relative);
    }
    Ok(IngestReport {
        source: source.to_owned(),
        ingest_id: id.as_str().to_owned(),
        rows,
        files,
        already_landed: false,
    })
}

/// Commits an ingest without its sessions: the marker of locations before the commit log, which
/// makes its files visible and leaves them uncovered by the persisted sessions.
pub(crate) async fn put_marker(location: &DataLocation, report: &IngestReport) -> Result<()> {
    let marker = serde_json::json!({
        "source": report.source,
        "rows": report.rows,
        "files": report.files,
    });
    location
        .store()
        .put(
            &location.child(&format!("{MARKERS_DIR}/{}.json", report.ingest_id)),
            PutPayload::from(marker.to_string().into_bytes()),
        )
        .await?;
    Ok(())
}
