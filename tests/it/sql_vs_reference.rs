//! `sessionize` through DataFusion agrees with the reference implementation on random
//! timelines: rows shuffled, random batch sizes and partitions, 1 or 4 target partitions, every
//! string encoding, constant or per-row timeouts, and every execution path: dwell's
//! `SessionizeExec` sorting in memory (what the engine plans) or over DataFusion's sort (what it
//! plans under a memory limit), and with that rule left out `evaluate`, chosen by
//! `BoundedWindowAggExec`, and `evaluate_all`, chosen by `WindowAggExec`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DurationMicrosecondArray, Int64Array, RecordBatch,
    StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, TimestampMicrosecondType};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::displayable;
use datafusion::prelude::{SessionConfig, SessionContext};
use dwell_session::SessionizeRule;
use dwell_session::kernel::{Placement, Rule};
use dwell_session::reference::{self, RefEvent};
use dwell_session::testing;
use proptest::prelude::*;

/// How a case runs the SQL.
#[derive(Debug, Clone)]
struct Layout {
    target_partitions: usize,
    batch_size: usize,
    /// Rows per input batch, cycled.
    chunk: usize,
    mem_partitions: usize,
    encoding: DataType,
    per_row_timeout: bool,
    /// Add an unbounded window so DataFusion evaluates the whole partition at once.
    whole_partition: bool,
    /// Plan with this `SessionizeRule` (as the engine does) or with none.
    rule: Option<SessionizeRule>,
}

prop_compose! {
    fn layout()(
        target_partitions in prop_oneof![Just(1usize), Just(4)],
        batch_size in 1..64usize,
        chunk in 1..40usize,
        mem_partitions in 1..4usize,
        encoding in prop_oneof![
            Just(DataType::Utf8),
            Just(DataType::LargeUtf8),
            Just(DataType::Utf8View),
            Just(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))),
        ],
        per_row_timeout in any::<bool>(),
        whole_partition in any::<bool>(),
        rule in prop_oneof![
            Just(None),
            Just(Some(SessionizeRule::sorting_in_memory())),
            Just(Some(SessionizeRule::over_sorted_input())),
        ],
    ) -> Layout {
        Layout {
            target_partitions,
            batch_size,
            chunk,
            mem_partitions,
            encoding,
            per_row_timeout,
            whole_partition,
            rule,
        }
    }
}

fn strings(values: impl Iterator<Item = Option<String>>, encoding: &DataType) -> ArrayRef {
    let plain: ArrayRef = Arc::new(values.collect::<StringArray>());
    cast(&plain, encoding).expect("string encodings cast")
}

fn batch(events: &[RefEvent], layout: &Layout) -> RecordBatch {
    let enc = &layout.encoding;
    let col = |f: fn(&RefEvent) -> Option<String>| strings(events.iter().map(f), enc);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..events.len() as i64)),
        Arc::new(
            events
                .iter()
                .map(|e| e.time)
                .collect::<TimestampMicrosecondArray>(),
        ),
        col(|e| e.account_id.clone()),
        col(|e| e.user_id.clone()),
        col(|e| e.app_id.clone()),
        col(|e| e.tab_id.clone()),
        col(|e| e.event_type.clone()),
        col(|e| e.event_id.clone()),
        Arc::new(
            events
                .iter()
                .map(|e| testing::app_timeout_micros(e.app_id.as_deref()))
                .collect::<DurationMicrosecondArray>(),
        ),
    ];
    let schema = Schema::new(
        [
            "row_no",
            "event_time",
            "account_id",
            "user_id",
            "app_id",
            "tab_id",
            "event_type",
            "event_id",
            "app_timeout",
        ]
        .iter()
        .zip(&columns)
        .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
        .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), columns).expect("batch")
}

fn interval(nanos: i64) -> String {
    format!("arrow_cast({nanos}, 'Duration(Nanosecond)')")
}

fn query(rule: &Rule, layout: &Layout) -> String {
    let order = "event_time NULLS FIRST, event_id NULLS FIRST, tab_id NULLS FIRST, \
                 app_id NULLS FIRST, event_type NULLS FIRST";
    let timeout = if layout.per_row_timeout {
        "app_timeout".to_owned()
    } else {
        "INTERVAL '5 minutes'".to_owned()
    };
    let max = rule.max_duration_nanos.map_or("NULL".to_owned(), interval);
    let day = if rule.day_boundary.is_some() {
        "'+01:00'"
    } else {
        "NULL"
    };
    let equal = rule.gap_equal_splits;
    // Selected, so that the optimizer keeps it.
    let outer = if layout.whole_partition {
        ", whole"
    } else {
        ""
    };
    let extra = if layout.whole_partition {
        format!(
            ", count(*) OVER (PARTITION BY account_id, user_id ORDER BY {order} \
             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS whole"
        )
    } else {
        String::new()
    };
    format!(
        "SELECT row_no, s{outer} FROM (SELECT row_no, \
           sessionize(event_time, user_id, app_id, tab_id, event_type, {timeout}, event_id, \
                      account_id, {max}, {day}, {equal}) \
             OVER (PARTITION BY account_id, user_id ORDER BY {order}) AS s{extra} \
         FROM events)"
    )
}

/// One row's result in a comparable form.
type Shown = Option<(
    Option<String>,
    Option<i64>,
    Option<i64>,
    bool,
    Option<String>,
    bool,
)>;

fn shown(placement: Option<&Placement>) -> Shown {
    placement.map(|p| match p {
        Placement::Duplicate => (None, None, None, false, None, true),
        Placement::InSession(s) => (
            Some(s.session_id.to_string()),
            Some(s.session_seq),
            Some(s.session_start),
            s.starts_session,
            s.previous_end_reason.map(|r| r.as_str().to_owned()),
            false,
        ),
    })
}

fn shown_from_struct(s: &StructArray, row: usize) -> Shown {
    if s.is_null(row) {
        return None;
    }
    let text = |i: usize| {
        let c = s.column(i).as_string::<i32>();
        (!c.is_null(row)).then(|| c.value(row).to_owned())
    };
    let seq = s.column(1).as_primitive::<arrow::datatypes::Int64Type>();
    let start = s.column(2).as_primitive::<TimestampMicrosecondType>();
    let flag = |i: usize| {
        s.column(i)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .expect("bool")
            .value(row)
    };
    Some((
        text(0),
        (!seq.is_null(row)).then(|| seq.value(row)),
        (!start.is_null(row)).then(|| start.value(row)),
        flag(3),
        text(4),
        flag(5),
    ))
}

/// Runs the SQL; returns each input row's result and the physical plan.
async fn run_sql(events: &[RefEvent], rule: &Rule, layout: &Layout) -> (Vec<Shown>, String) {
    let config = SessionConfig::new()
        .with_target_partitions(layout.target_partitions)
        .with_batch_size(layout.batch_size);
    let ctx = dwell_engine::session_context(config).expect("context");
    let mut rules: Vec<_> = ctx
        .state()
        .physical_optimizers()
        .iter()
        .filter(|rule| rule.name() != SessionizeRule::NAME)
        .cloned()
        .collect();
    if let Some(rule) = layout.rule {
        rules.push(Arc::new(rule));
    }
    let state = SessionStateBuilder::new_from_existing(ctx.state())
        .with_physical_optimizer_rules(rules)
        .build();
    let ctx = SessionContext::new_with_state(state);
    let all = batch(events, layout);
    let mut partitions = vec![Vec::new(); layout.mem_partitions];
    let mut offset = 0;
    let mut n = 0;
    while offset < all.num_rows() {
        let len = layout.chunk.min(all.num_rows() - offset);
        partitions[n % layout.mem_partitions].push(all.slice(offset, len));
        offset += len;
        n += 1;
    }
    let table = MemTable::try_new(all.schema(), partitions).expect("table");
    ctx.register_table("events", Arc::new(table))
        .expect("register table");
    let df = ctx.sql(&query(rule, layout)).await.expect("plan");
    let plan = df
        .clone()
        .create_physical_plan()
        .await
        .expect("physical plan");
    let plan_text = displayable(plan.as_ref()).indent(false).to_string();
    let batches = df.collect().await.expect("run");
    let mut out = vec![None; events.len()];
    for b in &batches {
        let rows = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        let s = b.column(1).as_struct();
        for r in 0..b.num_rows() {
            out[rows.value(r) as usize] = shown_from_struct(s, r);
        }
    }
    (out, plan_text)
}

/// Rows identical in every input column are interchangeable (SESSIONS.md §2), so results are
/// compared as multisets of (row, result).
fn canonical(events: &[RefEvent], results: Vec<Shown>) -> Vec<(String, Shown)> {
    let mut rows: Vec<(String, Shown)> = events
        .iter()
        .map(|e| format!("{e:?}"))
        .zip(results)
        .collect();
    rows.sort();
    rows
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sql_matches_reference(
        events in testing::events(60).prop_shuffle(),
        rule in testing::rule(),
        layout in layout(),
    ) {
        let mut reference_events = events.clone();
        if !layout.per_row_timeout {
            for e in &mut reference_events {
                e.timeout_nanos = Some(testing::APP_B_TIMEOUT_MICROS * 1_000);
            }
        }
        let expected: Vec<Shown> =
            reference::place(&reference_events, &rule).iter().map(|p| shown(p.as_ref())).collect();
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let (got, plan) = runtime.block_on(run_sql(&events, &rule, &layout));
        let operator = if layout.whole_partition {
            "WindowAggExec"
        } else if layout.rule.is_some() {
            "SessionizeExec"
        } else {
            "BoundedWindowAggExec"
        };
        prop_assert!(
            plan.contains(&format!(" {operator}:")),
            "expected {} in the plan:\n{}", operator, plan
        );
        let sorts_in_memory = layout.rule == Some(SessionizeRule::sorting_in_memory());
        prop_assert_eq!(plan.contains("SortExec"), layout.whole_partition || !sorts_in_memory);
        prop_assert_eq!(canonical(&events, got), canonical(&events, expected));
    }
}
