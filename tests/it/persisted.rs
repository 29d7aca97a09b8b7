//! Persisted sessions (`_dwell/sessions`): kept up by every commit, equal after any sequence of
//! ingests to a full recompute (`sessions_with()`) and to the reference, every column; the
//! change log replays to them; a failed put of a commit leaves the previous state; two engines
//! committing at once lose nothing; foreign files and a changed `dwell.toml` never give stale
//! answers.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use dwell_engine::{DataLocation, Engine, IngestId, Settings};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use crate::support::{
    Expected, expected_sessions, ints, query, reference_events, sessions_of, texts,
};

/// 2026-11-02T00:00:00Z.
const DAY0: i64 = 1_793_577_600_000_000_000;
const MINUTE: i64 = 60_000_000_000;

/// One generated event: (account, user, app, tab, type, minute, second, event id).
type Ev = (u8, u8, u8, u8, u8, i64, i64, Option<u8>);

fn event() -> impl Strategy<Value = Ev> {
    (
        0u8..3,
        0u8..4,
        0u8..3,
        0u8..3,
        0u8..9,
        // Clusters: a morning, the hours around the first midnight, a day later.
        prop_oneof![0i64..240, 1_380i64..1_500, 2_880i64..3_000],
        0i64..3,
        prop::option::weighted(0.7, 0u8..40),
    )
}

/// An ingest: its events, and how late they come (minutes subtracted from every time).
fn ingest() -> impl Strategy<Value = (Vec<Ev>, i64)> {
    (
        prop::collection::vec(event(), 1..30),
        prop_oneof![Just(0i64), 1i64..40, Just(1_440), Just(2_880)],
    )
}

fn batch(events: &[Ev], late_minutes: i64) -> RecordBatch {
    const TYPES: [&str; 9] = [
        "page_view",
        "page_view",
        "user_action",
        "content_engagement",
        "tab_close",
        "tab_hidden",
        "tab_visible",
        "tab_open",
        "custom",
    ];
    let text = |values: Vec<Option<String>>| Arc::new(StringArray::from(values)) as ArrayRef;
    let times: Vec<i64> = events
        .iter()
        .map(|e| DAY0 + 3 * 1_440 * MINUTE + (e.5 - late_minutes) * MINUTE + e.6 * 1_000_000_000)
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("account_id", DataType::Utf8, true),
            Field::new("user_id", DataType::Utf8, false),
            Field::new("app_id", DataType::Utf8, true),
            Field::new("tab_id", DataType::Utf8, true),
            Field::new("event_type", DataType::Utf8, false),
            Field::new("event_id", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(TimestampNanosecondArray::from(times).with_timezone("UTC")),
            text(
                events
                    .iter()
                    .map(|e| (e.0 < 2).then(|| format!("acct-{}", e.0)))
                    .collect(),
            ),
            text(events.iter().map(|e| Some(format!("u{}", e.1))).collect()),
            text(
                events
                    .iter()
                    .map(|e| Some(["crm", "hr", "wiki"][usize::from(e.2)].to_owned()))
                    .collect(),
            ),
            text(
                events
                    .iter()
                    .map(|e| (e.3 < 2).then(|| format!("t{}", e.3)))
                    .collect(),
            ),
            text(
                events
                    .iter()
                    .map(|e| Some(TYPES[usize::from(e.4)].to_owned()))
                    .collect(),
            ),
            // Ids repeat across ingests: duplicates, late or early.
            text(
                events
                    .iter()
                    .map(|e| e.7.map(|i| format!("e{i}")))
                    .collect(),
            ),
        ],
    )
    .expect("batch")
}

async fn land(engine: &Engine, batch: &RecordBatch) {
    let id = IngestId::of_batches(std::slice::from_ref(batch)).expect("id");
    engine
        .ingest_batches("test", &id, &batch.schema(), std::slice::from_ref(batch))
        .await
        .expect("ingest");
}

fn settings(variant: u8) -> Settings {
    let mut settings = Settings::default();
    settings
        .app_timeouts
        .insert("hr".to_owned(), Duration::from_mins(5));
    if variant >= 1 {
        settings.max_session_duration = Some(Duration::from_mins(50));
    }
    if variant >= 2 {
        settings.day_boundary = true;
        settings.time_zone = "America/New_York".parse().expect("zone");
        settings.split_on_equal_gap = true;
    }
    settings
}

/// An engine over the location at `path`, made if missing.
async fn open_at(path: &str) -> Engine {
    Engine::builder(DataLocation::parse(path).expect("location"))
        .create_if_missing(true)
        .build()
        .await
        .expect("engine")
}

/// The plan `EXPLAIN sql` shows, as one text.
async fn plan_of(engine: &Engine, sql: &str) -> String {
    texts(&query(engine, &format!("EXPLAIN {sql}")).await, "plan")
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}

/// `sessions` reads the persisted sessions: no sessionizing in its plan. (Not `count(*)`:
/// without retractions the rows files' statistics answer it, and no file is in the plan.)
async fn assert_reads_persisted(engine: &Engine, context: &str) {
    let plan = plan_of(engine, "SELECT sum(duration_seconds) FROM sessions").await;
    assert!(
        plan.contains("sessions/rows") && !plan.contains("Sessionize"),
        "{context}: sessions read from _dwell/sessions/rows: {plan}"
    );
}

/// Applies `session_changes` commit by commit (retractions first, each of a row present as
/// it is) and returns the sessions they make.
async fn replayed(engine: &Engine) -> Vec<Expected> {
    let commits = ints(
        &query(
            engine,
            "SELECT DISTINCT commit_id FROM session_changes ORDER BY commit_id",
        )
        .await,
        "commit_id",
    );
    let mut live: Vec<Expected> = Vec::new();
    for commit in commits.into_iter().flatten() {
        for op in ["retract", "insert"] {
            let rows = sessions_of(
                engine,
                &format!(
                    "(SELECT * FROM session_changes WHERE commit_id = {commit} AND op = '{op}') c"
                ),
            )
            .await;
            for row in rows {
                if op == "insert" {
                    live.push(row);
                } else {
                    let at = live.iter().position(|l| *l == row).unwrap_or_else(|| {
                        panic!("commit {commit} retracts a row not live: {row:?}")
                    });
                    live.swap_remove(at);
                }
            }
        }
    }
    // As `sessions_of` orders them: NULL accounts last.
    in_order(live)
}

/// Sessions in one order whatever produced them (the views put NULL accounts last, the
/// reference first).
fn in_order(mut sessions: Vec<Expected>) -> Vec<Expected> {
    sessions.sort_by(|a, b| {
        (&a.account_id, &a.user_id, a.session_seq).cmp(&(&b.account_id, &b.user_id, b.session_seq))
    });
    sessions
}

async fn assert_exact(engine: &Engine, settings: &Settings, context: &str) {
    let persisted = in_order(sessions_of(engine, "sessions").await);
    let recomputed = in_order(sessions_of(engine, "sessions_with()").await);
    let reference = in_order(expected_sessions(
        &reference_events(engine, settings).await,
        settings,
    ));
    assert_eq!(persisted, reference, "{context}: persisted vs reference");
    assert_eq!(
        recomputed, reference,
        "{context}: sessions_with() vs reference"
    );
    assert_eq!(
        replayed(engine).await,
        persisted,
        "{context}: the change log replays"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random ingests (in order, late by minutes and days, out of order within a batch,
    /// duplicates across ingests, across midnight, several accounts and a NULL one,
    /// per-application timeouts, max duration and day boundary): after each, the persisted
    /// sessions equal a full recompute and the reference, and the change log replays to them.
    #[test]
    fn persisted_sessions_equal_a_full_recompute_after_every_ingest(
        ingests in prop::collection::vec(ingest(), 1..6),
        variant in 0u8..3,
    ) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let settings = settings(variant);
            let engine = Engine::builder(DataLocation::parse("memory://").expect("memory"))
                .with_settings(settings.clone())
                .build()
                .await
                .expect("engine");
            for (i, (events, late)) in ingests.iter().enumerate() {
                land(&engine, &batch(events, *late)).await;
                let context = format!("after ingest {} of {}", i + 1, ingests.len());
                assert_reads_persisted(&engine, &context).await;
                assert_exact(&engine, &settings, &context).await;
            }
        });
    }
}

/// The end reasons of user u2's sessions.
async fn reason_of_u2(engine: &Engine) -> Vec<Option<String>> {
    texts(
        &query(
            engine,
            "SELECT end_reason FROM sessions WHERE user_id = 'u2'",
        )
        .await,
        "end_reason",
    )
}

/// The end reason of an untouched user's last session follows its account's newest event
/// back when a late event makes the event that ended the account's newest session a
/// duplicate: the commit that brings it moves `timeout` back to `open`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_duplicate_can_move_the_accounts_newest_event_back() {
    let settings = settings(0);
    let engine = Engine::builder(DataLocation::parse("memory://").expect("memory"))
        .with_settings(settings.clone())
        .build()
        .await
        .expect("engine");
    // u2's one session at minute 0; u1's at 10 and 60 (after a gap over the 30-minute
    // timeout), the account's newest event: 60 minutes after u2's, so u2's timed out.
    land(
        &engine,
        &batch(
            &[
                (0, 2, 0, 0, 0, 0, 0, None),
                (0, 1, 0, 0, 0, 10, 0, Some(1)),
                (0, 1, 0, 0, 0, 60, 0, Some(7)),
            ],
            0,
        ),
    )
    .await;
    assert_exact(&engine, &settings, "before").await;
    assert_eq!(reason_of_u2(&engine).await, [Some("timeout".to_owned())]);
    // u1's event at minute 5 carries the id of its event at 60, which becomes a duplicate:
    // the account's newest event is now at 10, and u2's session is open again.
    land(&engine, &batch(&[(0, 1, 0, 0, 0, 5, 0, Some(7))], 0)).await;
    assert_reads_persisted(&engine, "after").await;
    assert_exact(&engine, &settings, "after").await;
    assert_eq!(reason_of_u2(&engine).await, [Some("open".to_owned())]);
}

fn sample(user_count: u8, minutes: i64, late: i64) -> RecordBatch {
    let events: Vec<Ev> = (0..user_count)
        .flat_map(|u| {
            (0..minutes).map(move |m| {
                let small = |v: i64| u8::try_from(v).expect("small");
                (
                    u % 2,
                    u,
                    small(m / 50 % 3),
                    0,
                    0,
                    m * 7,
                    0,
                    Some(small(m % 40)),
                )
            })
        })
        .collect();
    batch(&events, late)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_committing_at_once_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("utf-8").to_owned();
    let open = || open_at(&path);
    let (first, second) = (open().await, open().await);
    land(&first, &sample(2, 30, 0)).await;
    let batches: Vec<RecordBatch> = (0..6).map(|i| sample(3, 20, 60 * i)).collect();
    // Each engine ingests its own batches while the other does.
    let left = async {
        for b in batches.iter().step_by(2) {
            land(&first, b).await;
        }
    };
    let right = async {
        for b in batches.iter().skip(1).step_by(2) {
            land(&second, b).await;
        }
    };
    tokio::join!(left, right);
    let fresh = open().await;
    let events = ints(
        &query(&fresh, "SELECT count(*) AS n FROM events").await,
        "n",
    );
    let expected: i64 = 60 + 6 * 60;
    assert_eq!(
        events,
        vec![Some(expected)],
        "every ingest's events are there"
    );
    assert_reads_persisted(&fresh, "after concurrent ingests").await;
    assert_exact(&fresh, &fresh.settings(), "after concurrent ingests").await;
    let manifests = std::fs::read_dir(dir.path().join("_dwell/commits"))
        .expect("commit log")
        .count();
    assert_eq!(
        manifests, 7,
        "seven commits, one after the other, none lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_files_and_changed_settings_never_give_stale_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = DataLocation::parse(dir.path().to_str().expect("utf-8")).expect("location");
    let engine = Engine::builder(location.clone())
        .create_if_missing(true)
        .build()
        .await
        .expect("engine");
    land(&engine, &sample(4, 40, 0)).await;
    assert_reads_persisted(&engine, "after an ingest").await;

    // A file placed by another tool, with a user's late events among the landed ones.
    let foreign = dir.path().join("events/from-elsewhere");
    std::fs::create_dir_all(&foreign).expect("dir");
    let file = std::fs::File::create(foreign.join("late.parquet")).expect("file");
    let late = sample(2, 25, 90);
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, late.schema(), None).expect("writer");
    writer.write(&late).expect("write");
    writer.close().expect("close");
    engine.refresh().await.expect("refresh");
    // Not covered: the views sessionize at query time, and are right.
    let plan = texts(
        &query(&engine, "EXPLAIN SELECT count(*) FROM sessions").await,
        "plan",
    )
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n");
    assert!(plan.contains("Sessionize"), "recomputed: {plan}");
    let settings = engine.settings();
    let reference = in_order(expected_sessions(
        &reference_events(&engine, &settings).await,
        &settings,
    ));
    assert_eq!(
        in_order(sessions_of(&engine, "sessions").await),
        reference,
        "foreign file"
    );

    // The next ingest covers the foreign file too.
    land(&engine, &sample(1, 10, 200)).await;
    assert_reads_persisted(&engine, "after the next ingest").await;
    assert_exact(&engine, &settings, "foreign file covered").await;

    // dwell.toml changed: recomputed at query time until a rebuild.
    std::fs::write(dir.path().join("dwell.toml"), "default_timeout = \"4m\"\n").expect("toml");
    engine.refresh().await.expect("refresh");
    let changed = engine.settings();
    assert_eq!(changed.default_timeout, Duration::from_mins(4));
    let reference = in_order(expected_sessions(
        &reference_events(&engine, &changed).await,
        &changed,
    ));
    assert_eq!(
        in_order(sessions_of(&engine, "sessions").await),
        reference,
        "changed settings"
    );
    let report = engine.rebuild().await.expect("rebuild");
    assert!(report.retracted > 0 && report.inserted > 0, "{report:?}");
    assert_reads_persisted(&engine, "after the rebuild").await;
    assert_exact(&engine, &changed, "after the rebuild").await;
    // A second rebuild finds nothing to change.
    let again = engine.rebuild().await.expect("rebuild");
    assert_eq!((again.retracted, again.inserted), (0, 0), "{again:?}");
    assert_exact(&engine, &changed, "after a second rebuild").await;
}

/// Parquet files under a folder of the location (recursively).
fn parquet_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.expect("entry").path())
        .map(|p| {
            if p.is_dir() {
                parquet_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|e| e == "parquet"))
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_small_files_and_changes_no_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = DataLocation::parse(dir.path().to_str().expect("utf-8")).expect("location");
    let engine = Engine::builder(location.clone())
        .create_if_missing(true)
        .build()
        .await
        .expect("engine");
    for i in 0..6 {
        land(&engine, &sample(3, 15, 45 * i)).await;
    }
    let settings = engine.settings();
    let before = in_order(sessions_of(&engine, "sessions").await);
    let figures = "SELECT count(*) AS n, sum(event_count) AS events FROM sessions";
    let before_figures = query(&engine, figures).await;
    let event_files = parquet_files(&dir.path().join("events"));
    let session_files = parquet_files(&dir.path().join("_dwell/sessions/rows"));
    assert!(
        event_files > 6 && session_files > 3,
        "{event_files} {session_files}"
    );

    let report = engine.compact(Duration::ZERO).await.expect("compact");
    assert!(report.commit.is_some(), "{report:?}");
    assert!(
        report.event_files_merged > report.event_files_written,
        "{report:?}"
    );
    assert!(report.files_deleted > 0, "{report:?}");
    assert_eq!(
        in_order(sessions_of(&engine, "sessions").await),
        before,
        "same sessions"
    );
    assert_eq!(
        query(&engine, figures).await,
        before_figures,
        "same figures"
    );
    assert_reads_persisted(&engine, "after compaction").await;
    assert_exact(&engine, &settings, "after compaction").await;
    assert_eq!(
        parquet_files(&dir.path().join("_dwell/sessions/rows")),
        1,
        "one base"
    );
    let days = std::fs::read_dir(dir.path().join("events"))
        .expect("events")
        .count();
    assert_eq!(
        parquet_files(&dir.path().join("events")),
        days,
        "one file per day once the replaced ones are deleted"
    );
    // A fresh process sees the same, and later ingests keep working on the compacted state.
    let fresh = Engine::builder(location).build().await.expect("fresh");
    assert_eq!(
        in_order(sessions_of(&fresh, "sessions").await),
        before,
        "fresh engine"
    );
    land(&fresh, &sample(4, 12, 400)).await;
    assert_exact(&fresh, &settings, "an ingest after compaction").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_sessions_are_kept_and_read_under_any_partition_count() {
    for partitions in [1, 2, 3, 4, 8] {
        let engine = Engine::builder(DataLocation::parse("memory://").expect("memory"))
            .with_config(
                datafusion::prelude::SessionConfig::new().with_target_partitions(partitions),
            )
            .build()
            .await
            .expect("engine");
        let context = format!("{partitions} partitions");
        for i in 0..3 {
            land(&engine, &sample(5, 20, 70 * i)).await;
            assert_reads_persisted(&engine, &context).await;
            assert_exact(&engine, &engine.settings(), &context).await;
        }
        engine.rebuild().await.expect("rebuild");
        assert_exact(&engine, &engine.settings(), &context).await;
    }
}

/// Events as another writer sends them: millisecond times without a zone, strings as
/// dictionaries and large strings, no `account_id` and no `event_id` (so no duplicates and one
/// tenant), landed late and out of order, and a foreign file of the same shape.
fn other_writer(events: &[Ev], late_minutes: i64) -> RecordBatch {
    use arrow::array::{DictionaryArray, LargeStringArray};
    use arrow::datatypes::Int32Type;
    let plain = batch(events, late_minutes);
    let times = arrow::compute::cast(
        plain.column(0),
        &DataType::Timestamp(TimeUnit::Millisecond, None),
    )
    .expect("ms");
    let dictionary = |i: usize| -> ArrayRef {
        let values = plain
            .column(i)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("text");
        Arc::new(values.iter().collect::<DictionaryArray<Int32Type>>())
    };
    let large = |i: usize| -> ArrayRef {
        let values = plain
            .column(i)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("text");
        Arc::new(values.iter().collect::<LargeStringArray>())
    };
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            Field::new(
                "user_id",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                false,
            ),
            Field::new("app_id", DataType::LargeUtf8, true),
            Field::new(
                "tab_id",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("event_type", DataType::LargeUtf8, false),
        ])),
        vec![times, dictionary(2), large(3), dictionary(4), large(5)],
    )
    .expect("batch")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_other_writers_are_kept_exactly_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = DataLocation::parse(dir.path().to_str().expect("utf-8")).expect("location");
    let engine = Engine::builder(location)
        .create_if_missing(true)
        .with_settings(settings(1))
        .build()
        .await
        .expect("engine");
    let settings = engine.settings();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let ingests = prop::collection::vec(ingest(), 4..5)
        .new_tree(&mut runner)
        .expect("ingests")
        .current();
    for (i, (events, late)) in ingests.iter().enumerate() {
        land(&engine, &other_writer(events, *late)).await;
        let context = format!("other writer, ingest {}", i + 1);
        assert_reads_persisted(&engine, &context).await;
        assert_exact(&engine, &settings, &context).await;
    }
    // A foreign file of that shape among the landed ones, covered by the next ingest.
    let foreign = dir.path().join("events/elsewhere");
    std::fs::create_dir_all(&foreign).expect("dir");
    let file = std::fs::File::create(foreign.join("late.parquet")).expect("file");
    let late = other_writer(&ingests[0].0, 120);
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, late.schema(), None).expect("writer");
    writer.write(&late).expect("write");
    writer.close().expect("close");
    land(&engine, &other_writer(&ingests[1].0, 30)).await;
    assert_reads_persisted(&engine, "foreign file of another writer").await;
    assert_exact(&engine, &settings, "foreign file of another writer").await;
}

/// The latest manifest of the location in `dir`: its path and its JSON.
fn latest_manifest(dir: &std::path::Path) -> (std::path::PathBuf, serde_json::Value) {
    let path = std::fs::read_dir(dir.join("_dwell/commits"))
        .expect("commit log")
        .map(|entry| entry.expect("entry").path())
        .max()
        .expect("a manifest");
    let json = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
    (path, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_persisted_in_an_earlier_form_are_recomputed_by_the_next_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("utf-8").to_owned();
    let open = || open_at(&path);
    let engine = open().await;
    land(&engine, &sample(3, 30, 0)).await;
    land(&engine, &sample(3, 10, 100)).await;
    let (manifest, mut json) = latest_manifest(dir.path());
    assert!(
        json["retractions"].as_u64().is_some_and(|n| n > 0),
        "the second ingest retracts rows: {json}"
    );
    assert_eq!(json["form"], 1, "this build's form");
    // A manifest of the first form (before `row_index`) has no `form`: its retractions name
    // rows by session id, which the rows here carry too.
    json.as_object_mut().expect("object").remove("form");
    std::fs::write(&manifest, serde_json::to_vec(&json).expect("JSON")).expect("write");

    let reopened = open().await;
    let plan = plan_of(&reopened, "SELECT count(*) FROM sessions").await;
    assert!(
        plan.contains("Sessionize"),
        "rows of an earlier form are not read; the events are sessionized: {plan}"
    );
    assert_exact(&reopened, &reopened.settings(), "over the earlier form").await;

    land(&reopened, &sample(2, 5, 200)).await;
    let (_, json) = latest_manifest(dir.path());
    assert_eq!(json["form"], 1, "the commit wrote this build's form");
    assert_eq!(json["retractions"], 0, "a full recompute writes a base");
    assert!(
        json["summary"]
            .as_str()
            .is_some_and(|s| s.contains("earlier form")),
        "the commit says why it recomputed everything: {json}"
    );
    assert_reads_persisted(&reopened, "after the recompute").await;
    assert_exact(&reopened, &reopened.settings(), "after the recompute").await;
}

/// `_dwell_live_row(row_version, row_index)` for each probe, by a filter built from `keys`,
/// and by the same filter after a trip through its bytes (what a cluster codec sends).
async fn live_by_filter(keys: &[(i64, i64)], probes: &[(i64, i64)]) -> [Vec<Option<bool>>; 2] {
    use arrow::array::{BooleanArray, Int64Array};
    use datafusion::logical_expr::ScalarUDF;
    let filter = dwell_engine::LiveRowFilter::of_keys(keys.iter().copied());
    let decoded = dwell_engine::LiveRowFilter::decode(&filter.encode()).expect("decode");
    let probes = RecordBatch::try_from_iter([
        (
            "v",
            Arc::new(Int64Array::from_iter_values(probes.iter().map(|p| p.0))) as ArrayRef,
        ),
        (
            "i",
            Arc::new(Int64Array::from_iter_values(probes.iter().map(|p| p.1))) as ArrayRef,
        ),
    ])
    .expect("probes");
    let mut out = [vec![], vec![]];
    for (slot, udf) in [ScalarUDF::new_from_impl(filter), decoded]
        .into_iter()
        .enumerate()
    {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_batch("probes", probes.clone()).expect("table");
        ctx.register_udf(udf);
        let batches = ctx
            .sql("SELECT _dwell_live_row(v, i) AS live FROM probes")
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        for batch in &batches {
            let live = batch
                .column(0)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .expect("booleans");
            out[slot].extend(live.iter());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The live-row filter, and its bytes, against a plain set of keys: a row is live when its
    /// key is not in the set.
    #[test]
    fn the_live_row_filter_drops_exactly_the_retracted_keys(
        keys in prop::collection::vec((0i64..4, 0i64..300), 0..60),
        probes in prop::collection::vec((0i64..5, -2i64..400), 1..200),
    ) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let [built, decoded] = runtime.block_on(live_by_filter(&keys, &probes));
        let plain: std::collections::HashSet<(i64, i64)> = keys.iter().copied().collect();
        let expected: Vec<Option<bool>> =
            probes.iter().map(|p| Some(!plain.contains(p))).collect();
        prop_assert_eq!(&built, &expected);
        prop_assert_eq!(&decoded, &expected);
    }
}

#[test]
fn a_truncated_live_row_filter_is_an_error() {
    let bytes = dwell_engine::LiveRowFilter::of_keys([(3, 70), (9, 1)]).encode();
    for cut in 0..bytes.len() {
        assert!(
            dwell_engine::LiveRowFilter::decode(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
}
