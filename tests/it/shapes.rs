//! Sessions are computed by `SessionizeExec` for every shape of events: optional columns
//! present or absent, in files or in an in-memory table, columns in any order, any
//! `target_partitions`, with and without a memory limit, through every view, a one-user
//! drill-down and a direct `sessionize` call with the views' arguments. No plan may evaluate
//! `sessionize` per row in DataFusion's window operators; and the answers stay the reference's.

use std::sync::Arc;

use arrow::datatypes::TimeUnit;
use datafusion::datasource::MemTable;
use datafusion::physical_plan::displayable;
use datafusion::prelude::SessionConfig;
use dwell_engine::{DataLocation, Engine, Settings};

use crate::support::{expected_sessions, query, reference_events, sessions_of, view_sessions};
use crate::writers::{Meant, Physical, file_batch, sorted, write_parquet};

/// Events of three users over two accounts (or none), with ids where the shape has them.
fn events(with_account: bool, with_event_id: bool) -> Vec<Meant> {
    const BASE_NS: i64 = 1_772_352_000 * 1_000_000_000;
    const MINUTE: i64 = 60 * 1_000_000_000;
    let gaps = [0, 1, 7, 31, 2, 45, 5, 30, 1, 90, 3, 29];
    let kinds = [
        "page_view",
        "user_action",
        "tab_hidden",
        "tab_visible",
        "page_view",
        "tab_close",
    ];
    let mut out = Vec::new();
    for user in 0..3 {
        let mut time = BASE_NS + user * 11 * MINUTE;
        for (i, gap) in gaps.iter().enumerate() {
            time += gap * MINUTE;
            out.push(Meant {
                time_ns: time,
                account: (with_account && user != 2).then(|| format!("acct{}", user % 2)),
                user: format!("u{user}"),
                app: Some(if i % 5 == 4 { "B" } else { "A" }.to_owned()),
                tab: Some(if i % 7 == 6 { "t2" } else { "t1" }.to_owned()),
                kind: Some(kinds[(i + user as usize) % kinds.len()].to_owned()),
                id: with_event_id.then(|| format!("e{}", i % 10)),
            });
        }
    }
    out
}

fn settings() -> Settings {
    Settings::parse("[app_timeouts]\nB = \"5m\"\n", "dwell.toml").expect("settings")
}

/// A what-if call over every shape, and the settings it stands for.
const WHAT_IF: &str = "sessions_with('app_timeouts.B', '1m', 'default_timeout', '10m')";

fn what_if_settings() -> Settings {
    let mut settings = settings();
    settings.default_timeout = std::time::Duration::from_mins(10);
    settings
        .app_timeouts
        .insert("B".to_owned(), std::time::Duration::from_mins(1));
    settings
}

/// Every statement whose plan must sessionize in `SessionizeExec`.
fn statements(with_account: bool, with_event_id: bool) -> Vec<String> {
    let account = if with_account {
        "account_id"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let event_id = if with_event_id {
        "event_id"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let mut out: Vec<String> = dwell_engine::VIEWS
        .iter()
        .map(|view| format!("SELECT * FROM {}", view.name))
        .collect();
    out.push("SELECT * FROM sessionized_events WHERE user_id = 'u1'".to_owned());
    out.push("SELECT * FROM sessions WHERE user_id = 'u1'".to_owned());
    out.push("SELECT count(*), sum(duration_seconds) FROM sessions WHERE app_id = 'A'".to_owned());
    out.push(format!("SELECT * FROM {WHAT_IF}"));
    out.push(format!(
        "SELECT sessionize(event_time, user_id, app_id, tab_id, event_type,
                           CASE app_id WHEN 'B' THEN INTERVAL '300000 milliseconds'
                                ELSE INTERVAL '1800000 milliseconds' END,
                           {event_id}, {account}, NULL, NULL, false)
                  OVER (PARTITION BY {account}, user_id
                        ORDER BY event_time, {event_id} NULLS FIRST, tab_id NULLS FIRST,
                                 app_id NULLS FIRST, event_type NULLS FIRST) AS s
           FROM events"
    ));
    out
}

/// The plan of `sql`, as `EXPLAIN` shows it.
async fn plan(engine: &Engine, sql: &str) -> String {
    let frame = engine
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("plan {sql}: {e}"));
    let physical = frame
        .create_physical_plan()
        .await
        .unwrap_or_else(|e| panic!("physical plan {sql}: {e}"));
    displayable(physical.as_ref()).indent(true).to_string()
}

#[derive(Debug, Clone, Copy)]
enum Source {
    /// Parquet files under `events/` (columns as the files have them).
    Files,
    /// An `events` table registered in memory with only the shape's columns.
    Memory,
}

async fn engine_for(
    source: Source,
    physical: &Physical,
    events: &[Meant],
    partitions: usize,
    memory_limited: bool,
    dir: &std::path::Path,
) -> Engine {
    let config = SessionConfig::new().with_target_partitions(partitions);
    let location = match source {
        Source::Files => {
            // Two files, so scans have more than one.
            let (first, second) = events.split_at(events.len() / 2);
            write_parquet(&dir.join("events/a.parquet"), &file_batch(first, physical));
            write_parquet(
                &dir.join("events/b/c.parquet"),
                &file_batch(second, physical),
            );
            DataLocation::parse(dir.to_str().expect("utf-8")).expect("location")
        }
        Source::Memory => DataLocation::parse("memory://").expect("location"),
    };
    let engine = Engine::builder(location)
        .with_config(config)
        .with_settings(settings())
        .with_memory_limit(memory_limited.then_some(512 << 20))
        .build()
        .await
        .expect("engine");
    if let Source::Memory = source {
        let batch = file_batch(events, physical);
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("table");
        engine
            .context()
            .deregister_table("events")
            .expect("deregister");
        engine
            .context()
            .register_table("events", Arc::new(table))
            .expect("register");
        engine.refresh_views().await.expect("views");
    }
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_of_events_sessionizes_in_sessionize_exec() {
    let mut failures = Vec::new();
    let mut shapes = 0;
    for source in [Source::Files, Source::Memory] {
        for (with_account, with_event_id) in
            [(true, true), (false, true), (true, false), (false, false)]
        {
            for reversed in [false, true] {
                for partitions in [1, 2, 3] {
                    for memory_limited in [false, true] {
                        shapes += 1;
                        let shape = format!(
                            "{source:?} account={with_account} event_id={with_event_id} \
                             reversed={reversed} partitions={partitions} \
                             memory_limited={memory_limited}"
                        );
                        let physical = Physical {
                            unit: TimeUnit::Millisecond,
                            zone: None,
                            strings: [0; 6],
                            with_account,
                            with_event_id,
                            reversed,
                        };
                        let meant = events(with_account, with_event_id);
                        let dir = tempfile::tempdir().expect("tempdir");
                        let engine = engine_for(
                            source,
                            &physical,
                            &meant,
                            partitions,
                            memory_limited,
                            dir.path(),
                        )
                        .await;
                        // In files, an absent optional column is a NULL column of the table;
                        // in memory the views substitute NULL: both are shapes to cover.
                        let has = |c: &str| {
                            matches!(source, Source::Files)
                                || (c == "account_id" && with_account)
                                || (c == "event_id" && with_event_id)
                        };
                        for sql in statements(has("account_id"), has("event_id")) {
                            let shown = plan(&engine, &sql).await;
                            let per_row = shown.lines().any(|line| {
                                line.contains("WindowAggExec") && line.contains("sessionize")
                            });
                            if per_row || !shown.contains("SessionizeExec") {
                                failures.push(format!("{shape}\n{sql}\n{shown}"));
                            }
                        }
                        let settings = settings();
                        let expected = sorted(expected_sessions(
                            &reference_events(&engine, &settings).await,
                            &settings,
                        ));
                        let got = sorted(view_sessions(&engine).await);
                        if got != expected {
                            failures.push(format!("{shape}: sessions differ from the reference"));
                        }
                        let what_if = what_if_settings();
                        let expected_what_if = sorted(expected_sessions(
                            &reference_events(&engine, &what_if).await,
                            &what_if,
                        ));
                        if expected_what_if == expected {
                            failures.push(format!("{shape}: {WHAT_IF} changes nothing here"));
                        }
                        if sorted(sessions_of(&engine, WHAT_IF).await) != expected_what_if {
                            failures.push(format!("{shape}: {WHAT_IF} differs from the reference"));
                        }
                        let one = query(
                            &engine,
                            "SELECT count(*) AS n FROM sessions WHERE user_id = 'u1'",
                        )
                        .await;
                        let wanted = expected.iter().filter(|s| s.user_id == "u1").count();
                        if crate::support::ints(&one, "n") != vec![Some(wanted as i64)] {
                            failures.push(format!("{shape}: one user's drill-down differs"));
                        }
                    }
                }
            }
        }
    }
    assert_eq!(shapes, 96);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
