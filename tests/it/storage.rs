//! Data locations, ingest (formats, validation, atomicity, idempotence), hive pruning and
//! settings, on local folders, in memory and on a real S3 API.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use dwell_engine::{DataLocation, Engine, Error, Settings};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;

use crate::support::{ints, query, texts};

/// Six events of two users over two UTC days (the second user's in +02:00 local time).
fn sample_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+02:00".into())),
            true,
        ),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("app_id", DataType::Utf8, true),
        Field::new("tab_id", DataType::Utf8, true),
        Field::new("event_type", DataType::Utf8, true),
        Field::new("event_id", DataType::Utf8, true),
        Field::new("page_url", DataType::Utf8, true),
    ]));
    // 2026-11-02T10:00:00Z and onwards; the last two cross into 2026-11-03 UTC.
    let base = 1_793_613_600_000_i64;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from(vec![
                base,
                base + 60_000,
                base + 120_000,
                base + 7_200_000,
                base + 50_400_000,
                base + 50_460_000,
            ])
            .with_timezone("+02:00"),
        ),
        Arc::new(StringArray::from(vec!["u2", "u1", "u2", "u1", "u1", "u2"])),
        Arc::new(StringArray::from(vec!["crm"; 6])),
        Arc::new(StringArray::from(vec![
            Some("t1"),
            Some("t1"),
            None,
            Some("t1"),
            Some("t2"),
            Some("t1"),
        ])),
        Arc::new(StringArray::from(vec![
            "tab_open",
            "page_view",
            "user_action",
            "page_view",
            "tab_close",
            "page_view",
        ])),
        Arc::new(StringArray::from(vec!["e1", "e2", "e3", "e4", "e5", "e6"])),
        Arc::new(StringArray::from(vec!["/a", "/b", "/c", "/d", "/e", "/f"])),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

const SAMPLE_CSV: &str = "event_time,user_id,app_id,tab_id,event_type,event_id,page_url
2026-11-02T12:00:00+02:00,u2,crm,t1,tab_open,e1,/a
2026-11-02T10:01:00Z,u1,crm,t1,page_view,e2,/b
2026-11-02T10:02:00Z,u2,crm,,user_action,e3,/c
2026-11-02T12:00:00Z,u1,crm,t1,page_view,e4,/d
2026-11-03T00:00:00Z,u1,crm,t2,tab_close,e5,/e
2026-11-03T00:01:00Z,u2,crm,t1,page_view,e6,/f
";

const SAMPLE_JSONL: &str = r#"{"event_time": "2026-11-02T10:00:00Z", "user_id": "u2", "app_id": "crm", "tab_id": "t1", "event_type": "tab_open", "event_id": "e1", "page_url": "/a"}
{"event_time": "2026-11-02T10:01:00Z", "user_id": "u1", "app_id": "crm", "tab_id": "t1", "event_type": "page_view", "event_id": "e2", "page_url": "/b"}
{"event_time": "2026-11-02T10:02:00Z", "user_id": "u2", "app_id": "crm", "tab_id": null, "event_type": "user_action", "event_id": "e3", "page_url": "/c"}
{"event_time": "2026-11-02T12:00:00Z", "user_id": "u1", "app_id": "crm", "tab_id": "t1", "event_type": "page_view", "event_id": "e4", "page_url": "/d"}
{"event_time": "2026-11-03T00:00:00Z", "user_id": "u1", "app_id": "crm", "tab_id": "t2", "event_type": "tab_close", "event_id": "e5", "page_url": "/e"}
{"event_time": "2026-11-03T00:01:00Z", "user_id": "u2", "app_id": "crm", "tab_id": "t1", "event_type": "page_view", "event_id": "e6", "page_url": "/f"}
"#;

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).expect("create");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
}

/// Every object under a location, for "nothing was written" checks.
async fn objects(engine: &Engine) -> BTreeSet<String> {
    let location = engine.location();
    location
        .store()
        .list(Some(location.root()))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list")
}

async fn local_engine(dir: &Path) -> Engine {
    Engine::builder(DataLocation::parse(dir.to_str().expect("utf-8")).expect("location"))
        .create_if_missing(true)
        .build()
        .await
        .expect("engine")
}

/// What the sample holds, as the views see it: (user, `event_id`, UTC nanos), sorted.
async fn landed_events(engine: &Engine) -> Vec<(Option<String>, Option<String>, Option<i64>)> {
    let b = query(
        engine,
        "SELECT user_id, event_id, event_time FROM events ORDER BY event_id",
    )
    .await;
    texts(&b, "user_id")
        .into_iter()
        .zip(texts(&b, "event_id"))
        .zip(ints(&b, "event_time"))
        .map(|((u, e), t)| (u, e, t))
        .collect()
}

#[tokio::test]
async fn parquet_csv_and_json_lines_land_alike() {
    let sources = tempfile::tempdir().expect("tempdir");
    let parquet = sources.path().join("events.parquet");
    write_parquet(&parquet, &sample_batch());
    let csv = sources.path().join("events.csv");
    std::fs::write(&csv, SAMPLE_CSV).expect("csv");
    let jsonl = sources.path().join("events.jsonl");
    std::fs::write(&jsonl, SAMPLE_JSONL).expect("jsonl");

    let mut results = Vec::new();
    for file in [&parquet, &csv, &jsonl] {
        let data = tempfile::tempdir().expect("tempdir");
        let engine = local_engine(data.path()).await;
        let report = engine.ingest_file(file).await.expect("ingest");
        assert_eq!(report.rows, 6);
        assert_eq!(
            report
                .files
                .iter()
                .map(|f| f.rsplit_once('/').expect("dir").0)
                .collect::<Vec<_>>(),
            vec!["events/date=2026-11-02", "events/date=2026-11-03"],
            "one file per UTC day"
        );
        for f in &report.files {
            assert!(data.path().join(f).is_file(), "{f} is on disk");
        }
        // Rows are sorted by user, then time, within a file.
        let b = query(
            &engine,
            "SELECT user_id, event_time, date FROM events WHERE date = DATE '2026-11-02'",
        )
        .await;
        let users = texts(&b, "user_id");
        assert_eq!(
            users,
            vec![
                Some("u1".into()),
                Some("u1".into()),
                Some("u2".into()),
                Some("u2".into())
            ]
        );
        results.push(landed_events(&engine).await);
    }
    let base = 1_793_613_600_000_000_000_i64;
    assert_eq!(
        results[0][0],
        (Some("u2".into()), Some("e1".into()), Some(base))
    );
    assert_eq!(results[0], results[1], "CSV lands as Parquet does");
    assert_eq!(results[0], results[2], "JSON lines land as Parquet does");
}

#[tokio::test]
async fn the_same_file_lands_once() {
    let sources = tempfile::tempdir().expect("tempdir");
    let csv = sources.path().join("events.csv");
    std::fs::write(&csv, SAMPLE_CSV).expect("csv");
    let data = tempfile::tempdir().expect("tempdir");
    let engine = local_engine(data.path()).await;
    let first = engine.ingest_file(&csv).await.expect("ingest");
    assert!(!first.already_landed);
    let before = objects(&engine).await;
    let again = engine.ingest_file(&csv).await.expect("ingest again");
    assert!(again.already_landed);
    assert_eq!(again.ingest_id, first.ingest_id);
    assert_eq!(
        objects(&engine).await,
        before,
        "nothing written the second time"
    );
    // A new engine over the same folder (another process) agrees.
    let other = local_engine(data.path()).await;
    assert!(
        other
            .ingest_file(&csv)
            .await
            .expect("ingest")
            .already_landed
    );
    assert_eq!(landed_events(&other).await.len(), 6);
}

#[tokio::test]
async fn bad_files_are_rejected_whole() {
    let sources = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let engine = local_engine(data.path()).await;
    let good = sources.path().join("good.csv");
    std::fs::write(&good, SAMPLE_CSV).expect("csv");
    engine.ingest_file(&good).await.expect("good file");
    let before = objects(&engine).await;

    let sample = sample_batch();
    let without_user = sample.project(&[0, 2, 3, 4, 5, 6]).expect("project");
    let missing = sources.path().join("missing_user.parquet");
    write_parquet(&missing, &without_user);

    let mut numbers = sample.columns().to_vec();
    numbers[1] = Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6]));
    let mut fields: Vec<Field> = sample
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[1] = Field::new("user_id", DataType::Int64, true);
    let wrong_type = sources.path().join("numeric_user.parquet");
    write_parquet(
        &wrong_type,
        &RecordBatch::try_new(Arc::new(Schema::new(fields)), numbers).expect("batch"),
    );

    let null_user = sources.path().join("null_user.csv");
    std::fs::write(
        &null_user,
        SAMPLE_CSV.replace(",u1,crm,t1,page_view,e4", ",,crm,t1,page_view,e4"),
    )
    .expect("csv");
    let bad_time = sources.path().join("bad_time.csv");
    std::fs::write(
        &bad_time,
        SAMPLE_CSV.replace("2026-11-02T10:02:00Z", "yesterday"),
    )
    .expect("csv");
    let broken_row = sources.path().join("broken_row.csv");
    std::fs::write(
        &broken_row,
        format!("{SAMPLE_CSV}2026-11-03T00:02:00Z,u3\n"),
    )
    .expect("csv");
    let not_parquet = sources.path().join("garbage.parquet");
    std::fs::write(&not_parquet, b"PAR1 this is not parquet").expect("garbage");
    let drift = sources.path().join("drift.jsonl");
    std::fs::write(
        &drift,
        SAMPLE_JSONL
            .replace("\"page_url\": \"/a\"", "\"page_url\": 7")
            .replace("\"/b\"", "8")
            .replace("\"/c\"", "9")
            .replace("\"/d\"", "10")
            .replace("\"/e\"", "11")
            .replace("\"/f\"", "12"),
    )
    .expect("jsonl");
    let unknown = sources.path().join("events.xlsx");
    std::fs::write(&unknown, b"x").expect("xlsx");

    let cases: [(&Path, Option<&str>, &str); 8] = [
        (&missing, Some("user_id"), "is missing"),
        (&wrong_type, Some("user_id"), "expected a string"),
        (&null_user, Some("user_id"), "row 4 is NULL"),
        (&bad_time, Some("event_time"), "yesterday"),
        (&broken_row, None, "CSV"),
        (&not_parquet, None, "Parquet"),
        (&drift, Some("page_url"), "in the events already landed"),
        (&unknown, None, "unknown format"),
    ];
    for (file, column, words) in cases {
        let error = engine.ingest_file(file).await.expect_err("rejected");
        let message = error.to_string();
        assert!(matches!(error, Error::Ingest { .. }), "{message}");
        assert!(
            message.contains(&file.display().to_string()),
            "names the file: {message}"
        );
        if let Some(column) = column {
            assert!(
                message.contains(&format!("column {column}")),
                "names {column}: {message}"
            );
        }
        assert!(message.contains(words), "{message}");
        assert_eq!(
            objects(&engine).await,
            before,
            "nothing written for {}",
            file.display()
        );
    }
    assert_eq!(
        landed_events(&engine).await.len(),
        6,
        "what had landed is untouched"
    );
}

#[tokio::test]
async fn an_uncommitted_ingest_is_invisible() {
    let sources = tempfile::tempdir().expect("tempdir");
    let csv = sources.path().join("events.csv");
    std::fs::write(&csv, SAMPLE_CSV).expect("csv");
    let engine = Engine::builder(DataLocation::parse("memory://").expect("memory"))
        .build()
        .await
        .expect("engine");
    let report = engine.ingest_file(&csv).await.expect("ingest");
    let store = engine.location().store();
    // Another ingest's files, written but not committed (as if it had been interrupted).
    let other = "0123456789abcdef0123456789abcdef";
    for file in &report.files {
        let from = StorePath::from(file.as_str());
        let to = StorePath::from(file.replace(&report.ingest_id, other).as_str());
        store.copy(&from, &to).await.expect("copy");
    }
    engine.refresh().await.expect("refresh");
    assert_eq!(
        landed_events(&engine).await.len(),
        6,
        "uncommitted files are not read"
    );
    store
        .put(
            &StorePath::from(format!("_dwell/ingests/{other}.json").as_str()),
            "{}".into(),
        )
        .await
        .expect("marker");
    assert_eq!(
        landed_events(&engine).await.len(),
        12,
        "committed, they are"
    );
}

#[tokio::test]
async fn date_partitions_prune_files() {
    let sources = tempfile::tempdir().expect("tempdir");
    let csv = sources.path().join("events.csv");
    std::fs::write(&csv, SAMPLE_CSV).expect("csv");
    let data = tempfile::tempdir().expect("tempdir");
    let engine = local_engine(data.path()).await;
    engine.ingest_file(&csv).await.expect("ingest");
    let b = query(
        &engine,
        "EXPLAIN SELECT user_id FROM events WHERE date = DATE '2026-11-03'",
    )
    .await;
    let plan = texts(&b, "plan")
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains("date=2026-11-03"), "{plan}");
    assert!(
        !plan.contains("date=2026-11-02"),
        "the other day's file is pruned: {plan}"
    );
    let b = query(
        &engine,
        "SELECT count(*) AS n FROM events WHERE date = DATE '2026-11-03'",
    )
    .await;
    assert_eq!(ints(&b, "n"), vec![Some(2)]);
}

#[tokio::test]
async fn files_outside_the_hive_layout_are_read_too() {
    let data = tempfile::tempdir().expect("tempdir");
    let nested = data.path().join("events/2026/november");
    std::fs::create_dir_all(&nested).expect("dirs");
    write_parquet(&nested.join("a.parquet"), &sample_batch());
    let engine = local_engine(data.path()).await;
    assert_eq!(landed_events(&engine).await.len(), 6);
    let b = query(&engine, "SELECT count(*) AS n FROM sessions").await;
    assert_eq!(ints(&b, "n"), vec![Some(6)]);
}

#[tokio::test]
async fn only_files_the_listing_reads_count_as_events() {
    let data = tempfile::tempdir().expect("tempdir");
    let events = data.path().join("events");
    std::fs::create_dir_all(&events).expect("dirs");
    // DataFusion's listing matches `.parquet` exactly; the engine must agree, or it asks for
    // the schema of a folder the listing sees as empty.
    write_parquet(&events.join("upper.PARQUET"), &sample_batch());
    let engine = local_engine(data.path()).await;
    assert_eq!(landed_events(&engine).await.len(), 0);
}

#[tokio::test]
async fn locations_parse_and_fail_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("utf-8");
    let by_path = DataLocation::parse(path).expect("path");
    let by_url = DataLocation::parse(&format!("file://{path}")).expect("url");
    assert_eq!(by_path.root(), by_url.root());
    assert_eq!(by_path.store_url().as_str(), "file:///");
    let s3 = DataLocation::parse("s3://bucket/some/prefix").expect("s3");
    assert_eq!(s3.store_url().as_str(), "s3://bucket/");
    assert_eq!(s3.root().as_ref(), "some/prefix");
    for (bad, words) in [
        ("ftp://x/y", "unsupported scheme"),
        ("s3://", "needs a bucket"),
        ("memory://x", "no path"),
        ("", "empty"),
    ] {
        let message = DataLocation::parse(bad).expect_err(bad).to_string();
        assert!(message.contains(words), "{message}");
    }
    let missing = dir.path().join("nothing-here");
    let error =
        Engine::builder(DataLocation::parse(missing.to_str().expect("utf-8")).expect("path"))
            .build()
            .await
            .expect_err("missing folder");
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[tokio::test]
async fn settings_are_read_and_bad_ones_named() {
    let text = "default_timeout = \"20m\"\ntime_zone = \"Europe/Berlin\"\nmax_session_duration = \"2h\"\n\
                [app_timeouts]\ncrm = \"5m\"\n[segments]\nstruggling_min_apps = 3\n";
    let settings = Settings::parse(text, "dwell.toml").expect("valid");
    assert_eq!(settings.timeout_of("crm").as_secs(), 300);
    assert_eq!(settings.timeout_of("other").as_secs(), 1200);
    assert_eq!(settings.segments.struggling_min_apps, 3);
    assert_eq!(
        Settings::parse(&settings.to_toml(), "x").expect("round trip"),
        settings
    );
    for (bad, words) in [
        ("default_timout = \"5m\"", "default_timout"),
        (
            "default_timeout = \"0s\"",
            "default_timeout: must be longer than zero",
        ),
        (
            "default_timeout = \"soon\"",
            "default_timeout: 'soon' is not a duration",
        ),
        ("[app_timeouts]\ncrm = \"-5m\"", "app_timeouts.crm"),
        ("time_zone = \"Mars/Olympus\"", "time_zone"),
        (
            "[segments]\nstruggling_min_sessions_per_day = -1.0",
            "segments.struggling_min_sessions_per_day",
        ),
        ("[segments]\nstruggling_apps = 2", "struggling_apps"),
        ("day_boundary = \"yes\"", "line 1"),
    ] {
        let message = Settings::parse(bad, "dwell.toml")
            .expect_err(bad)
            .to_string();
        assert!(message.starts_with("dwell.toml: "), "{message}");
        assert!(message.contains(words), "{bad}: {message}");
    }
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("dwell.toml"), "default_timeout = \"0m\"\n").expect("toml");
    let error =
        Engine::builder(DataLocation::parse(data.path().to_str().expect("utf-8")).expect("path"))
            .build()
            .await
            .expect_err("bad settings");
    assert!(
        error.to_string().contains("dwell.toml: default_timeout"),
        "{error}"
    );
}

/// Ingest and query through a real S3 API. `.ci/run` starts one (moto) and sets `DWELL_TEST_S3`
/// to a bucket URL and the `AWS_*` variables; without it the test says so and passes, except
/// under CI, where it must run.
#[tokio::test]
async fn s3_ingest_and_query() {
    let Some(prefix) = crate::support::s3_test_prefix("s3_ingest_and_query") else {
        return;
    };
    let engine = Engine::builder(DataLocation::parse(&prefix).expect("s3 location"))
        .build()
        .await
        .expect("engine on S3");
    let sources = tempfile::tempdir().expect("tempdir");
    let parquet = sources.path().join("events.parquet");
    write_parquet(&parquet, &sample_batch());
    let report = engine.ingest_file(&parquet).await.expect("ingest to S3");
    assert_eq!(report.rows, 6);
    assert!(
        engine
            .ingest_file(&parquet)
            .await
            .expect("again")
            .already_landed
    );
    assert_eq!(landed_events(&engine).await.len(), 6);
    let b = query(&engine, "SELECT count(*) AS n FROM sessions").await;
    assert_eq!(ints(&b, "n"), vec![Some(6)]);
    let b = query(
        &engine,
        "EXPLAIN SELECT user_id FROM events WHERE date = DATE '2026-11-02'",
    )
    .await;
    let plan = texts(&b, "plan")
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !plan.contains("date=2026-11-03"),
        "pruned on S3 too: {plan}"
    );
    // A second engine (another process) sees the same data.
    let other = Engine::builder(DataLocation::parse(&prefix).expect("s3 location"))
        .build()
        .await
        .expect("engine");
    assert_eq!(landed_events(&other).await.len(), 6);
}
