//! `queries/sessions.sql` over the sample data in `data/` gives exactly the reference's sessions.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::prelude::{ParquetReadOptions, SessionConfig};
use dwell_session::kernel::Rule;
use dwell_session::reference::{self, RefEvent, RefSession};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn text(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let column =
        cast(batch.column_by_name(name).expect("column"), &DataType::Utf8).expect("to text");
    let column = column.as_string::<i32>();
    (!column.is_null(row)).then(|| column.value(row).to_owned())
}

fn micros(batch: &RecordBatch, name: &str, row: usize) -> Option<i64> {
    let column = cast(
        batch.column_by_name(name).expect("column"),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )
    .expect("to micros");
    let column = column.as_primitive::<TimestampMicrosecondType>();
    (!column.is_null(row)).then(|| column.value(row))
}

#[tokio::test]
async fn sample_sessions_match_reference() {
    let ctx = dwell_engine::session_context(SessionConfig::new()).expect("context");
    let events_dir = root().join("data/events/");
    ctx.register_parquet(
        "events",
        events_dir.to_str().expect("utf-8 path"),
        ParquetReadOptions::default(),
    )
    .await
    .expect("sample data");

    let events: Vec<RefEvent> = ctx
        .sql("SELECT * FROM events")
        .await
        .expect("scan")
        .collect()
        .await
        .expect("scan")
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| {
                let app_id = text(b, "app_id", r);
                RefEvent {
                    time: micros(b, "event_time", r),
                    account_id: text(b, "account_id", r),
                    user_id: text(b, "user_id", r),
                    tab_id: text(b, "tab_id", r),
                    event_type: text(b, "event_type", r),
                    event_id: text(b, "event_id", r),
                    timeout_nanos: (app_id.as_deref() == Some("crm")).then_some(300_000_000_000),
                    app_id,
                }
            })
        })
        .collect();
    let expected = reference::sessions(&events, &Rule::new(TimeUnit::Microsecond));
    assert!(
        expected.len() > 10,
        "the sample should have a good number of sessions"
    );

    let sql =
        std::fs::read_to_string(root().join("queries/sessions.sql")).expect("queries/sessions.sql");
    let batches = ctx
        .sql(&sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let mut got = Vec::new();
    for b in &batches {
        let seq = b
            .column_by_name("session_seq")
            .expect("seq")
            .as_primitive::<Int64Type>();
        let count = b
            .column_by_name("event_count")
            .expect("count")
            .as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            got.push(RefSession {
                session_id: text(b, "session_id", r).expect("id"),
                account_id: text(b, "account_id", r),
                user_id: text(b, "user_id", r).expect("user"),
                app_id: text(b, "app_id", r),
                tab_id: text(b, "tab_id", r),
                session_seq: seq.value(r),
                start_time: micros(b, "start_time", r).expect("start"),
                end_time: micros(b, "end_time", r).expect("end"),
                event_count: count.value(r),
                end_reason: text(b, "end_reason", r)
                    .expect("reason")
                    .parse()
                    .expect("known reason"),
            });
        }
    }
    assert_eq!(got, expected);
}
