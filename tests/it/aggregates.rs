//! dwell's `count` (grouped `count(DISTINCT x)` over strings and dates) gives what DataFusion's
//! own `count` gives, on random tables: every string encoding, NULLs in keys and values, 1 to 4
//! target partitions, small batches, input declared sorted by the grouping keys (so the
//! aggregate emits groups as it goes, `EmitTo::First`), partial aggregation skipped (so the
//! state comes from `convert_to_state`), FILTER clauses, and the forms DataFusion rewrites
//! (one distinct column alone, no grouping, a window).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Date64Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
    StringViewArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::SortExpr;
use datafusion::logical_expr::registry::FunctionRegistry;
use datafusion::prelude::{SessionConfig, SessionContext, col};
use proptest::prelude::*;

/// One row: group key, second key, string value, date, timestamp-like date.
type Row = (
    Option<String>,
    i64,
    Option<String>,
    Option<i32>,
    Option<i64>,
);

#[derive(Debug, Clone)]
struct Layout {
    target_partitions: usize,
    batch_size: usize,
    mem_partitions: usize,
    encoding: DataType,
    /// Rows sorted by (g, k) and the table declared so.
    sorted: bool,
    /// Partial aggregation gives up at once and passes rows on as state.
    skip_partial: bool,
}

prop_compose! {
    fn layout()(
        target_partitions in 1..5usize,
        batch_size in 1..50usize,
        mem_partitions in 1..4usize,
        encoding in prop_oneof![
            Just(DataType::Utf8), Just(DataType::LargeUtf8), Just(DataType::Utf8View)],
        sorted in any::<bool>(),
        skip_partial in any::<bool>(),
    ) -> Layout {
        Layout { target_partitions, batch_size, mem_partitions, encoding, sorted, skip_partial }
    }
}

fn rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec(
        (
            prop::option::weighted(0.9, "[a-e]"),
            0..4_i64,
            prop::option::weighted(0.8, "[xyz]{0,2}|a longer value than twelve bytes [0-3]"),
            prop::option::weighted(0.8, 19_000..19_006_i32),
            prop::option::weighted(0.8, (0..5_i64).prop_map(|d| d * 86_400_000)),
        ),
        0..120,
    )
}

fn strings(values: impl Iterator<Item = Option<String>>, encoding: &DataType) -> ArrayRef {
    let values: Vec<Option<String>> = values.collect();
    let values = values.iter().map(Option::as_deref);
    match encoding {
        DataType::Utf8 => Arc::new(values.collect::<StringArray>()),
        DataType::LargeUtf8 => Arc::new(values.collect::<LargeStringArray>()),
        _ => Arc::new(values.collect::<StringViewArray>()),
    }
}

fn table(rows: &[Row], layout: &Layout) -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("g", layout.encoding.clone(), true),
        Field::new("k", DataType::Int64, false),
        Field::new("s", layout.encoding.clone(), true),
        Field::new("d", DataType::Date32, true),
        Field::new("t", DataType::Date64, true),
    ]));
    let mut rows = rows.to_vec();
    if layout.sorted {
        // ASC NULLS LAST, as declared below.
        rows.sort_by(|a, b| (a.0.is_none(), &a.0, a.1).cmp(&(b.0.is_none(), &b.0, b.1)));
    }
    let batch = |rows: &[Row]| {
        RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                strings(rows.iter().map(|r| r.0.clone()), &layout.encoding),
                Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
                strings(rows.iter().map(|r| r.2.clone()), &layout.encoding),
                Arc::new(rows.iter().map(|r| r.3).collect::<Date32Array>()),
                Arc::new(rows.iter().map(|r| r.4).collect::<Date64Array>()),
            ],
        )
        .expect("batch")
    };
    // Sorted: one partition, so the declared order holds; otherwise rows dealt round-robin.
    let partitions: Vec<Vec<RecordBatch>> = if layout.sorted {
        vec![rows.chunks(7).map(batch).collect()]
    } else {
        (0..layout.mem_partitions)
            .map(|p| {
                let mine: Vec<Row> = rows
                    .iter()
                    .skip(p)
                    .step_by(layout.mem_partitions)
                    .cloned()
                    .collect();
                mine.chunks(5).map(batch).collect()
            })
            .collect()
    };
    let table = MemTable::try_new(schema, partitions).expect("table");
    if layout.sorted {
        // ASC NULLS LAST: `SortExpr::new(expr, asc, nulls_first)`.
        let order: Vec<SortExpr> = ["g", "k"]
            .iter()
            .map(|c| SortExpr::new(col(*c), true, false))
            .collect();
        table.with_sort_order(vec![order])
    } else {
        table
    }
}

const QUERIES: [&str; 6] = [
    "SELECT g, k, count(DISTINCT s) AS a, count(DISTINCT d) AS b, count(DISTINCT t) AS c,
            count(*) AS n, count(s) AS m FROM t GROUP BY g, k",
    "SELECT g, count(DISTINCT s) FILTER (WHERE k > 1) AS a, count(DISTINCT d) FILTER (WHERE k < 2) AS b,
            sum(k) AS total FROM t GROUP BY g",
    "SELECT k, count(DISTINCT g) AS a, count(DISTINCT s) AS b, median(k) AS m FROM t GROUP BY k",
    "SELECT g, count(DISTINCT s) AS a FROM t GROUP BY g",
    "SELECT count(DISTINCT s) AS a, count(DISTINCT d) AS b, count(*) AS n FROM t",
    "SELECT g, k, count(DISTINCT s) OVER (PARTITION BY g) AS a FROM t",
];

async fn answers(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let shown = arrow::util::pretty::pretty_format_batches(&batches)
        .expect("format")
        .to_string();
    // Rows in any order; the header and borders sort among them harmlessly.
    let mut lines: Vec<String> = shown.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

async fn compare(rows: &[Row], layout: &Layout) {
    let mut config = SessionConfig::new()
        .with_target_partitions(layout.target_partitions)
        .with_batch_size(layout.batch_size);
    if layout.skip_partial {
        let options = config.options_mut();
        options
            .execution
            .skip_partial_aggregation_probe_rows_threshold = 1;
        options
            .execution
            .skip_partial_aggregation_probe_ratio_threshold = 0.0;
    }
    let dwell = dwell_engine::session_context(config.clone()).expect("dwell context");
    let plain = SessionContext::new_with_config(config);
    for ctx in [&dwell, &plain] {
        ctx.register_table("t", Arc::new(table(rows, layout)))
            .expect("register");
    }
    for sql in QUERIES {
        assert_eq!(
            answers(&dwell, sql).await,
            answers(&plain, sql).await,
            "{sql} under {layout:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn dwell_count_equals_datafusion_count(rows in rows(), layout in layout()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(compare(&rows, &layout));
    }
}

/// The engine's contexts plan `count` with dwell's, whose grouped distinct path the property
/// test above compares with DataFusion's.
#[test]
fn engine_contexts_use_dwells_count() {
    let ctx = dwell_engine::session_context(SessionConfig::new()).expect("context");
    let count = ctx.udaf("count").expect("count");
    let inner: &dyn std::any::Any = count.inner().as_ref();
    assert!(
        inner
            .downcast_ref::<dwell_session::count_distinct::Count>()
            .is_some(),
        "count is {:?}",
        count.inner()
    );
}
