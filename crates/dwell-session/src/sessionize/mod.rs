//! `sessionize`: the session rule as a DataFusion window function.
//!
//! A thin adapter: it checks and coerces arguments (in `arguments`), reads Arrow columns row by
//! row into [`Event`]s for the [`Sessionizer`], and writes its [`Placement`]s back as a struct
//! column.

mod arguments;

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int64Builder, StringBuilder, StringViewArray,
    StructArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Field, FieldRef, Fields, IntervalMonthDayNanoType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion_common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion_expr::expr::WindowFunction;
use datafusion_expr::function::WindowFunctionSimplification;
use datafusion_expr::simplify::SimplifyContext;
use datafusion_expr::{
    DocSection, Documentation, Expr, PartitionEvaluator, Signature, WindowUDF, WindowUDFImpl,
};
use datafusion_functions_window_common::field::WindowUDFFieldArgs;
use datafusion_functions_window_common::partition::PartitionEvaluatorArgs;

use self::arguments::{
    ACCOUNT_ID, APP_ID, EVENT_ID, EVENT_TIME, EVENT_TYPE, NANOS_PER_DAY, PARAMETERS, REQUIRED,
    RuleSettings, TAB_ID, TIMEOUT, Timeout, USER_ID, arity_error, logical_constants,
    physical_constants, row_timeout,
};
use crate::SessionId;
use crate::kernel::{
    DEFAULT_TIMEOUT_NANOS, EndReason, Event, OutOfOrder, Placement, Rule, Sessionizer, TimeScale,
};

/// The function's SQL name.
pub const NAME: &str = "sessionize";

/// Names of the fields of the result struct.
pub mod output {
    pub const SESSION_ID: &str = "session_id";
    pub const SESSION_SEQ: &str = "session_seq";
    pub const SESSION_START: &str = "session_start";
    pub const STARTS_SESSION: &str = "starts_session";
    pub const PREVIOUS_END_REASON: &str = "previous_end_reason";
    pub const IS_DUPLICATE: &str = "is_duplicate";
}

/// The `sessionize` window function. Register it with [`crate::register_all`] or
/// [`sessionize_udwf`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Sessionize {
    signature: Signature,
}

impl Default for Sessionize {
    fn default() -> Self {
        Self::new()
    }
}

impl Sessionize {
    /// # Panics
    ///
    /// Never: a user-defined signature accepts any parameter names.
    #[must_use]
    pub fn new() -> Self {
        Self {
            signature: arguments::signature(),
        }
    }
}

/// The `sessionize` function, ready to register.
#[must_use]
pub fn sessionize_udwf() -> Arc<WindowUDF> {
    static UDWF: LazyLock<Arc<WindowUDF>> =
        LazyLock::new(|| Arc::new(WindowUDF::new_from_impl(Sessionize::new())));
    Arc::clone(&UDWF)
}

impl WindowUDFImpl for Sessionize {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        arguments::coerce_types(arg_types)
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let time_type = arguments::event_time_type(field_args.input_fields())?;
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Struct(output_fields(time_type)),
            true,
        )))
    }

    fn simplify(&self) -> Option<WindowFunctionSimplification> {
        // The optimizer's hook is the one place that sees the arguments before execution, so
        // bad settings fail at plan time.
        Some(Box::new(
            |function: WindowFunction, _info: &SimplifyContext| {
                RuleSettings::parse(&logical_constants(&function.params.args))?;
                Ok(Expr::WindowFunction(Box::new(function)))
            },
        ))
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(evaluator(&args)?))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}

/// The evaluator for a call with these arguments; settings checked.
pub(crate) fn evaluator(args: &PartitionEvaluatorArgs) -> Result<SessionizeEvaluator> {
    let settings = RuleSettings::parse(&physical_constants(args.input_exprs()))?;
    let time_type = args.input_fields()[EVENT_TIME].data_type().clone();
    let DataType::Timestamp(unit, _) = &time_type else {
        return plan_err!("{NAME}: argument event_time must be a timestamp, got {time_type}");
    };
    let rule = Rule {
        max_duration_nanos: settings.max_duration_nanos,
        day_boundary: settings.day_boundary,
        gap_equal_splits: settings.gap_equal_splits,
        ..Rule::new(*unit)
    };
    Ok(SessionizeEvaluator {
        sessionizer: Sessionizer::new(rule),
        timeout: settings.timeout,
        time_type,
    })
}

/// The fields of the result struct; `session_start` has the type of `event_time`.
#[must_use]
pub fn output_fields(time_type: &DataType) -> Fields {
    Fields::from(vec![
        Field::new(output::SESSION_ID, DataType::Utf8, true),
        Field::new(output::SESSION_SEQ, DataType::Int64, true),
        Field::new(output::SESSION_START, time_type.clone(), true),
        Field::new(output::STARTS_SESSION, DataType::Boolean, false),
        Field::new(output::PREVIOUS_END_REASON, DataType::Utf8, true),
        Field::new(output::IS_DUPLICATE, DataType::Boolean, false),
    ])
}

/// The argument columns of one call, downcast once.
struct Columns<'a> {
    scale: TimeScale,
    times: &'a [i64],
    time_column: &'a dyn Array,
    user_id: &'a StringViewArray,
    app_id: &'a StringViewArray,
    tab_id: &'a StringViewArray,
    event_type: &'a StringViewArray,
    event_id: Option<&'a StringViewArray>,
    account_id: Option<&'a StringViewArray>,
    timeout: Option<&'a ArrayRef>,
}

fn strings(values: &[ArrayRef], i: usize) -> Result<Option<&StringViewArray>> {
    let Some(array) = values.get(i) else {
        return Ok(None);
    };
    if let Some(strings) = array.as_string_view_opt() {
        Ok(Some(strings))
    } else {
        exec_err!(
            "{NAME}: argument {} arrived as {} instead of Utf8View; was the call coerced?",
            PARAMETERS[i],
            array.data_type()
        )
    }
}

fn required(values: &[ArrayRef], i: usize) -> Result<&StringViewArray> {
    strings(values, i)?.ok_or_else(|| {
        DataFusionError::Execution(format!("{NAME}: argument {} is missing", PARAMETERS[i]))
    })
}

fn value(array: &StringViewArray, row: usize) -> Option<&str> {
    (!array.is_null(row)).then(|| array.value(row))
}

impl<'a> Columns<'a> {
    fn new(values: &'a [ArrayRef]) -> Result<Self> {
        if values.len() < REQUIRED {
            return arity_error(values.len());
        }
        let time_column = values[EVENT_TIME].as_ref();
        let (times, unit): (&[i64], TimeUnit) = match time_column.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => (
                time_column.as_primitive::<TimestampSecondType>().values(),
                TimeUnit::Second,
            ),
            DataType::Timestamp(TimeUnit::Millisecond, _) => (
                time_column
                    .as_primitive::<TimestampMillisecondType>()
                    .values(),
                TimeUnit::Millisecond,
            ),
            DataType::Timestamp(TimeUnit::Microsecond, _) => (
                time_column
                    .as_primitive::<TimestampMicrosecondType>()
                    .values(),
                TimeUnit::Microsecond,
            ),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => (
                time_column
                    .as_primitive::<TimestampNanosecondType>()
                    .values(),
                TimeUnit::Nanosecond,
            ),
            other => {
                return exec_err!("{NAME}: argument event_time must be a timestamp, got {other}");
            }
        };
        Ok(Self {
            scale: TimeScale::new(unit),
            times,
            time_column,
            user_id: required(values, USER_ID)?,
            app_id: required(values, APP_ID)?,
            tab_id: required(values, TAB_ID)?,
            event_type: required(values, EVENT_TYPE)?,
            event_id: strings(values, EVENT_ID)?,
            account_id: strings(values, ACCOUNT_ID)?,
            timeout: values.get(TIMEOUT),
        })
    }

    /// The event at `row`, or `None` when it has no `event_time` or `user_id`.
    fn event(&self, row: usize, timeout: Timeout) -> Result<Option<Event<'a>>> {
        if self.time_column.is_null(row) || self.user_id.is_null(row) {
            return Ok(None);
        }
        let timeout_nanos = match (timeout, self.timeout) {
            (Timeout::Constant(nanos), _) => nanos,
            (Timeout::PerRow, Some(column)) => {
                // The usual case (an interval literal per application) read directly; anything
                // else, and any value the fast path would have to judge, the general way.
                match column.as_primitive_opt::<IntervalMonthDayNanoType>() {
                    Some(intervals) if intervals.is_valid(row) => {
                        let v = intervals.value(row);
                        match i64::from(v.days)
                            .checked_mul(NANOS_PER_DAY)
                            .and_then(|n| n.checked_add(v.nanoseconds))
                        {
                            Some(nanos) if v.months == 0 && nanos > 0 => nanos,
                            _ => row_timeout(column, row)?,
                        }
                    }
                    _ => row_timeout(column, row)?,
                }
            }
            (Timeout::PerRow, None) => DEFAULT_TIMEOUT_NANOS,
        };
        Ok(Some(Event {
            time: self.times[row],
            account_id: self.account_id.and_then(|a| value(a, row)),
            user_id: value(self.user_id, row),
            app_id: value(self.app_id, row),
            tab_id: value(self.tab_id, row),
            event_type: value(self.event_type, row),
            event_id: self.event_id.and_then(|a| value(a, row)),
            timeout_nanos,
        }))
    }
}

/// Builds the result struct, one row at a time.
struct OutputBuilder {
    time_type: DataType,
    session_id: StringBuilder,
    session_seq: Int64Builder,
    session_start: Int64Builder,
    starts_session: BooleanBuilder,
    previous_end_reason: StringBuilder,
    is_duplicate: BooleanBuilder,
    placed: NullBufferBuilder,
    /// The hex of the last session id written: rows of one session repeat it.
    last_id: Option<(SessionId, [u8; 32])>,
}

impl OutputBuilder {
    fn new(time_type: &DataType, rows: usize) -> Self {
        Self {
            time_type: time_type.clone(),
            session_id: StringBuilder::with_capacity(rows, rows * 32),
            session_seq: Int64Builder::with_capacity(rows),
            session_start: Int64Builder::with_capacity(rows),
            starts_session: BooleanBuilder::with_capacity(rows),
            previous_end_reason: StringBuilder::with_capacity(rows, rows),
            is_duplicate: BooleanBuilder::with_capacity(rows),
            placed: NullBufferBuilder::new(rows),
            last_id: None,
        }
    }

    /// Appends one row: `None` for a row that cannot be placed (NULL time or user).
    fn append(&mut self, placement: Option<&Placement>) {
        match placement {
            Some(Placement::InSession(p)) => {
                let hex = match self.last_id {
                    Some((id, hex)) if id == p.session_id => hex,
                    _ => {
                        let hex = p.session_id.to_hex();
                        self.last_id = Some((p.session_id, hex));
                        hex
                    }
                };
                self.session_id.append_value(str_of_hex(&hex));
                self.session_seq.append_value(p.session_seq);
                self.session_start.append_value(p.session_start);
                self.starts_session.append_value(p.starts_session);
                self.previous_end_reason
                    .append_option(p.previous_end_reason.map(EndReason::as_str));
                self.is_duplicate.append_value(false);
                self.placed.append_non_null();
            }
            Some(Placement::Duplicate) | None => {
                self.session_id.append_null();
                self.session_seq.append_null();
                self.session_start.append_null();
                self.starts_session.append_value(false);
                self.previous_end_reason.append_null();
                self.is_duplicate.append_value(placement.is_some());
                self.placed.append(placement.is_some());
            }
        }
    }

    fn finish(mut self) -> Result<StructArray> {
        let starts = self.session_start.finish();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.session_id.finish()),
            Arc::new(self.session_seq.finish()),
            // `session_start` has the unit and zone of `event_time`: a cast from Int64 to a
            // timestamp type reinterprets the ticks (nulls kept), as the kernel's ticks are.
            cast(&starts, &self.time_type)?,
            Arc::new(self.starts_session.finish()),
            Arc::new(self.previous_end_reason.finish()),
            Arc::new(self.is_duplicate.finish()),
        ];
        Ok(StructArray::try_new(
            output_fields(&self.time_type),
            columns,
            self.placed.finish(),
        )?)
    }
}

fn str_of_hex(hex: &[u8; 32]) -> &str {
    std::str::from_utf8(hex).expect("hex digits are ASCII")
}

/// Evaluates `sessionize` over one window partition (one user's timeline).
#[derive(Debug)]
pub(crate) struct SessionizeEvaluator {
    sessionizer: Sessionizer,
    timeout: Timeout,
    time_type: DataType,
}

impl SessionizeEvaluator {
    fn place(&mut self, columns: &Columns<'_>, row: usize) -> Result<Option<Placement>> {
        let Some(event) = columns.event(row, self.timeout)? else {
            return Ok(None);
        };
        self.sessionizer
            .push(&event)
            .map(Some)
            .map_err(|OutOfOrder { previous, current }| {
                DataFusionError::Execution(format!(
                    "{NAME}: event_time goes backwards within a window partition ({} after {}); \
                 order the window by event_time, e.g. OVER (PARTITION BY user_id ORDER BY \
                 event_time, event_id)",
                    show_time(columns.scale, current),
                    show_time(columns.scale, previous),
                ))
            })
    }
}

impl SessionizeEvaluator {
    /// Evaluates sorted rows holding several window partitions, each starting at a row of
    /// `starts` (ascending, the first 0): as one `evaluate_all` per partition with a fresh
    /// evaluator, in one output array.
    pub(crate) fn evaluate_partitions(
        &mut self,
        values: &[ArrayRef],
        num_rows: usize,
        starts: &[usize],
    ) -> Result<ArrayRef> {
        let columns = Columns::new(values)?;
        let mut out = OutputBuilder::new(&self.time_type, num_rows);
        let mut starts = starts.iter().peekable();
        for row in 0..num_rows {
            if starts.next_if(|&&start| start == row).is_some() {
                self.sessionizer.restart();
            }
            let placement = self.place(&columns, row)?;
            out.append(placement.as_ref());
        }
        Ok(Arc::new(out.finish()?))
    }
}

fn show_time(scale: TimeScale, ticks: i64) -> String {
    let nanos = scale.nanos(ticks);
    i64::try_from(nanos)
        .ok()
        .map(chrono::DateTime::from_timestamp_nanos)
        .map_or_else(
            || format!("{nanos} ns since the epoch"),
            |t| t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
        )
}

impl PartitionEvaluator for SessionizeEvaluator {
    fn supports_bounded_execution(&self) -> bool {
        true
    }

    /// A row's result depends on the rows before it only, so `BoundedWindowAggExec` may emit
    /// every row of a batch at once instead of holding back its last row until the next batch.
    fn is_causal(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        // Called once per row, in order: the output of a row depends only on rows before it.
        let columns = Columns::new(values)?;
        let mut out = OutputBuilder::new(&self.time_type, 1);
        let placement = self.place(&columns, range.start)?;
        out.append(placement.as_ref());
        Ok(ScalarValue::Struct(Arc::new(out.finish()?)))
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let columns = Columns::new(values)?;
        let mut out = OutputBuilder::new(&self.time_type, num_rows);
        for row in 0..num_rows {
            let placement = self.place(&columns, row)?;
            out.append(placement.as_ref());
        }
        Ok(Arc::new(out.finish()?))
    }
}

const DOC_SECTION: DocSection = DocSection {
    include: true,
    label: "Session Functions",
    description: Some("Functions that group user-interaction events into sessions."),
};

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Puts each event of a user's timeline into its session. A session is a run of activity \
         in one browser tab of one application: it ends when the tab closes or is hidden, when \
         the user switches tab or application, when a tab is opened or shown again, or after an \
         inactivity gap longer than the timeout (and, when set, at a maximum duration or a \
         calendar-day boundary). Returns a struct: session_id (deterministic; from the \
         session's first event), session_seq (1, 2, ... per user), session_start, \
         starts_session, previous_end_reason (on a session's first row: why the user's \
         previous session ended) and is_duplicate (a repeated event_id, which belongs to no \
         session). Rows without event_time or user_id give NULL. The window must be \
         partitioned by user and ordered by event time; event time going backwards is an error.",
        "sessionize(event_time, user_id, app_id, tab_id, event_type [, timeout [, event_id \
         [, account_id [, max_duration [, day_boundary [, gap_equal_splits]]]]]]) OVER \
         (PARTITION BY account_id, user_id ORDER BY event_time, event_id, tab_id, app_id, \
         event_type NULLS FIRST)",
    )
    .with_sql_example(
        "```sql
SELECT user_id, event_time, s.session_id, s.session_seq
FROM (
  SELECT *, sessionize(event_time, user_id, app_id, tab_id, event_type,
                       timeout => INTERVAL '15 minutes') OVER (
           PARTITION BY user_id ORDER BY event_time, event_id) AS s
  FROM events) AS t;
```",
    )
    .with_argument(
        "event_time",
        "When the event happened: a timestamp of any unit, with or without time zone.",
    )
    .with_argument("user_id", "Who did it (string).")
    .with_argument(
        "app_id",
        "Which application the tab showed (string; NULL is an application of its own).",
    )
    .with_argument(
        "tab_id",
        "Which browser tab (string; NULL is a tab of its own).",
    )
    .with_argument(
        "event_type",
        "What happened (string): tab_open and tab_visible start a session, tab_close and \
         tab_hidden end one; anything else is activity.",
    )
    .with_argument(
        "timeout",
        "Inactivity timeout: an interval or duration, constant or per row (e.g. joined from \
         per-application settings). A gap longer than the timeout of the previous event ends \
         the session. NULL or absent: 30 minutes.",
    )
    .with_argument(
        "event_id",
        "Unique event id (string). Rows repeating an id already seen for the user are duplicates.",
    )
    .with_argument(
        "account_id",
        "The customer (tenant) of the user (string); part of the session id.",
    )
    .with_argument(
        "max_duration",
        "Constant interval: sessions longer than this are split. NULL or absent: no limit.",
    )
    .with_argument(
        "day_boundary",
        "Constant time zone name or offset ('UTC', 'Europe/Berlin', '+02:00'): sessions are \
         split where the calendar day changes in that zone. NULL or absent: off.",
    )
    .with_argument(
        "gap_equal_splits",
        "Constant boolean: a gap exactly equal to the timeout (or maximum duration) splits. \
         Default false.",
    )
    .build()
});
