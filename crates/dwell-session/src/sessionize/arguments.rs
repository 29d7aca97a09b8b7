//! The arguments of `sessionize`: their names and positions, type checking and coercion, and
//! the constant settings of the rule read from them (checked at plan time and again at execution).

use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, FieldRef, IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit,
    IntervalYearMonthType, TimeUnit,
};
use datafusion_common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion_expr::{Expr, Signature, Volatility};
use datafusion_physical_expr::PhysicalExpr;
use datafusion_physical_expr::expressions::Literal;

use super::NAME;
use crate::kernel::DEFAULT_TIMEOUT_NANOS;

/// Parameter names, in positional order. Named arguments resolve to these positions.
pub(super) const PARAMETERS: [&str; 11] = [
    "event_time",
    "user_id",
    "app_id",
    "tab_id",
    "event_type",
    "timeout",
    "event_id",
    "account_id",
    "max_duration",
    "day_boundary",
    "gap_equal_splits",
];
pub(super) const EVENT_TIME: usize = 0;
pub(super) const USER_ID: usize = 1;
pub(super) const APP_ID: usize = 2;
pub(super) const TAB_ID: usize = 3;
pub(super) const EVENT_TYPE: usize = 4;
pub(super) const TIMEOUT: usize = 5;
pub(super) const EVENT_ID: usize = 6;
pub(super) const ACCOUNT_ID: usize = 7;
pub(super) const MAX_DURATION: usize = 8;
pub(super) const DAY_BOUNDARY: usize = 9;
pub(super) const GAP_EQUAL_SPLITS: usize = 10;
/// `event_time` to `event_type` are required.
pub(super) const REQUIRED: usize = 5;
/// Parameters that configure the rule and so must be the same for every row.
const CONSTANT_PARAMETERS: [usize; 3] = [MAX_DURATION, DAY_BOUNDARY, GAP_EQUAL_SPLITS];

/// The function's signature: user-defined (checked by [`coerce_types`]), with named parameters.
pub(super) fn signature() -> Signature {
    Signature::user_defined(Volatility::Immutable)
        .with_parameter_names(PARAMETERS.to_vec())
        .expect("user-defined signatures accept parameter names")
}

fn is_string(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_string(value),
        _ => false,
    }
}

fn is_duration(t: &DataType) -> bool {
    matches!(t, DataType::Interval(_) | DataType::Duration(_))
}

pub(super) fn arity_error<T>(given: usize) -> Result<T> {
    plan_err!(
        "{NAME} takes {REQUIRED} to {} arguments ({}), got {given}",
        PARAMETERS.len(),
        PARAMETERS.join(", ")
    )
}

/// The types the arguments are coerced to, or a plan error naming the argument that fits none.
pub(super) fn coerce_types(arg_types: &[DataType]) -> Result<Vec<DataType>> {
    if !(REQUIRED..=PARAMETERS.len()).contains(&arg_types.len()) {
        return arity_error(arg_types.len());
    }
    arg_types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let coerced = match i {
                EVENT_TIME => matches!(t, DataType::Timestamp(..)).then(|| t.clone()),
                TIMEOUT | MAX_DURATION => {
                    (is_duration(t) || t == &DataType::Null).then(|| t.clone())
                }
                DAY_BOUNDARY => (is_string(t) || t == &DataType::Null).then_some(DataType::Utf8),
                GAP_EQUAL_SPLITS => {
                    matches!(t, DataType::Boolean | DataType::Null).then_some(DataType::Boolean)
                }
                // Every string encoding reads the same; Utf8View is what the adapter reads.
                _ => (is_string(t) || t == &DataType::Null).then_some(DataType::Utf8View),
            };
            coerced.ok_or_else(|| {
                let expected = match i {
                    EVENT_TIME => "a timestamp",
                    TIMEOUT | MAX_DURATION => "an interval or duration",
                    GAP_EQUAL_SPLITS => "a boolean",
                    _ => "a string",
                };
                DataFusionError::Plan(format!(
                    "{NAME}: argument {} must be {expected}, got {t}",
                    PARAMETERS[i]
                ))
            })
        })
        .collect()
}

/// The type of `event_time`, after checking the number of arguments and that it is a timestamp.
pub(super) fn event_time_type(inputs: &[FieldRef]) -> Result<&DataType> {
    if !(REQUIRED..=PARAMETERS.len()).contains(&inputs.len()) {
        return arity_error(inputs.len());
    }
    let time_type = inputs[EVENT_TIME].data_type();
    if !matches!(time_type, DataType::Timestamp(..)) {
        return plan_err!("{NAME}: argument event_time must be a timestamp, got {time_type}");
    }
    Ok(time_type)
}

/// The value of each logical argument that is a constant, `None` for one that reads columns.
pub(super) fn logical_constants(args: &[Expr]) -> Vec<Option<ScalarValue>> {
    // An argument without column references is a constant that a later simplifier pass may
    // still fold (`arrow_cast(..)`, `-INTERVAL ..`): it is checked when the evaluator is
    // created. Literals are checked now; columns are refused now.
    args.iter()
        .map(|arg| match arg {
            Expr::Literal(value, _) => Some(value.clone()),
            _ if arg.column_refs().is_empty() => Some(ScalarValue::Null),
            _ => None,
        })
        .collect()
}

/// The value of each physical argument that is a literal, `None` for any other.
pub(super) fn physical_constants(exprs: &[Arc<dyn PhysicalExpr>]) -> Vec<Option<ScalarValue>> {
    exprs
        .iter()
        .map(|e| e.downcast_ref::<Literal>().map(|l| l.value().clone()))
        .collect()
}

/// The timeout argument: one value for all rows, or read per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timeout {
    Constant(i64),
    PerRow,
}

/// The arguments that configure the rule, checked.
#[derive(Debug)]
pub(super) struct RuleSettings {
    pub(super) timeout: Timeout,
    pub(super) max_duration_nanos: Option<i64>,
    pub(super) day_boundary: Option<Tz>,
    pub(super) gap_equal_splits: bool,
}

impl RuleSettings {
    /// `constants[i]`: the value of argument `i` when it is a constant, else `None`; arguments
    /// past the end are absent.
    pub(super) fn parse(constants: &[Option<ScalarValue>]) -> Result<Self> {
        let arg = |i: usize| constants.get(i).cloned().flatten();
        for i in CONSTANT_PARAMETERS {
            if matches!(constants.get(i), Some(None)) {
                return plan_err!(
                    "{NAME}: argument {} must be a constant, not a column or expression",
                    PARAMETERS[i]
                );
            }
        }
        let timeout = match constants.get(TIMEOUT) {
            None => Timeout::Constant(DEFAULT_TIMEOUT_NANOS),
            Some(None) => Timeout::PerRow,
            Some(Some(value)) => {
                Timeout::Constant(positive_nanos(value, TIMEOUT)?.unwrap_or(DEFAULT_TIMEOUT_NANOS))
            }
        };
        let max_duration_nanos = match arg(MAX_DURATION) {
            Some(value) => positive_nanos(&value, MAX_DURATION)?,
            None => None,
        };
        let day_boundary = match arg(DAY_BOUNDARY) {
            Some(
                ScalarValue::Utf8(Some(zone))
                | ScalarValue::Utf8View(Some(zone))
                | ScalarValue::LargeUtf8(Some(zone)),
            ) => Some(zone.parse::<Tz>().map_err(|e| {
                DataFusionError::Plan(format!(
                    "{NAME}: argument day_boundary must be a time zone such as 'UTC', \
                         'Europe/Berlin' or '+02:00', got '{zone}': {e}"
                ))
            })?),
            _ => None,
        };
        let gap_equal_splits = matches!(
            arg(GAP_EQUAL_SPLITS),
            Some(ScalarValue::Boolean(Some(true)))
        );
        Ok(Self {
            timeout,
            max_duration_nanos,
            day_boundary,
            gap_equal_splits,
        })
    }
}

/// A duration argument in nanoseconds; `None` for NULL. Rejects months (no fixed length),
/// zero and negative values.
fn positive_nanos(value: &ScalarValue, parameter: usize) -> Result<Option<i64>> {
    let nanos = duration_nanos(value).map_err(|why| {
        DataFusionError::Plan(format!(
            "{NAME}: argument {} {why}, got {value}",
            PARAMETERS[parameter]
        ))
    })?;
    match nanos {
        Some(n) if n <= 0 => plan_err!(
            "{NAME}: argument {} must be positive, got {value}",
            PARAMETERS[parameter]
        ),
        n => Ok(n),
    }
}

const MONTHS: &str = "must not count months or years (they have no fixed length)";
const TOO_LONG: &str = "is too long";
pub(super) const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Nanoseconds of an interval or duration; `Err(why)` names what is wrong with it.
fn duration_nanos(value: &ScalarValue) -> Result<Option<i64>, &'static str> {
    let scaled = |v: i64, factor: i64| v.checked_mul(factor).ok_or(TOO_LONG);
    let nanos = match value {
        ScalarValue::Null => return Ok(None),
        ScalarValue::IntervalMonthDayNano(v) => match v {
            None => return Ok(None),
            Some(v) if v.months != 0 => return Err(MONTHS),
            Some(v) => scaled(i64::from(v.days), NANOS_PER_DAY)?
                .checked_add(v.nanoseconds)
                .ok_or(TOO_LONG)?,
        },
        ScalarValue::IntervalDayTime(v) => match v {
            None => return Ok(None),
            Some(v) => scaled(i64::from(v.days), NANOS_PER_DAY)?
                .checked_add(scaled(i64::from(v.milliseconds), 1_000_000)?)
                .ok_or(TOO_LONG)?,
        },
        ScalarValue::IntervalYearMonth(v) => match v {
            None => return Ok(None),
            Some(0) => 0,
            Some(_) => return Err(MONTHS),
        },
        ScalarValue::DurationSecond(v) => return v.map(|v| scaled(v, 1_000_000_000)).transpose(),
        ScalarValue::DurationMillisecond(v) => return v.map(|v| scaled(v, 1_000_000)).transpose(),
        ScalarValue::DurationMicrosecond(v) => return v.map(|v| scaled(v, 1_000)).transpose(),
        ScalarValue::DurationNanosecond(v) => return Ok(*v),
        _ => return Err("must be an interval or duration"),
    };
    Ok(Some(nanos))
}

/// The timeout of one row of a timeout column: NULL means the default.
pub(super) fn row_timeout(column: &ArrayRef, row: usize) -> Result<i64> {
    if column.is_null(row) {
        return Ok(DEFAULT_TIMEOUT_NANOS);
    }
    let value = match column.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => ScalarValue::IntervalMonthDayNano(Some(
            column.as_primitive::<IntervalMonthDayNanoType>().value(row),
        )),
        DataType::Interval(IntervalUnit::DayTime) => ScalarValue::IntervalDayTime(Some(
            column.as_primitive::<IntervalDayTimeType>().value(row),
        )),
        DataType::Interval(IntervalUnit::YearMonth) => ScalarValue::IntervalYearMonth(Some(
            column.as_primitive::<IntervalYearMonthType>().value(row),
        )),
        DataType::Duration(TimeUnit::Second) => ScalarValue::DurationSecond(Some(
            column.as_primitive::<DurationSecondType>().value(row),
        )),
        DataType::Duration(TimeUnit::Millisecond) => ScalarValue::DurationMillisecond(Some(
            column.as_primitive::<DurationMillisecondType>().value(row),
        )),
        DataType::Duration(TimeUnit::Microsecond) => ScalarValue::DurationMicrosecond(Some(
            column.as_primitive::<DurationMicrosecondType>().value(row),
        )),
        DataType::Duration(TimeUnit::Nanosecond) => ScalarValue::DurationNanosecond(Some(
            column.as_primitive::<DurationNanosecondType>().value(row),
        )),
        other => {
            return exec_err!(
                "{NAME}: argument timeout must be an interval or duration, got {other}"
            );
        }
    };
    positive_nanos(&value, TIMEOUT)
        .map_err(|e| DataFusionError::Execution(e.strip_backtrace()))?
        .map_or(Ok(DEFAULT_TIMEOUT_NANOS), Ok)
}
