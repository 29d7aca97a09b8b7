//! Checking a source against SESSIONS.md §1 and bringing it to the landed form.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::concat_batches;
use arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::FormatOptions;

use crate::error::{Error, Result};
use crate::events::{EVENT_COLUMNS, REQUIRED_COLUMNS, event_time_type, is_string_like};

use super::PARTITION_COLUMN;

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
        let engine_column = EVENT_COLUMNS.contains(&column);
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
