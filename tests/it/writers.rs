//! Event files from other writers (SESSIONS.md §1): every timestamp unit, zoned and zone-less,
//! every string encoding, optional columns present in some files only, any column order, in
//! flat, hive and nested layouts. The engine reads them all into its one `events` schema and
//! answers as the reference does on the events as they were meant; ingest into such a location
//! lands in the canonical types; columns that cannot be read are refused by file and column.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, StructArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use dwell_engine::events::{event_time_type, events_schema};
use dwell_engine::{DataLocation, Engine, IngestId, Settings};
use dwell_session::reference::RefEvent;

use crate::support::{Expected, expected_sessions, query, view_sessions};

/// One event as it is meant: nanoseconds since the epoch (UTC) and text.
#[derive(Debug, Clone)]
pub(crate) struct Meant {
    pub(crate) time_ns: i64,
    pub(crate) account: Option<String>,
    pub(crate) user: String,
    pub(crate) app: Option<String>,
    pub(crate) tab: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) id: Option<String>,
}

/// How one file writes its columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Physical {
    pub(crate) unit: TimeUnit,
    /// `None`: zone-less; otherwise the zone the writer put on the column (the instant is the
    /// same: Arrow stores UTC).
    pub(crate) zone: Option<&'static str>,
    /// One of Utf8, LargeUtf8, Utf8View, dictionary (by index), for each string column.
    pub(crate) strings: [usize; 6],
    pub(crate) with_account: bool,
    pub(crate) with_event_id: bool,
    /// Columns written in reverse order.
    pub(crate) reversed: bool,
}

pub(crate) const UNITS: [TimeUnit; 4] = [
    TimeUnit::Second,
    TimeUnit::Millisecond,
    TimeUnit::Microsecond,
    TimeUnit::Nanosecond,
];
pub(crate) const ZONES: [Option<&str>; 4] =
    [None, Some("UTC"), Some("America/New_York"), Some("+05:30")];

pub(crate) fn nanos_per(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

fn string_column(values: Vec<Option<String>>, encoding: usize) -> ArrayRef {
    let plain: ArrayRef = Arc::new(StringArray::from(values));
    let target = match encoding % 4 {
        0 => return plain,
        1 => DataType::LargeUtf8,
        2 => DataType::Utf8View,
        _ => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
    };
    cast(&plain, &target).expect("string encoding")
}

/// `events` written as `physical` writes them. Times must be whole multiples of its unit;
/// an optional column it leaves out must be NULL in every event.
pub(crate) fn file_batch(events: &[Meant], physical: &Physical) -> RecordBatch {
    let per = nanos_per(physical.unit);
    let ticks: Vec<i64> = events
        .iter()
        .map(|e| {
            assert_eq!(e.time_ns % per, 0, "a time this unit cannot hold");
            e.time_ns / per
        })
        .collect();
    let times = Arc::new(Int64Array::from(ticks)) as ArrayRef;
    let times = cast(&times, &DataType::Timestamp(physical.unit, None)).expect("ticks");
    let times = match physical.zone {
        // Same instants, another zone on the column (a cast between zones keeps them).
        Some(zone) => cast(
            &times,
            &DataType::Timestamp(physical.unit, Some("UTC".into())),
        )
        .and_then(|t| cast(&t, &DataType::Timestamp(physical.unit, Some(zone.into()))))
        .expect("zone"),
        None => times,
    };
    let text = |f: &dyn Fn(&Meant) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    let mut columns: Vec<(&str, ArrayRef)> = vec![("event_time", times)];
    let strings = physical.strings;
    if physical.with_account {
        columns.push((
            "account_id",
            string_column(text(&|e| e.account.clone()), strings[0]),
        ));
    } else {
        assert!(
            events.iter().all(|e| e.account.is_none()),
            "accounts left out"
        );
    }
    columns.push((
        "user_id",
        string_column(text(&|e| Some(e.user.clone())), strings[1]),
    ));
    columns.push((
        "app_id",
        string_column(text(&|e| e.app.clone()), strings[2]),
    ));
    columns.push((
        "tab_id",
        string_column(text(&|e| e.tab.clone()), strings[3]),
    ));
    columns.push((
        "event_type",
        string_column(text(&|e| e.kind.clone()), strings[4]),
    ));
    if physical.with_event_id {
        columns.push((
            "event_id",
            string_column(text(&|e| e.id.clone()), strings[5]),
        ));
    } else {
        assert!(events.iter().all(|e| e.id.is_none()), "event ids left out");
    }
    if physical.reversed {
        columns.reverse();
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch")
}

pub(crate) fn write_parquet(path: &std::path::Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().expect("folder")).expect("folders");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).expect("file"),
        batch.schema(),
        None,
    )
    .expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
}

pub(crate) fn reference_of(events: &[Meant], settings: &Settings) -> Vec<RefEvent> {
    events
        .iter()
        .map(|e| RefEvent {
            time: Some(e.time_ns),
            account_id: e.account.clone(),
            user_id: Some(e.user.clone()),
            app_id: e.app.clone(),
            tab_id: e.tab.clone(),
            event_type: e.kind.clone(),
            event_id: e.id.clone(),
            timeout_nanos: Some(
                e.app
                    .as_deref()
                    .map_or(settings.default_timeout, |a| settings.timeout_of(a))
                    .as_nanos() as i64,
            ),
        })
        .collect()
}

/// Sessions in one order, whatever order each side listed them in.
pub(crate) fn sorted(mut sessions: Vec<Expected>) -> Vec<Expected> {
    sessions.sort_by(|a, b| {
        (&a.account_id, &a.user_id, a.session_seq).cmp(&(&b.account_id, &b.user_id, b.session_seq))
    });
    sessions
}

/// A small LCG: the same events on every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

const KINDS: [Option<&str>; 8] = [
    Some("page_view"),
    Some("page_view"),
    Some("user_action"),
    Some("content_engagement"),
    Some("tab_open"),
    Some("tab_close"),
    Some("tab_hidden"),
    None,
];

/// Events of one file: four users whose timelines run through every file, gaps near the
/// timeouts, times on the file's unit (so a seconds file holds whole seconds).
fn file_events(file: usize, physical: &Physical, draw: &mut Draw) -> Vec<Meant> {
    // 2026-03-01 08:00:00 UTC
    const BASE_NS: i64 = 1_772_352_000 * 1_000_000_000;
    let per = nanos_per(physical.unit);
    (0..40)
        .map(|row| {
            let user = draw.next(4);
            // Each file's events fall into the same six hours, so files interleave in time.
            let offset = draw.next(6 * 3_600_000_000) as i64 * 1_000 + draw.next(1_000) as i64;
            let time_ns = (BASE_NS + offset) / per * per;
            let account = (physical.with_account && user.is_multiple_of(2))
                .then(|| format!("acct{}", user % 3));
            Meant {
                time_ns,
                account,
                user: format!("u{user}"),
                app: [Some("A"), Some("B"), None][draw.next(3) as usize].map(str::to_owned),
                tab: [Some("t1"), Some("t1"), Some("t2"), None][draw.next(4) as usize]
                    .map(str::to_owned),
                kind: KINDS[draw.next(KINDS.len() as u64) as usize].map(str::to_owned),
                // Ids repeat within a user now and then (duplicates), across files too.
                id: physical
                    .with_event_id
                    .then(|| format!("e{}-{}", user, (file * 40 + row) as u64 % 97 % 60)),
            }
        })
        .collect()
}

/// Sixteen files: every unit with every zone, string encodings and optional columns varied.
fn writers() -> Vec<Physical> {
    let mut out = Vec::new();
    for (u, unit) in UNITS.iter().enumerate() {
        for (z, zone) in ZONES.iter().enumerate() {
            let k = u * 4 + z;
            out.push(Physical {
                unit: *unit,
                zone: *zone,
                strings: [k, k + 1, k + 2, k + 3, k + 1, k + 2],
                with_account: k % 3 != 1,
                with_event_id: k % 4 != 2,
                reversed: k % 2 == 1,
            });
        }
    }
    out
}

fn settings() -> Settings {
    Settings::parse(
        "default_timeout = \"30m\"\n[app_timeouts]\nB = \"5m\"\n",
        "dwell.toml",
    )
    .expect("settings")
}

#[derive(Debug, Clone, Copy)]
enum Layout {
    Flat,
    Hive,
    Nested,
}

/// Writes the files of every writer under `root/events/` in `layout`; returns every event.
fn write_location(root: &std::path::Path, layout: Layout) -> Vec<Meant> {
    let mut draw = Draw(42);
    let mut all = Vec::new();
    for (file, physical) in writers().iter().enumerate() {
        let events = file_events(file, physical, &mut draw);
        let folder = match layout {
            Layout::Flat => "events".to_owned(),
            Layout::Hive => format!("events/date=2026-03-0{}", 1 + file % 2),
            Layout::Nested => format!("events/writer{}/part{}", file % 3, file % 2),
        };
        write_parquet(
            &root.join(folder).join(format!("f-{file:02}.parquet")),
            &file_batch(&events, physical),
        );
        all.extend(events);
    }
    all
}

async fn events_table_schema(engine: &Engine) -> arrow::datatypes::SchemaRef {
    engine
        .context()
        .table_provider("events")
        .await
        .expect("events")
        .schema()
}

async fn open(root: &std::path::Path) -> dwell_engine::Result<Engine> {
    Engine::builder(DataLocation::parse(root.to_str().expect("utf-8")).expect("location"))
        .with_settings(settings())
        .build()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_any_writer_are_read_into_one_schema_and_sessionized_exactly() {
    for layout in [Layout::Flat, Layout::Hive, Layout::Nested] {
        let dir = tempfile::tempdir().expect("tempdir");
        let meant = write_location(dir.path(), layout);
        let engine = open(dir.path())
            .await
            .expect("a location of mixed writers opens");

        // The canonical schema, whatever the files hold.
        let schema = events_table_schema(&engine).await;
        for field in events_schema(&DataType::Utf8View).fields() {
            let got = schema
                .field_with_name(field.name())
                .expect("canonical column");
            assert_eq!(
                got.data_type(),
                field.data_type(),
                "{layout:?}: {}",
                field.name()
            );
        }
        let rows = query(&engine, "SELECT count(*) AS n FROM events").await;
        assert_eq!(
            crate::support::ints(&rows, "n"),
            vec![Some(meant.len() as i64)]
        );

        let expected = sorted(expected_sessions(
            &reference_of(&meant, &settings()),
            &settings(),
        ));
        let got = sorted(view_sessions(&engine).await);
        assert_eq!(got.len(), expected.len(), "{layout:?}: sessions");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e, "{layout:?}");
        }
        for view in [
            "daily_session_metrics",
            "user_session_stats",
            "user_segments",
        ] {
            query(&engine, &format!("SELECT * FROM {view}")).await;
        }

        let extra = ingest_as_clients_send(&engine, dir.path(), layout).await;
        let mut all = meant.clone();
        all.extend(extra);
        let expected = sorted(expected_sessions(
            &reference_of(&all, &settings()),
            &settings(),
        ));
        let got = sorted(view_sessions(&engine).await);
        assert_eq!(got, expected, "{layout:?}: after ingest");
    }
}

/// Ingest into a location of other writers' files: batches typed as ADBC and pandas send them
/// (nanoseconds without a zone; seconds with an offset zone and large strings) land, in the
/// canonical types. Returns the events ingested.
async fn ingest_as_clients_send(
    engine: &Engine,
    root: &std::path::Path,
    layout: Layout,
) -> Vec<Meant> {
    let mut extra = Vec::new();
    for (i, (unit, zone)) in [
        (TimeUnit::Nanosecond, None),
        (TimeUnit::Second, Some("+05:30")),
    ]
    .into_iter()
    .enumerate()
    {
        let physical = Physical {
            unit,
            zone,
            strings: [i, i + 1, i, i + 1, i, i + 1],
            with_account: true,
            with_event_id: true,
            reversed: i == 1,
        };
        let events = file_events(100 + i, &physical, &mut Draw(7 + i as u64));
        let batch = file_batch(&events, &physical);
        engine
            .ingest_batches(
                "adbc",
                &IngestId::of_batches(std::slice::from_ref(&batch)).expect("id"),
                &batch.schema(),
                &[batch],
            )
            .await
            .unwrap_or_else(|e| panic!("{layout:?}: ingest {unit:?} {zone:?}: {e}"));
        extra.extend(events);
    }
    let landed: Vec<_> = walk(root)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
        })
        .collect();
    assert!(!landed.is_empty(), "ingest landed files");
    for path in landed {
        let file = std::fs::File::open(&path).expect("landed file");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet");
        let time = reader
            .schema()
            .field_with_name("event_time")
            .expect("time")
            .clone();
        assert_eq!(time.data_type(), &event_time_type(), "{}", path.display());
    }
    extra
}

fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_that_cannot_be_read_as_its_type_is_refused_by_file_and_column() {
    let good = Physical {
        unit: TimeUnit::Millisecond,
        zone: None,
        strings: [0; 6],
        with_account: true,
        with_event_id: true,
        reversed: false,
    };
    let events = file_events(0, &good, &mut Draw(1));
    let batch = file_batch(&events, &good);
    let n = batch.num_rows();
    let replace = |name: &str, array: ArrayRef| {
        let index = batch.schema().index_of(name).expect("column");
        let mut columns = batch.columns().to_vec();
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        columns[index] = Arc::clone(&array);
        fields[index] = Field::new(name, array.data_type().clone(), true);
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
    };
    let struct_user: ArrayRef = Arc::new(StructArray::from(vec![(
        Arc::new(Field::new("id", DataType::Utf8, true)),
        Arc::new(StringArray::from(vec![Some("u1"); n])) as ArrayRef,
    )]));
    let text_time: ArrayRef = Arc::new(StringArray::from(vec![Some("2026-03-01T08:00:00"); n]));
    let without_tab = batch.project(&[0, 1, 2, 3, 5, 6]).expect("no tab_id");
    for (file, bad, column) in [
        (
            "struct-user.parquet",
            replace("user_id", struct_user),
            "user_id",
        ),
        (
            "text-time.parquet",
            replace("event_time", text_time),
            "event_time",
        ),
        ("no-tab.parquet", without_tab, "tab_id"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        write_parquet(&dir.path().join("events/good.parquet"), &batch);
        write_parquet(&dir.path().join("events/sub").join(file), &bad);
        let error = open(dir.path()).await.expect_err("refused").to_string();
        assert!(
            error.contains(file) && error.contains(column),
            "{file}: {error}"
        );
        // Nothing was lost: the good file alone still opens.
        std::fs::remove_file(dir.path().join("events/sub").join(file)).expect("remove");
        open(dir.path()).await.expect("the good file alone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_columns_are_kept_where_their_files_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let physical = Physical {
        unit: TimeUnit::Microsecond,
        zone: Some("UTC"),
        strings: [0; 6],
        with_account: false,
        with_event_id: false,
        reversed: false,
    };
    let mut draw = Draw(3);
    for (i, url_type, weird_type) in [
        (0, DataType::Utf8, DataType::Int64),
        (
            1,
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            DataType::Utf8,
        ),
    ] {
        let events = file_events(i, &physical, &mut draw);
        let batch = file_batch(&events, &physical);
        let n = batch.num_rows();
        let url = cast(
            &(Arc::new(StringArray::from(vec![Some("/home"); n])) as ArrayRef),
            &url_type,
        )
        .expect("url");
        let weird = cast(
            &(Arc::new(Int64Array::from(vec![Some(7); n])) as ArrayRef),
            &weird_type,
        )
        .expect("weird");
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("page_url", url_type, true));
        fields.push(Field::new("weird", weird_type, true));
        let mut columns = batch.columns().to_vec();
        columns.push(url);
        columns.push(weird);
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");
        write_parquet(&dir.path().join(format!("events/f{i}.parquet")), &batch);
    }
    let engine = open(dir.path()).await.expect("opens");
    let schema = events_table_schema(&engine).await;
    assert_eq!(
        schema
            .field_with_name("page_url")
            .expect("kept")
            .data_type(),
        &DataType::Utf8View
    );
    assert!(
        schema.field_with_name("weird").is_err(),
        "files disagree on its type"
    );
    let urls = query(&engine, "SELECT DISTINCT page_url FROM events").await;
    assert_eq!(
        crate::support::texts(&urls, "page_url"),
        vec![Some("/home".to_owned())]
    );
}
