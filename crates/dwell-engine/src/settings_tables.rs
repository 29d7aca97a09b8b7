//! The engine's in-memory tables that describe it: `app_settings` and `dwell_settings` (the
//! settings in force) and `dwell_columns` (what each view's columns mean).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;

use crate::error::Result;
use crate::settings::Settings;
use crate::views::{SESSION_CHANGES, VIEWS};

/// `app_settings`: each configured application and its timeout in seconds.
pub(crate) fn app_settings_table(settings: &Settings) -> Result<Arc<dyn TableProvider>> {
    let apps: Vec<&str> = settings.app_timeouts.keys().map(String::as_str).collect();
    let timeouts: Vec<f64> = settings
        .app_timeouts
        .values()
        .map(std::time::Duration::as_secs_f64)
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("app_id", DataType::Utf8, false),
        Field::new("timeout_seconds", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(apps)),
        Arc::new(Float64Array::from(timeouts)),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// `dwell_settings`: every setting as `section.key` and its value, as `dwell.toml` spells them.
pub(crate) fn settings_table(settings: &Settings) -> Result<Arc<dyn TableProvider>> {
    let (keys, values) = settings
        .entries()
        .into_iter()
        .map(|(section, key, value)| {
            let key = if section.is_empty() {
                key
            } else {
                format!("{section}.{key}")
            };
            (key, value.as_str().to_owned())
        })
        .unzip();
    string_table(&["key", "value"], vec![keys, values])
}

/// `dwell_columns`: what each column of each view means.
pub(crate) fn columns_table() -> Result<Arc<dyn TableProvider>> {
    let mut tables = Vec::new();
    let mut columns = Vec::new();
    let mut descriptions = Vec::new();
    for doc in VIEWS.iter().chain([&SESSION_CHANGES]) {
        for (column, description) in doc.columns {
            tables.push(doc.name.to_owned());
            columns.push((*column).to_owned());
            descriptions.push((*description).to_owned());
        }
    }
    string_table(
        &["table_name", "column_name", "description"],
        vec![tables, columns, descriptions],
    )
}

fn string_table(names: &[&str], columns: Vec<Vec<String>>) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}
