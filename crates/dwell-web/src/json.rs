//! Query results as JSON rows: numbers stay numbers, everything else is its Arrow text.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::error::Result;
use serde_json::{Map, Number, Value};

/// One JSON object per row, keyed by column name.
pub(crate) fn rows(batches: &[RecordBatch]) -> Result<Vec<Map<String, Value>>> {
    let mut out = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        let columns: Vec<Vec<Value>> = batch
            .columns()
            .iter()
            .map(|column| values(column.as_ref()))
            .collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            out.push(
                schema
                    .fields()
                    .iter()
                    .zip(&columns)
                    .map(|(field, column)| (field.name().clone(), column[row].clone()))
                    .collect(),
            );
        }
    }
    Ok(out)
}

fn float(x: f64) -> Value {
    // JSON has no NaN or infinity.
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A column's values; NULL is `null`.
fn values(array: &dyn Array) -> Result<Vec<Value>> {
    macro_rules! numbers {
        ($type:ty, $to:expr) => {{
            let typed = array.as_primitive::<$type>();
            (0..typed.len())
                .map(|i| {
                    if typed.is_null(i) {
                        Value::Null
                    } else {
                        $to(typed.value(i))
                    }
                })
                .collect()
        }};
    }
    Ok(match array.data_type() {
        DataType::Int8 => numbers!(Int8Type, Value::from),
        DataType::Int16 => numbers!(Int16Type, Value::from),
        DataType::Int32 => numbers!(Int32Type, Value::from),
        DataType::Int64 => numbers!(Int64Type, Value::from),
        DataType::UInt8 => numbers!(UInt8Type, Value::from),
        DataType::UInt16 => numbers!(UInt16Type, Value::from),
        DataType::UInt32 => numbers!(UInt32Type, Value::from),
        DataType::UInt64 => numbers!(UInt64Type, Value::from),
        DataType::Float32 => numbers!(Float32Type, |v: f32| float(f64::from(v))),
        DataType::Float64 => numbers!(Float64Type, float),
        DataType::Boolean => {
            let typed = array.as_boolean();
            (0..typed.len())
                .map(|i| {
                    if typed.is_null(i) {
                        Value::Null
                    } else {
                        Value::Bool(typed.value(i))
                    }
                })
                .collect()
        }
        _ => {
            // Strings of any encoding, dates and timestamps (with their zone): Arrow's text.
            let text = cast(array, &DataType::Utf8)?;
            let text = text.as_string::<i32>();
            (0..text.len())
                .map(|i| {
                    if text.is_null(i) {
                        Value::Null
                    } else {
                        Value::String(text.value(i).to_owned())
                    }
                })
                .collect()
        }
    })
}
