//! Every view over generated data, against the reference implementation of the session rule
//! (never against the views' own output).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use dwell_session::SessionizeRule;

use dwell_engine::{DataLocation, Engine, GenerateOptions, Settings, VIEWS};

use crate::support::{
    Expected, close, expected_sessions, floats, ints, median, query, reference_events, segment,
    texts, user_stats, view_sessions,
};

/// An engine over generated data in memory.
pub(crate) async fn generated(options: &GenerateOptions, settings: Option<Settings>) -> Engine {
    let mut builder = Engine::builder(DataLocation::parse("memory://").expect("location"));
    if let Some(settings) = settings {
        builder = builder.with_settings(settings);
    }
    let engine = builder.build().await.expect("engine");
    engine.generate(options, &|_| {}).await.expect("generate");
    engine
}

pub(crate) fn small() -> GenerateOptions {
    GenerateOptions {
        events: 30_000,
        users: 120,
        days: 6,
        seed: 7,
        ..GenerateOptions::default()
    }
}

fn assert_sessions_equal(got: &[Expected], expected: &[Expected]) {
    assert_eq!(got.len(), expected.len(), "number of sessions");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g, e);
    }
}

#[tokio::test]
async fn sessions_view_matches_the_reference() {
    let engine = generated(&small(), None).await;
    let settings = engine.settings();
    assert_eq!(
        settings.timeout_of("helpdesk"),
        Duration::from_mins(5),
        "generate writes the applications' timeouts to dwell.toml and the engine reads them"
    );
    let events = reference_events(&engine, &settings).await;
    assert_eq!(events.len(), 30_000);
    let expected = expected_sessions(&events, &settings);
    assert!(
        expected.len() > 1_000,
        "a realistic number of sessions: {}",
        expected.len()
    );
    // The generator exercises every way a session ends.
    let reasons: BTreeSet<&str> = expected.iter().map(|s| s.end_reason.as_str()).collect();
    for reason in [
        "tab_close",
        "tab_hidden",
        "tab_switch",
        "app_switch",
        "restart",
        "timeout",
        "open",
    ] {
        assert!(
            reasons.contains(reason),
            "no session ended with {reason}: {reasons:?}"
        );
    }
    assert_sessions_equal(&view_sessions(&engine).await, &expected);
}

/// Under a memory limit, the events are sorted by DataFusion's sort, which spills to disk, and
/// sessionized as they stream out of it: the sessions are still exactly the reference's.
#[tokio::test]
async fn sessions_under_a_memory_limit_spill_and_match_the_reference() {
    // Small batches and merge reservations, so that a limit far below the data's size still
    // lets every sort run.
    let mut config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(1024);
    config.options_mut().execution.sort_spill_reservation_bytes = 32 * 1024;
    let engine = Engine::builder(DataLocation::parse("memory://").expect("location"))
        .with_config(config)
        .with_memory_limit(Some(32 * 1024 * 1024))
        .build()
        .await
        .expect("engine");
    // Several times the limit, as Arrow in memory.
    let options = GenerateOptions {
        events: 200_000,
        users: 800,
        ..small()
    };
    engine.generate(&options, &|_| {}).await.expect("generate");
    let settings = engine.settings();
    let expected = expected_sessions(&reference_events(&engine, &settings).await, &settings);
    assert_sessions_equal(&view_sessions(&engine).await, &expected);

    // `sessions` reads the persisted sessions (made under the same limit by the generator's
    // commit); `sessions_with()` sessionizes at query time.
    let analyzed = query(
        &engine,
        "EXPLAIN ANALYZE SELECT count(*) FROM sessions_with()",
    )
    .await;
    let plan = texts(&analyzed, "plan")
        .into_iter()
        .flatten()
        .collect::<String>();
    assert!(plan.contains("SessionizeExec: mode=Presorted"), "{plan}");
    let spilled = plan.lines().any(|line| {
        line.contains("SortExec")
            && line
                .split("spill_count=")
                .nth(1)
                .is_some_and(|n| !n.starts_with('0'))
    });
    assert!(spilled, "the events' sort spilled to disk:\n{plan}");
}

/// Sorting in memory counts against the memory pool: over the limit it is an error, not a
/// process killed for want of memory.
#[tokio::test]
async fn sorting_in_memory_counts_against_the_memory_limit() {
    let engine = generated(&small(), None).await;
    let limited =
        dwell_engine::session_context_with_memory_limit(SessionConfig::new(), Some(256 * 1024))
            .expect("context");
    let rules: Vec<_> = limited
        .state()
        .physical_optimizers()
        .iter()
        .filter(|rule| rule.name() != SessionizeRule::NAME)
        .cloned()
        .chain([Arc::new(SessionizeRule::sorting_in_memory()) as _])
        .collect();
    let state = SessionStateBuilder::new_from_existing(limited.state())
        .with_physical_optimizer_rules(rules)
        .build();
    let limited = SessionContext::new_with_state(state);
    let events = engine.context().table("events").await.expect("events");
    let schema = Arc::new(events.schema().as_arrow().clone());
    let batches = events.collect().await.expect("events");
    let table = MemTable::try_new(schema, vec![batches]).expect("table");
    limited
        .register_table("events", Arc::new(table))
        .expect("register");
    let error = limited
        .sql(
            "SELECT count(s) FROM (SELECT sessionize(event_time, user_id, app_id, tab_id, \
             event_type) OVER (PARTITION BY user_id ORDER BY event_time) AS s FROM events)",
        )
        .await
        .expect("plan")
        .collect()
        .await
        .expect_err("over the limit");
    let message = error.to_string();
    assert!(
        message.contains("Resources exhausted") && message.contains("SessionizeExec"),
        "{message}"
    );
}

#[tokio::test]
async fn sessions_view_follows_non_default_settings() {
    let settings = Settings {
        default_timeout: Duration::from_mins(20),
        app_timeouts: [("crm".to_owned(), Duration::from_mins(7))].into(),
        max_session_duration: Some(Duration::from_mins(15)),
        day_boundary: true,
        time_zone: "Asia/Tokyo".parse().expect("zone"),
        split_on_equal_gap: true,
        ..Settings::default()
    };
    let engine = generated(&small(), Some(settings.clone())).await;
    let events = reference_events(&engine, &settings).await;
    let expected = expected_sessions(&events, &settings);
    let reasons: BTreeSet<&str> = expected.iter().map(|s| s.end_reason.as_str()).collect();
    for reason in ["max_duration", "day_boundary"] {
        assert!(
            reasons.contains(reason),
            "no session ended with {reason}: {reasons:?}"
        );
    }
    assert_sessions_equal(&view_sessions(&engine).await, &expected);
}

#[tokio::test]
async fn sessionized_events_carry_their_session() {
    let engine = generated(&small(), None).await;
    let settings = engine.settings();
    let events = reference_events(&engine, &settings).await;
    let expected = expected_sessions(&events, &settings);
    let b = query(
        &engine,
        "SELECT account_id, user_id, session_id, session_seq, count(*) AS n \
         FROM sessionized_events GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 4",
    )
    .await;
    let (ids, seqs, counts) = (
        texts(&b, "session_id"),
        ints(&b, "session_seq"),
        ints(&b, "n"),
    );
    assert_eq!(ids.len(), expected.len());
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(ids[i].as_deref(), Some(e.session_id.as_str()));
        assert_eq!(seqs[i], Some(e.session_seq));
        assert_eq!(counts[i], Some(e.event_count));
    }
    let duplicates = events.len() as i64 - expected.iter().map(|e| e.event_count).sum::<i64>();
    assert!(duplicates > 0, "the generator sends some events twice");
}

type DailyKey = (String, Option<String>, Option<String>);

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one walk through all metric views, each checked in turn"
)]
async fn metric_views_match_the_reference() {
    let engine = generated(&small(), None).await;
    let settings = engine.settings();
    let expected = expected_sessions(&reference_events(&engine, &settings).await, &settings);

    // daily_session_metrics
    let mut daily: BTreeMap<DailyKey, Vec<&Expected>> = BTreeMap::new();
    for s in &expected {
        daily
            .entry((s.day.to_string(), s.account_id.clone(), s.app_id.clone()))
            .or_default()
            .push(s);
    }
    let b = query(
        &engine,
        "SELECT CAST(day AS VARCHAR) AS day, * EXCLUDE (day) FROM daily_session_metrics \
         ORDER BY day, account_id, app_id",
    )
    .await;
    let (days, accounts, apps) = (
        texts(&b, "day"),
        texts(&b, "account_id"),
        texts(&b, "app_id"),
    );
    let (sessions, users) = (ints(&b, "sessions"), ints(&b, "users"));
    let (total, avg, med) = (
        floats(&b, "total_session_seconds"),
        floats(&b, "avg_session_seconds"),
        floats(&b, "median_session_seconds"),
    );
    assert_eq!(days.len(), daily.len());
    for (i, ((day, account, app), list)) in daily.iter().enumerate() {
        assert_eq!(
            (days[i].as_ref(), &accounts[i], &apps[i]),
            (Some(day), account, app)
        );
        let mut durations: Vec<f64> = list.iter().map(|s| s.duration_seconds).collect();
        let sum: f64 = durations.iter().sum();
        assert_eq!(sessions[i], Some(list.len() as i64));
        let distinct: BTreeSet<&str> = list.iter().map(|s| s.user_id.as_str()).collect();
        assert_eq!(users[i], Some(distinct.len() as i64));
        assert!(
            close(total[i].expect("total"), sum),
            "total of {day} {account:?} {app:?}"
        );
        assert!(close(avg[i].expect("avg"), sum / list.len() as f64));
        assert!(close(med[i].expect("median"), median(&mut durations)));
    }

    // user_session_stats and user_segments
    let stats = user_stats(&expected);
    let b = query(
        &engine,
        "SELECT * FROM user_session_stats ORDER BY account_id, user_id",
    )
    .await;
    let (accounts, users) = (texts(&b, "account_id"), texts(&b, "user_id"));
    let (sessions, active, apps) = (
        ints(&b, "sessions"),
        ints(&b, "active_days"),
        ints(&b, "apps_used"),
    );
    let (first, last) = (ints(&b, "first_seen"), ints(&b, "last_seen"));
    let (total, avg, med) = (
        floats(&b, "total_session_seconds"),
        floats(&b, "avg_session_seconds"),
        floats(&b, "median_session_seconds"),
    );
    assert_eq!(accounts.len(), stats.len());
    for (i, ((account, user), s)) in stats.iter().enumerate() {
        assert_eq!((&accounts[i], users[i].as_ref()), (account, Some(user)));
        assert_eq!(
            (sessions[i], active[i], apps[i], first[i], last[i]),
            (
                Some(s.sessions),
                Some(s.active_days),
                Some(s.apps_used),
                Some(s.first_seen),
                Some(s.last_seen)
            )
        );
        assert!(close(total[i].expect("total"), s.total));
        assert!(close(avg[i].expect("avg"), s.avg));
        assert!(close(med[i].expect("median"), s.median));
    }
    let b = query(
        &engine,
        "SELECT * FROM user_segments ORDER BY account_id, user_id",
    )
    .await;
    let segments = texts(&b, "segment");
    let per_day = floats(&b, "sessions_per_active_day");
    assert_eq!(segments.len(), stats.len());
    let mut seen = BTreeSet::new();
    for (i, s) in stats.values().enumerate() {
        assert_eq!(segments[i].as_deref(), Some(segment(s, &settings)));
        assert!(close(
            per_day[i].expect("per day"),
            s.sessions as f64 / s.active_days as f64
        ));
        seen.insert(segment(s, &settings));
    }
    assert_eq!(
        seen,
        BTreeSet::from(["disengaged", "engaged", "struggling"]),
        "the generated users fall in every segment"
    );
}

#[tokio::test]
async fn views_are_listed_and_documented() {
    let engine = generated(
        &GenerateOptions {
            events: 500,
            users: 10,
            ..small()
        },
        None,
    )
    .await;
    let b = query(
        &engine,
        "SELECT table_name, table_type FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY table_name",
    )
    .await;
    let listed: BTreeMap<String, String> = texts(&b, "table_name")
        .into_iter()
        .zip(texts(&b, "table_type"))
        .map(|(n, t)| (n.expect("name"), t.expect("type")))
        .collect();
    for view in &VIEWS {
        assert_eq!(
            listed.get(view.name).map(String::as_str),
            Some("VIEW"),
            "{}",
            view.name
        );
    }
    for table in [
        "events",
        "users",
        "app_settings",
        "dwell_settings",
        "dwell_columns",
    ] {
        assert_eq!(
            listed.get(table).map(String::as_str),
            Some("BASE TABLE"),
            "{table}"
        );
    }
    // Every column of every view has a description, and every description a column.
    for view in &VIEWS {
        let b = query(
            &engine,
            &format!(
                "SELECT column_name FROM information_schema.columns WHERE table_name = '{}'",
                view.name
            ),
        )
        .await;
        let columns: BTreeSet<String> = texts(&b, "column_name").into_iter().flatten().collect();
        let documented: BTreeSet<String> = view
            .columns
            .iter()
            .filter(|(c, _)| *c != "*")
            .map(|(c, _)| (*c).to_owned())
            .collect();
        if view.columns.iter().any(|(c, _)| *c == "*") {
            assert!(documented.is_subset(&columns), "{}", view.name);
        } else {
            assert_eq!(columns, documented, "{}", view.name);
        }
    }
    let b = query(
        &engine,
        "SELECT count(*) AS n FROM dwell_columns WHERE table_name = 'sessions'",
    )
    .await;
    assert_eq!(ints(&b, "n"), vec![Some(16)]);
    let b = query(&engine, "SHOW TABLES").await;
    assert!(texts(&b, "table_name").contains(&Some("user_segments".to_owned())));
}

#[tokio::test]
async fn generate_is_deterministic_per_seed() {
    let a = generated(
        &GenerateOptions {
            events: 3_000,
            users: 30,
            ..small()
        },
        None,
    )
    .await;
    let b = generated(
        &GenerateOptions {
            events: 3_000,
            users: 30,
            ..small()
        },
        None,
    )
    .await;
    let c = generated(
        &GenerateOptions {
            events: 3_000,
            users: 30,
            seed: 8,
            ..small()
        },
        None,
    )
    .await;
    let sql = "SELECT * FROM events ORDER BY account_id, user_id, event_time, event_id";
    let (a, b, c) = (
        query(&a, sql).await,
        query(&b, sql).await,
        query(&c, sql).await,
    );
    assert_eq!(texts(&a, "event_id"), texts(&b, "event_id"));
    assert_eq!(ints(&a, "event_time"), ints(&b, "event_time"));
    assert_ne!(ints(&a, "event_time"), ints(&c, "event_time"));
}
