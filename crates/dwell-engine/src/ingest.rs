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

use std::fmt::Write;
use std::io::{BufReader, Cursor, Seek};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, RecordBatchReader};
use arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampNanosecondType};
use arrow::util::display::FormatOptions;
use bytes::Bytes;
use chrono::DateTime;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::committed::{COMMITS_DIR, landed_file_name};
use crate::error::{Error, Result};
use crate::events::{event_time_type, is_string_like};
use crate::location::DataLocation;

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

/// The formats `dwell ingest` reads, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Parquet,
    Csv,
    JsonLines,
}

impl SourceFormat {
    /// The format's name in messages.
    fn label(self) -> &'static str {
        match self {
            SourceFormat::Parquet => "Parquet",
            SourceFormat::Csv => "CSV",
            SourceFormat::JsonLines => "JSON lines",
        }
    }

    /// The format of a file name, by extension.
    #[must_use]
    pub fn of(name: &str) -> Option<SourceFormat> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "parquet" | "parq" => Some(SourceFormat::Parquet),
            "csv" => Some(SourceFormat::Csv),
            "json" | "jsonl" | "ndjson" => Some(SourceFormat::JsonLines),
            _ => None,
        }
    }
}

/// Checks a source exactly as an ingest would (readable, SESSIONS.md §1, types) and returns the
/// events as they would land, without writing anything. This is also what the fuzz targets
/// (`fuzz/`) feed arbitrary bytes: it may return any error, but must never panic or hang.
pub fn validate_source(name: &str, format: SourceFormat, bytes: Bytes) -> Result<RecordBatch> {
    let (schema, batches) = read_source(name, format, bytes)?;
    normalize(name, &schema, &batches, None)
}

/// Reads a whole source into batches. `name` is used in errors. A panic inside a decoder (the
/// Parquet reader's arithmetic on a damaged footer, say) becomes this file's error.
pub(crate) fn read_source(
    name: &str,
    format: SourceFormat,
    bytes: Bytes,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_source(name, format, bytes)
    }))
    .unwrap_or_else(|panic| {
        Err(Error::ingest(
            name,
            None,
            format!(
                "not a readable {} file: the reader failed on it ({})",
                format.label(),
                crate::panic_message(panic.as_ref())
            ),
        ))
    })
}

fn decode_source(
    name: &str,
    format: SourceFormat,
    bytes: Bytes,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let unreadable = |what: &str, e: &dyn std::fmt::Display| {
        Error::ingest(name, None, format!("not a readable {what} file: {e}"))
    };
    match format {
        SourceFormat::Parquet => {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(ParquetRecordBatchReaderBuilder::build)
                .map_err(|e| unreadable("Parquet", &e))?;
            let schema = reader.schema();
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable("Parquet", &e))?;
            Ok((schema, batches))
        }
        SourceFormat::Csv => {
            let format = arrow::csv::reader::Format::default().with_header(true);
            let (inferred, _) = format
                .infer_schema(Cursor::new(&bytes), None)
                .map_err(|e| unreadable("CSV", &e))?;
            let schema = Arc::new(strings_for_engine_columns(&inferred));
            let batches = arrow::csv::ReaderBuilder::new(Arc::clone(&schema))
                .with_format(format)
                .build(Cursor::new(bytes))
                .map_err(|e| unreadable("CSV", &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable("CSV", &e))?;
            Ok((schema, batches))
        }
        SourceFormat::JsonLines => {
            let mut reader = BufReader::new(Cursor::new(bytes));
            let (inferred, _) = arrow::json::reader::infer_json_schema(&mut reader, None)
                .map_err(|e| unreadable("JSON lines", &e))?;
            reader.rewind().map_err(|e| unreadable("JSON lines", &e))?;
            let schema = Arc::new(strings_for_engine_columns(&inferred));
            let batches = arrow::json::ReaderBuilder::new(Arc::clone(&schema))
                .build(reader)
                .map_err(|e| unreadable("JSON lines", &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable("JSON lines", &e))?;
            Ok((schema, batches))
        }
    }
}

/// Text formats carry no types: the engine's columns are read as text (a user id `0042` stays
/// `0042`) and `event_time` is parsed by [`normalize`]; other columns keep the inferred type.
fn strings_for_engine_columns(inferred: &Schema) -> Schema {
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| {
            if REQUIRED_COLUMNS.contains(&f.name().as_str())
                || OPTIONAL_COLUMNS.contains(&f.name().as_str())
            {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Schema::new(fields)
}

/// Checks a source against SESSIONS.md §1 and brings it to the landed form: `event_time` as
/// [`event_time_type`] (nanoseconds, UTC), the engine's string columns as `Utf8`, other columns
/// as they came. `landed` is the schema of the `events` table: an extra column it already has
/// may not change type (the engine's own columns have one type whatever the files hold).
pub(crate) fn normalize(
    name: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    landed: Option<&Schema>,
) -> Result<RecordBatch> {
    for column in REQUIRED_COLUMNS {
        if schema.field_with_name(column).is_err() {
            return Err(Error::ingest(
                name,
                Some(column),
                "is missing; events need event_time, user_id, app_id, tab_id and event_type",
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for field in schema.fields() {
        if !seen.insert(field.name().as_str()) {
            return Err(Error::ingest(
                name,
                Some(field.name()),
                "appears twice; every column needs its own name",
            ));
        }
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut converted: Vec<Vec<ArrayRef>> = vec![Vec::new(); batches.len()];
    for (index, field) in schema.fields().iter().enumerate() {
        let column = field.name().as_str();
        if column == PARTITION_COLUMN {
            return Err(Error::ingest(
                name,
                Some(column),
                "is reserved: dwell partitions events/ by `date`; rename the column",
            ));
        }
        let engine_column =
            REQUIRED_COLUMNS.contains(&column) || OPTIONAL_COLUMNS.contains(&column);
        let target = if column == "event_time" {
            match field.data_type() {
                DataType::Timestamp(_, _) => event_time_type(),
                t if is_string_like(t) => event_time_type(),
                other => {
                    return Err(Error::ingest(
                        name,
                        Some(column),
                        format!("has type {other}; expected a timestamp or ISO 8601 text"),
                    ));
                }
            }
        } else if engine_column {
            if !is_string_like(field.data_type()) {
                return Err(Error::ingest(
                    name,
                    Some(column),
                    format!("has type {}; expected a string", field.data_type()),
                ));
            }
            DataType::Utf8
        } else {
            field.data_type().clone()
        };
        if !engine_column
            && let Some(existing) = landed.and_then(|s| s.field_with_name(column).ok())
            && !same_stored_type(existing.data_type(), &target)
        {
            // The engine's own columns land in one type whatever the files hold; an extra
            // column keeps the type it has, so a drifting source is refused, not cast.
            return Err(Error::ingest(
                name,
                Some(column),
                format!(
                    "has type {target} here but {} in the events already landed",
                    existing.data_type()
                ),
            ));
        }
        for (batch, out) in batches.iter().zip(converted.iter_mut()) {
            out.push(convert(name, column, batch.column(index), &target)?);
        }
        fields.push(Field::new(column, target, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let batches = converted
        .into_iter()
        .map(|columns| RecordBatch::try_new(Arc::clone(&schema), columns))
        .collect::<Result<Vec<_>, _>>()?;
    let batch = concat_batches(&schema, &batches)?;
    for column in ["event_time", "user_id"] {
        let array = batch.column_by_name(column).expect("checked above");
        if let Some(row) = (0..array.len()).find(|&row| array.is_null(row)) {
            return Err(Error::ingest(
                name,
                Some(column),
                format!(
                    "row {} is NULL; every event needs a time and a user",
                    row + 1
                ),
            ));
        }
    }
    Ok(batch)
}

/// Whether two types are stored alike: DataFusion reads Parquet text as `Utf8View` (and binary
/// as `BinaryView`), which is the same column in the file.
fn same_stored_type(landed: &DataType, incoming: &DataType) -> bool {
    fn base(t: &DataType) -> &DataType {
        match t {
            DataType::Utf8View | DataType::LargeUtf8 => &DataType::Utf8,
            DataType::BinaryView | DataType::LargeBinary => &DataType::Binary,
            DataType::Dictionary(_, value) => base(value),
            other => other,
        }
    }
    base(landed) == base(incoming)
}

fn convert(name: &str, column: &str, array: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    if array.data_type() == target {
        return Ok(Arc::clone(array));
    }
    // The source's own zone is honoured and zone-less times are UTC (SESSIONS.md §1): a cast
    // to a UTC-zoned type keeps the instant of both. Values that do not fit (nanoseconds end in
    // 2262) are an error, not NULL.
    let strict = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    cast_with_options(array, target, &strict).map_err(|e| {
        Error::ingest(
            name,
            Some(column),
            format!("cannot be read as {target}: {e}"),
        )
    })
}

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
