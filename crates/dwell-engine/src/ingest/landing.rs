//! Landing a checked source: one sorted Parquet file per UTC day, then its commit marker.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
use arrow::datatypes::TimestampNanosecondType;
use chrono::DateTime;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::committed::{COMMITS_DIR, landed_file_name};
use crate::error::Result;
use crate::location::DataLocation;

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

/// Whether an ingest has been committed.
pub(crate) async fn is_committed(location: &DataLocation, id: &IngestId) -> Result<bool> {
    let marker = location.child(&format!("{COMMITS_DIR}/{}.json", id.as_str()));
    match location.store().head(&marker).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Writes a normalized batch: the day files, then the commit marker.
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

/// Puts the encoded files of an ingest, then its commit marker.
pub(crate) async fn land(
    location: &DataLocation,
    source: &str,
    id: &IngestId,
    rows: usize,
    encoded: Vec<(String, Vec<u8>)>,
) -> Result<IngestReport> {
    if rows == 0 {
        // A source with no events writes nothing, not even a marker.
        return Ok(IngestReport {
            source: source.to_owned(),
            ingest_id: id.as_str().to_owned(),
            rows,
            files: vec![],
            already_landed: false,
        });
    }
    let mut files = Vec::new();
    for (relative, bytes) in encoded {
        location
            .store()
            .put(&location.child(&relative), PutPayload::from(bytes))
            .await?;
        files.push(relative);
    }
    let marker = format!(
        "{{\"source\": {}, \"rows\": {}, \"files\": [{}]}}\n",
        json_string(source),
        rows,
        files
            .iter()
            .map(|f| json_string(f))
            .collect::<Vec<_>>()
            .join(", ")
    );
    location
        .store()
        .put(
            &location.child(&format!("{COMMITS_DIR}/{}.json", id.as_str())),
            PutPayload::from(marker.into_bytes()),
        )
        .await?;
    Ok(IngestReport {
        source: source.to_owned(),
        ingest_id: id.as_str().to_owned(),
        rows,
        files,
        already_landed: false,
    })
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                write!(out, "\\u{:04x}", c as u32).expect("string");
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
