//! Throughput of `sessionize`'s evaluator and of the bare kernel over 10M events (release).
//!
//! `cargo bench -p dwell-benches --bench evaluator`
//!
//! `evaluate_all` and `kernel` run over 10M events; `evaluate_per_row` over the first 1M.
//!
//! Events: 100,000 users × 100 events, one window partition per user, as DataFusion hands them
//! to the evaluator after sorting. Gaps cycle through values around the 5-minute timeout; tabs
//! and apps switch now and then; ids are unique.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringViewArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion_common::ScalarValue;
use datafusion_expr::WindowUDFImpl;
use datafusion_functions_window_common::partition::PartitionEvaluatorArgs;
use datafusion_physical_expr::PhysicalExpr;
use datafusion_physical_expr::expressions::{Column, Literal};
use dwell_session::Sessionize;
use dwell_session::kernel::{Event, Rule, Sessionizer};

const USERS: usize = 100_000;
const EVENTS_PER_USER: usize = 100;
const EVENTS: usize = USERS * EVENTS_PER_USER;
const SECOND: i64 = 1_000_000;

/// The argument columns of one user's partition.
struct Partition {
    columns: Vec<ArrayRef>,
}

fn partitions() -> Vec<Partition> {
    const GAPS: [i64; 8] = [5, 30, 299, 300, 301, 60, 2, 900];
    const TYPES: [&str; 6] = [
        "page_view",
        "user_action",
        "page_view",
        "content_engagement",
        "tab_hidden",
        "tab_visible",
    ];
    (0..USERS)
        .map(|u| {
            let mut t = 1_767_600_000 * SECOND;
            let mut times = Vec::with_capacity(EVENTS_PER_USER);
            let mut tabs = Vec::with_capacity(EVENTS_PER_USER);
            let mut apps = Vec::with_capacity(EVENTS_PER_USER);
            let mut types = Vec::with_capacity(EVENTS_PER_USER);
            let mut ids = Vec::with_capacity(EVENTS_PER_USER);
            for i in 0..EVENTS_PER_USER {
                t += GAPS[(i + u) % GAPS.len()] * SECOND;
                times.push(t);
                tabs.push(if (i / 17) % 2 == 0 { "tab-1" } else { "tab-2" });
                apps.push(if (i / 40) % 2 == 0 { "crm" } else { "wiki" });
                types.push(TYPES[(i * 7 + u) % TYPES.len()]);
                ids.push(format!("{u:08}-{i:04}-event"));
            }
            let user = format!("user-{u:08}");
            let columns: Vec<ArrayRef> = vec![
                Arc::new(TimestampMicrosecondArray::from(times)),
                Arc::new(StringViewArray::from(vec![user.as_str(); EVENTS_PER_USER])),
                Arc::new(StringViewArray::from(apps)),
                Arc::new(StringViewArray::from(tabs)),
                Arc::new(StringViewArray::from(types)),
                Arc::new(StringViewArray::from_iter_values(ids)),
            ];
            Partition { columns }
        })
        .collect()
}

fn fields() -> Vec<FieldRef> {
    let string = |name: &str| Arc::new(Field::new(name, DataType::Utf8View, true));
    vec![
        Arc::new(Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )),
        string("user_id"),
        string("app_id"),
        string("tab_id"),
        string("event_type"),
        Arc::new(Field::new(
            "timeout",
            DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
            true,
        )),
        string("event_id"),
    ]
}

fn exprs() -> Vec<Arc<dyn PhysicalExpr>> {
    let timeout = ScalarValue::new_interval_mdn(0, 0, 300 * 1_000_000_000);
    vec![
        Arc::new(Column::new("event_time", 0)),
        Arc::new(Column::new("user_id", 1)),
        Arc::new(Column::new("app_id", 2)),
        Arc::new(Column::new("tab_id", 3)),
        Arc::new(Column::new("event_type", 4)),
        Arc::new(Literal::new(timeout)),
        Arc::new(Column::new("event_id", 6)),
    ]
}

fn bench(c: &mut Criterion) {
    let data = partitions();
    let function = Sessionize::new();
    let (fields, exprs) = (fields(), exprs());
    // The timeout literal arrives as a column, as DataFusion evaluates it per batch.
    let timeout: ArrayRef = ScalarValue::new_interval_mdn(0, 0, 300 * 1_000_000_000)
        .to_array_of_size(EVENTS_PER_USER)
        .expect("timeout column");
    let values: Vec<Vec<ArrayRef>> = data
        .iter()
        .map(|p| {
            let mut v = p.columns[..5].to_vec();
            v.push(Arc::clone(&timeout));
            v.push(Arc::clone(&p.columns[5]));
            v
        })
        .collect();

    let mut group = c.benchmark_group("sessionize_10M");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("evaluate_all", |b| {
        b.iter(|| {
            for v in &values {
                let args = PartitionEvaluatorArgs::new(&exprs, &fields, false, false);
                let mut evaluator = function.partition_evaluator(args).expect("evaluator");
                black_box(
                    evaluator
                        .evaluate_all(v, EVENTS_PER_USER)
                        .expect("evaluate_all"),
                );
            }
        });
    });
    group.finish();

    // One `evaluate` call per row (the `BoundedWindowAggExec` path) is much slower, so it runs
    // over the first tenth of the users.
    let mut group = c.benchmark_group("sessionize_1M");
    group.sample_size(10);
    group.throughput(Throughput::Elements((EVENTS / 10) as u64));
    group.bench_function("evaluate_per_row", |b| {
        b.iter(|| {
            for v in &values[..USERS / 10] {
                let args = PartitionEvaluatorArgs::new(&exprs, &fields, false, false);
                let mut evaluator = function.partition_evaluator(args).expect("evaluator");
                for row in 0..EVENTS_PER_USER {
                    black_box(evaluator.evaluate(v, &(row..row + 1)).expect("evaluate"));
                }
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("sessionize_10M");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("kernel", |b| {
        let strings = |a: &ArrayRef| {
            a.as_any()
                .downcast_ref::<StringViewArray>()
                .expect("strings")
                .clone()
        };
        let columns: Vec<_> = data
            .iter()
            .map(|p| {
                let times = p.columns[0]
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .expect("times")
                    .clone();
                (
                    times,
                    strings(&p.columns[1]),
                    strings(&p.columns[2]),
                    strings(&p.columns[3]),
                    strings(&p.columns[4]),
                    strings(&p.columns[5]),
                )
            })
            .collect();
        b.iter(|| {
            for (times, users, apps, tabs, types, ids) in &columns {
                let mut sessionizer = Sessionizer::new(Rule::new(TimeUnit::Microsecond));
                for row in 0..EVENTS_PER_USER {
                    let event = Event {
                        time: times.value(row),
                        account_id: None,
                        user_id: Some(users.value(row)),
                        app_id: Some(apps.value(row)),
                        tab_id: Some(tabs.value(row)),
                        event_type: Some(types.value(row)),
                        event_id: Some(ids.value(row)),
                        timeout_nanos: 300 * 1_000_000_000,
                    };
                    black_box(sessionizer.push(&event).expect("ordered"));
                }
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
