//! The one schema of the `events` table (SESSIONS.md §1), and how each event file's columns map
//! onto it.
//!
//! Files come from many writers: Spark writes microseconds, pandas nanoseconds without a zone,
//! Kafka sinks milliseconds; some dictionary-encode strings or use large strings; older files
//! lack `event_id`. The table does not take its schema from the files: it has one canonical
//! schema, and DataFusion's schema adaptation (its default `PhysicalExprAdapter`, which casts a
//! file's column to the table's type and reads a missing column as NULL) reads every file into
//! it. This module decides that schema and refuses, by file and column, what cannot be read
//! into it.
//!
//! | column | type |
//! |---|---|
//! | `event_time` | `Timestamp(ns, "UTC")`: any unit and zone; no zone is UTC (the cast keeps the instant) |
//! | `account_id`, `user_id`, `app_id`, `tab_id`, `event_type`, `event_id` | the session's string type (`Utf8View`, or `Utf8` under a memory limit): Utf8, LargeUtf8, Utf8View or a dictionary of them |
//! | any other column | its type in the files; strings of any encoding as the string type, timestamps that differ in unit or zone as `Timestamp(ns, "UTC")`; a column whose files disagree otherwise is left out, with a warning (log target `dwell::events`) |

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// Columns SESSIONS.md §1 requires, all strings but `event_time`.
pub const REQUIRED_COLUMNS: [&str; 5] = ["event_time", "user_id", "app_id", "tab_id", "event_type"];
/// Optional columns with a meaning to the engine.
pub const OPTIONAL_COLUMNS: [&str; 2] = ["account_id", "event_id"];
/// The engine's columns in the order of the `events` table.
pub const EVENT_COLUMNS: [&str; 7] = [
    "event_time",
    "account_id",
    "user_id",
    "app_id",
    "tab_id",
    "event_type",
    "event_id",
];

/// The type of `event_time` in the table and in landed files: nanoseconds keep every source
/// precision (s to ns), and the zone makes the instant explicit.
#[must_use]
pub fn event_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The canonical schema of `events` (without the `date` partition column), with the engine's
/// string columns as `string_type`.
#[must_use]
pub fn events_schema(string_type: &DataType) -> Schema {
    Schema::new(
        EVENT_COLUMNS
            .iter()
            .map(|&name| {
                let data_type = if name == "event_time" {
                    event_time_type()
                } else {
                    string_type.clone()
                };
                Field::new(name, data_type, true)
            })
            .collect::<Vec<_>>(),
    )
}

/// Whether a column of this type reads as a string column (SESSIONS.md §1: all encodings are
/// the same; an all-NULL column of type `Null` too).
pub(crate) fn is_string_like(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
        DataType::Dictionary(_, value) => is_string_like(value),
        _ => false,
    }
}

/// Why a file's field of one of the engine's columns cannot be read as the canonical type, if
/// it cannot.
fn unreadable(field: &Field) -> Option<String> {
    let data_type = field.data_type();
    if field.name() == "event_time" {
        match data_type {
            DataType::Timestamp(_, _) => None,
            other => Some(format!("has type {other}; expected a timestamp")),
        }
    } else if is_string_like(data_type) {
        None
    } else {
        Some(format!("has type {data_type}; expected a string"))
    }
}

/// An extra column's type as the table holds it: strings as `string_type`.
fn normalized(data_type: &DataType, string_type: &DataType) -> DataType {
    if is_string_like(data_type) && data_type != &DataType::Null {
        string_type.clone()
    } else {
        data_type.clone()
    }
}

/// The `events` table's schema over event files, each given by its name and its schema as
/// DataFusion's Parquet reader sees it. `Err` names the first file and column that cannot be
/// read into it. Also returns the extra columns left out because their files disagree.
pub(crate) fn table_schema(
    files: &[(String, Arc<Schema>)],
    string_type: &DataType,
) -> Result<(Schema, Vec<String>), String> {
    // Extra columns in the order first seen, each with the types its files give it.
    let mut extras: Vec<(String, Vec<DataType>)> = Vec::new();
    for (name, schema) in files {
        for column in REQUIRED_COLUMNS {
            if schema.field_with_name(column).is_err() {
                return Err(format!(
                    "{name}: column {column} is missing; events need event_time, user_id, \
                     app_id, tab_id and event_type"
                ));
            }
        }
        for field in schema.fields() {
            if EVENT_COLUMNS.contains(&field.name().as_str()) {
                if let Some(reason) = unreadable(field) {
                    return Err(format!("{name}: column {} {reason}", field.name()));
                }
                continue;
            }
            let data_type = normalized(field.data_type(), string_type);
            match extras.iter_mut().find(|(n, _)| n == field.name()) {
                Some((_, types)) => types.push(data_type),
                None => extras.push((field.name().clone(), vec![data_type])),
            }
        }
    }
    let mut fields: Vec<Field> = events_schema(string_type)
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut left_out = Vec::new();
    for (name, types) in extras {
        // A column that is NULL throughout a file (type Null) agrees with any type.
        let typed: Vec<&DataType> = types.iter().filter(|t| **t != DataType::Null).collect();
        let agreed = match typed.split_first() {
            None => Some(DataType::Null),
            Some((first, rest)) if rest.iter().all(|t| t == first) => Some((*first).clone()),
            Some(_) if typed.iter().all(|t| matches!(t, DataType::Timestamp(_, _))) => {
                Some(event_time_type())
            }
            Some(_) => None,
        };
        match agreed {
            Some(data_type) => fields.push(Field::new(name, data_type, true)),
            None => left_out.push(name),
        }
    }
    Ok((Schema::new(fields), left_out))
}
