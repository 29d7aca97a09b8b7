//! Reading a source (Parquet, CSV, JSON lines) into batches, whatever its bytes hold.

use std::io::{BufReader, Cursor, Seek};
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::events::EVENT_COLUMNS;

use super::normalize::normalize;

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
            if EVENT_COLUMNS.contains(&f.name().as_str()) {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Schema::new(fields)
}
