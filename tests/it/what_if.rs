//! `sessions_with(...)`: sessions recomputed at query time with settings given in the call
//! equal the reference under those settings; without settings they equal `sessions`; tenants
//! see their own account only; bad calls name what is wrong.

use std::time::Duration;

use dwell_engine::{GenerateOptions, Scope, Settings};

use crate::support::{
    Expected, expected_sessions, ints, query, reference_events, sessions_of, texts, view_sessions,
};
use crate::views::generated;

fn options() -> GenerateOptions {
    GenerateOptions {
        events: 8_000,
        users: 120,
        days: 4,
        seed: 11,
        ..GenerateOptions::default()
    }
}

fn assert_same(got: &[Expected], expected: &[Expected], call: &str) {
    assert_eq!(got.len(), expected.len(), "{call}: number of sessions");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g, e, "{call}");
    }
}

#[tokio::test]
async fn sessions_with_recomputes_sessions_under_the_settings_given() {
    let engine = generated(&options(), None).await;
    let in_force = engine.settings();
    let events = reference_events(&engine, &in_force).await;

    // No settings: the settings in force, so exactly `sessions`.
    let plain = view_sessions(&engine).await;
    assert_same(
        &sessions_of(&engine, "sessions_with()").await,
        &plain,
        "sessions_with()",
    );
    assert_same(&plain, &expected_sessions(&events, &in_force), "sessions");

    let fifteen = Settings {
        default_timeout: Duration::from_mins(15),
        ..in_force.clone()
    };
    let mut strict = in_force.clone();
    strict
        .app_timeouts
        .insert("crm".to_owned(), Duration::from_mins(2));
    strict.max_session_duration = Some(Duration::from_hours(1));
    strict.day_boundary = true;
    strict.time_zone = "Europe/Berlin".parse().expect("a zone");
    strict.split_on_equal_gap = true;
    let cases = [
        ("sessions_with('default_timeout', '15m')", fifteen),
        (
            "sessions_with('app_timeouts.crm', '2m', 'max_session_duration', '1h', \
             'day_boundary', true, 'time_zone', 'Europe/Berlin', 'split_on_equal_gap', 'true')",
            strict,
        ),
    ];
    for (call, settings) in cases {
        let expected = expected_sessions(&reference_events(&engine, &settings).await, &settings);
        assert_ne!(
            expected.len(),
            plain.len(),
            "{call}: the settings change the sessions of this data, so the test can tell"
        );
        assert_same(&sessions_of(&engine, call).await, &expected, call);
    }
    // The views keep the settings in force.
    assert_same(
        &view_sessions(&engine).await,
        &plain,
        "sessions after the calls",
    );
    // Segment thresholds do not change sessions, and are accepted by their keys.
    assert_same(
        &sessions_of(&engine, "sessions_with('segments.struggling_min_apps', 3)").await,
        &plain,
        "segments.struggling_min_apps",
    );
}

#[tokio::test]
async fn sessions_with_follows_new_events() {
    let engine = generated(&options(), None).await;
    let before = ints(
        &query(&engine, "SELECT count(*) AS n FROM sessions_with()").await,
        "n",
    );
    engine
        .generate(
            &GenerateOptions {
                seed: 12,
                ..options()
            },
            &|_| {},
        )
        .await
        .expect("second generate");
    let count = |table: &'static str| {
        let engine = &engine;
        async move {
            ints(
                &query(engine, &format!("SELECT count(*) AS n FROM {table}")).await,
                "n",
            )
        }
    };
    let after = count("sessions_with()").await;
    assert_eq!(after, count("sessions").await);
    assert!(after[0] > before[0], "{after:?} after {before:?}");
}

#[tokio::test]
async fn sessions_with_sees_a_tenants_own_account_only() {
    let engine = generated(&options(), None).await;
    let accounts = texts(
        &query(
            &engine,
            "SELECT DISTINCT account_id FROM sessions ORDER BY account_id",
        )
        .await,
        "account_id",
    );
    assert!(accounts.len() > 1, "{accounts:?}");
    let account = accounts[0].clone().expect("an account");
    let tenant = engine
        .context_for(&Scope::Account(account.clone()))
        .await
        .expect("tenant context");
    let seen = tenant
        .sql("SELECT DISTINCT account_id FROM sessions_with('default_timeout', '15m')")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    assert_eq!(texts(&seen, "account_id"), [Some(account.clone())]);
    let own = tenant
        .sql("SELECT count(*) AS n FROM sessions_with('default_timeout', '15m')")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let admin = query(
        &engine,
        &format!(
            "SELECT count(*) AS n FROM sessions_with('default_timeout', '15m') \
             WHERE account_id = '{account}'"
        ),
    )
    .await;
    assert_eq!(ints(&own, "n"), ints(&admin, "n"));
}

#[tokio::test]
async fn bad_calls_of_sessions_with_name_what_is_wrong() {
    let engine = generated(&options(), None).await;
    for (call, named) in [
        ("sessions_with('default_timeout')", "pairs"),
        (
            "sessions_with('no_such_key', '1')",
            "no_such_key: is not a setting",
        ),
        (
            "sessions_with('default_timeout', 'soon')",
            "default_timeout",
        ),
        ("sessions_with('default_timeout', '0s')", "longer than zero"),
        ("sessions_with('time_zone', 'Mars/Olympus')", "time_zone"),
        ("sessions_with('day_boundary', 'maybe')", "line"),
        (
            "sessions_with('day_boundary', 'true\nx = 1')",
            "not a number or boolean",
        ),
        ("sessions_with('app_timeouts.crm', '5m\"')", "quote"),
        ("sessions_with(1, '15m')", "literal string"),
    ] {
        let error = match engine.sql(&format!("SELECT * FROM {call}")).await {
            Ok(frame) => frame.collect().await.expect_err(call).to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            error.contains("sessions_with") && error.contains(named),
            "{call}: {error}"
        );
    }
}
