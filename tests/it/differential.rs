//! Differential test of the views: random generated data, stored in different file layouts
//! (as ingest lands it, shuffled into many small files in nested folders, one big file) and
//! queried with different `target_partitions`, batch sizes and with or without a memory limit,
//! gives the reference's sessions, and the same metric views as the ingest layout.

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take};
use datafusion::prelude::SessionConfig;
use dwell_engine::{DataLocation, Engine, GenerateOptions, Settings};
use proptest::prelude::*;

use crate::support::{expected_sessions, query, reference_events, view_sessions};
use crate::writers::write_parquet;

/// How the same events are stored.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// As `dwell ingest` lands them: one file per UTC day, rows sorted.
    Ingested,
    /// Rows shuffled into files of at most `rows` rows, spread over nested folders.
    ShuffledFiles { rows: usize },
    /// All rows, shuffled, in one file.
    OneFile,
    /// Rows shuffled into files of at most `rows` rows, each written as another writer would:
    /// a random timestamp unit (one that holds its times exactly) and zone, random string
    /// encodings, columns in a random order.
    ForeignWriters { rows: usize },
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::Ingested),
        (1usize..400).prop_map(|rows| Layout::ShuffledFiles { rows }),
        Just(Layout::OneFile),
        (1usize..400).prop_map(|rows| Layout::ForeignWriters { rows }),
    ]
}

/// A permutation of `0..n` from a seed (a small LCG: reproducible per proptest case).
fn shuffled(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut state = seed
        .wrapping_mul(2_862_933_555_777_941_757)
        .wrapping_add(3_037_000_493);
    for i in (1..n).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (state >> 33) as usize % (i + 1);
        order.swap(i, j);
    }
    order
}

/// Stores `events` under `root/events/` in `layout` (not through ingest: these are files some
/// other tool wrote, which the engine reads as they are).
fn store(root: &std::path::Path, events: &RecordBatch, layout: Layout, seed: u64) {
    let order = UInt32Array::from(shuffled(events.num_rows(), seed));
    let columns = events
        .columns()
        .iter()
        .map(|c| take(c, &order, None).expect("take"))
        .collect();
    let shuffled = RecordBatch::try_new(events.schema(), columns).expect("shuffled");
    match layout {
        Layout::Ingested => unreachable!("landed by ingest"),
        Layout::OneFile => write_parquet(&root.join("events/all.parquet"), &shuffled),
        Layout::ForeignWriters { rows } => {
            let mut start = 0;
            let mut file = 0;
            while start < shuffled.num_rows() {
                let len = rows.min(shuffled.num_rows() - start);
                let chunk = as_another_writer(&shuffled.slice(start, len), seed ^ file);
                write_parquet(
                    &root.join(format!("events/w{}/f-{file:05}.parquet", file % 4)),
                    &chunk,
                );
                start += len;
                file += 1;
            }
        }
        Layout::ShuffledFiles { rows } => {
            let mut start = 0;
            let mut file = 0;
            while start < shuffled.num_rows() {
                let len = rows.min(shuffled.num_rows() - start);
                let folder = format!("events/part{}/sub{}", file % 3, file % 2);
                write_parquet(
                    &root.join(folder).join(format!("chunk-{file:05}.parquet")),
                    &shuffled.slice(start, len),
                );
                start += len;
                file += 1;
            }
        }
    }
}

/// `batch` (canonical types) as a random other writer writes it: the same instants and texts.
fn as_another_writer(batch: &RecordBatch, seed: u64) -> RecordBatch {
    use crate::writers::{UNITS, ZONES, nanos_per};
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Field, Schema, TimestampNanosecondType};
    let mut draw = shuffled(64, seed).into_iter().cycle();
    let mut pick = |n: usize| draw.next().expect("cycle") as usize % n;
    let times = batch
        .column_by_name("event_time")
        .expect("event_time")
        .as_primitive::<TimestampNanosecondType>();
    // The coarsest unit that holds every time of the file exactly, or any finer one.
    let exact: Vec<_> = UNITS
        .iter()
        .filter(|&&unit| {
            (0..times.len()).all(|r| times.is_null(r) || times.value(r) % nanos_per(unit) == 0)
        })
        .collect();
    let unit = *exact[pick(exact.len())];
    let zone = ZONES[pick(ZONES.len())];
    let mut columns: Vec<(Field, arrow::array::ArrayRef)> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let target = match field.data_type() {
            DataType::Timestamp(..) => DataType::Timestamp(unit, zone.map(Into::into)),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => match pick(4) {
                0 => DataType::Utf8,
                1 => DataType::LargeUtf8,
                2 => DataType::Utf8View,
                _ => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            },
            other => other.clone(),
        };
        let converted = arrow::compute::cast(column, &target).expect("another writer's type");
        columns.push((Field::new(field.name(), target, true), converted));
    }
    let order = shuffled(columns.len(), seed.rotate_left(7));
    let (fields, arrays): (Vec<_>, Vec<_>) =
        order.iter().map(|&i| columns[i as usize].clone()).unzip();
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), arrays).expect("batch")
}

/// The rows of a metric view, as sorted text: what two layouts must agree on.
async fn dump(engine: &Engine, sql: &str) -> Vec<String> {
    let batches = query(engine, sql).await;
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, row).expect("display"))
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows.sort();
    rows
}

const METRICS: [&str; 3] = [
    "SELECT day, account_id, app_id, sessions, users, round(total_session_seconds, 6), \
     round(median_session_seconds, 6) FROM daily_session_metrics",
    "SELECT account_id, user_id, sessions, active_days, round(total_session_seconds, 6), \
     apps_used FROM user_session_stats",
    "SELECT account_id, user_id, segment FROM user_segments",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn views_agree_across_layouts_partitions_batches_and_memory_limits(
        seed in 0u64..10_000,
        events in 300u64..3_000,
        users in 3u64..90,
        days in 1u32..5,
        layout in layout(),
        partitions in 1usize..6,
        batch_size in prop_oneof![Just(1usize), 2usize..100, Just(8192usize)],
        memory_limited in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let options = GenerateOptions { events, users, days, seed, ..GenerateOptions::default() };
            let dir = tempfile::tempdir().expect("tempdir");
            let landed_at = dir.path().join("landed");
            let landed = Engine::builder(DataLocation::parse(landed_at.to_str().expect("utf-8")).expect("loc"))
                .create_if_missing(true)
                .build()
                .await
                .expect("engine");
            landed.generate(&options, &|_| {}).await.expect("generate");
            let settings: Settings = landed.settings();

            let other_at = if let Layout::Ingested = layout {
                landed_at.clone()
            } else {
                let other = dir.path().join("other");
                let batches = query(
                    &landed,
                    "SELECT event_time, account_id, user_id, app_id, tab_id, event_type, event_id FROM events",
                )
                .await;
                let schema = batches.first().expect("events").schema();
                let all = concat_batches(&schema, &batches).expect("concat");
                store(&other, &all, layout, seed);
                other
            };
            let mut config = SessionConfig::new()
                .with_target_partitions(partitions)
                .with_batch_size(batch_size);
            config.options_mut().execution.sort_spill_reservation_bytes = 64 * 1024;
            let engine = Engine::builder(DataLocation::parse(other_at.to_str().expect("utf-8")).expect("loc"))
                .with_config(config)
                .with_settings(settings.clone())
                .with_memory_limit(memory_limited.then_some(256 << 20))
                .build()
                .await
                .expect("engine");

            let reference = expected_sessions(&reference_events(&engine, &settings).await, &settings);
            let got = view_sessions(&engine).await;
            prop_assert_eq!(got.len(), reference.len(), "number of sessions");
            for (g, e) in got.iter().zip(&reference) {
                prop_assert_eq!(g, e);
            }
            for sql in METRICS {
                prop_assert_eq!(dump(&engine, sql).await, dump(&landed, sql).await, "{}", sql);
            }
            Ok(())
        })?;
    }
}
