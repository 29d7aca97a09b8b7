//! Every file in `queries/` runs over generated data, with its result checked against figures
//! computed from the reference sessions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::array::RecordBatch;
use dwell_engine::{Engine, GenerateOptions, Settings};

use crate::support::{
    Expected, UserKey, close, expected_sessions, floats, ints, query, reference_events, segment,
    texts, user_stats,
};
use crate::views::{generated, small};

fn queries_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../queries"))
}

async fn run_file(engine: &Engine, name: &str) -> Vec<RecordBatch> {
    let text = std::fs::read_to_string(queries_dir().join(name)).expect(name);
    let mut last = Vec::new();
    for statement in dwell_cli::statements(&text) {
        last = query(engine, &statement).await;
    }
    last
}

/// (sessions, distinct users, avg, total) of a group of sessions.
fn figures(list: &[&Expected]) -> (i64, i64, f64, f64) {
    let total: f64 = list.iter().map(|s| s.duration_seconds).sum();
    let users: BTreeSet<(&Option<String>, &str)> = list
        .iter()
        .map(|s| (&s.account_id, s.user_id.as_str()))
        .collect();
    (
        list.len() as i64,
        users.len() as i64,
        total / list.len() as f64,
        total,
    )
}

fn check_grouped<K: Ord + std::fmt::Debug>(
    batches: &[RecordBatch],
    key_column: &str,
    groups: &BTreeMap<K, Vec<&Expected>>,
    key_text: impl Fn(&K) -> Option<String>,
    with_users: bool,
) {
    let keys = texts(batches, key_column);
    let (sessions, avg, total) = (
        ints(batches, "sessions"),
        floats(batches, "avg_session_seconds"),
        floats(batches, "total_session_seconds"),
    );
    assert_eq!(keys.len(), groups.len(), "{key_column}");
    for (i, (key, list)) in groups.iter().enumerate() {
        let (n, users, mean, sum) = figures(list);
        assert_eq!(keys[i], key_text(key), "{key_column} row {i}");
        assert_eq!(sessions[i], Some(n), "{key:?}");
        assert!(close(avg[i].expect("avg"), mean), "{key:?}");
        assert!(close(total[i].expect("total"), sum), "{key:?}");
        if with_users {
            assert_eq!(ints(batches, "users")[i], Some(users), "{key:?}");
        }
    }
}

struct Fixture {
    engine: Engine,
    settings: Settings,
    sessions: Vec<Expected>,
    /// account, user -> (department, role)
    attributes: BTreeMap<UserKey, (String, String)>,
}

async fn fixture() -> Fixture {
    let engine = generated(
        &GenerateOptions {
            events: 20_000,
            users: 100,
            ..small()
        },
        None,
    )
    .await;
    let settings = engine.settings();
    let sessions = expected_sessions(&reference_events(&engine, &settings).await, &settings);
    let b = query(&engine, "SELECT * FROM users").await;
    let attributes = texts(&b, "account_id")
        .into_iter()
        .zip(texts(&b, "user_id"))
        .zip(texts(&b, "department").into_iter().zip(texts(&b, "role")))
        .map(|((a, u), (d, r))| {
            (
                (a, u.expect("user")),
                (d.expect("department"), r.expect("role")),
            )
        })
        .collect();
    Fixture {
        engine,
        settings,
        sessions,
        attributes,
    }
}

#[tokio::test]
async fn every_query_file_is_checked() {
    let checked: BTreeSet<&str> = CHECKED.iter().copied().collect();
    let files: BTreeSet<String> = std::fs::read_dir(queries_dir())
        .expect("queries/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| {
            Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("sql"))
        })
        .collect();
    let files: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    assert_eq!(
        files, checked,
        "every file in queries/ needs a check in tests/it/queries.rs"
    );
}

const CHECKED: [&str; 10] = [
    "headline.sql",
    "sessions.sql",
    "sessions_per_day.sql",
    "sessions_per_application.sql",
    "sessions_per_account.sql",
    "user_drilldown.sql",
    "struggling_users.sql",
    "disengaged_users.sql",
    "usage_by_department.sql",
    "usage_by_role.sql",
];

#[tokio::test]
async fn session_queries() {
    let f = fixture().await;
    let all: Vec<&Expected> = f.sessions.iter().collect();
    let (n, _, mean, total) = figures(&all);

    let b = run_file(&f.engine, "headline.sql").await;
    assert_eq!(ints(&b, "sessions"), vec![Some(n)]);
    assert_eq!(
        floats(&b, "avg_session_seconds"),
        vec![Some((mean * 10.0).round() / 10.0)]
    );
    assert_eq!(
        floats(&b, "total_session_hours"),
        vec![Some((total / 3600.0 * 10.0).round() / 10.0)]
    );

    let b = run_file(&f.engine, "sessions.sql").await;
    assert_eq!(
        texts(&b, "session_id"),
        f.sessions
            .iter()
            .map(|s| Some(s.session_id.clone()))
            .collect::<Vec<_>>()
    );

    let mut by_day: BTreeMap<String, Vec<&Expected>> = BTreeMap::new();
    let mut by_app: BTreeMap<Option<String>, Vec<&Expected>> = BTreeMap::new();
    let mut by_account: BTreeMap<Option<String>, Vec<&Expected>> = BTreeMap::new();
    for s in &f.sessions {
        by_day.entry(s.day.to_string()).or_default().push(s);
        by_app.entry(s.app_id.clone()).or_default().push(s);
        by_account.entry(s.account_id.clone()).or_default().push(s);
    }
    check_grouped(
        &run_file(&f.engine, "sessions_per_day.sql").await,
        "day",
        &by_day,
        |k| Some(k.clone()),
        true,
    );
    check_grouped(
        &run_file(&f.engine, "sessions_per_application.sql").await,
        "app_id",
        &by_app,
        Clone::clone,
        false,
    );
    check_grouped(
        &run_file(&f.engine, "sessions_per_account.sql").await,
        "account_id",
        &by_account,
        Clone::clone,
        true,
    );

    let b = run_file(&f.engine, "user_drilldown.sql").await;
    let mut mine: Vec<&Expected> = f
        .sessions
        .iter()
        .filter(|s| s.account_id.as_deref() == Some("acme") && s.user_id == "acme-u000000")
        .collect();
    mine.reverse();
    assert!(!mine.is_empty(), "the drill-down user has sessions");
    assert_eq!(
        ints(&b, "session_seq"),
        mine.iter().map(|s| Some(s.session_seq)).collect::<Vec<_>>()
    );
    assert_eq!(
        floats(&b, "duration_seconds"),
        mine.iter()
            .map(|s| Some(s.duration_seconds))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        texts(&b, "end_reason"),
        mine.iter()
            .map(|s| Some(s.end_reason.clone()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn segment_and_attribute_queries() {
    let f = fixture().await;
    let stats = user_stats(&f.sessions);
    for (file, wanted) in [
        ("struggling_users.sql", "struggling"),
        ("disengaged_users.sql", "disengaged"),
    ] {
        let b = run_file(&f.engine, file).await;
        let got: BTreeSet<UserKey> = texts(&b, "account_id")
            .into_iter()
            .zip(texts(&b, "user_id"))
            .map(|(a, u)| (a, u.expect("user")))
            .collect();
        let expected: BTreeSet<UserKey> = stats
            .iter()
            .filter(|(_, s)| segment(s, &f.settings) == wanted)
            .map(|(k, _)| k.clone())
            .collect();
        assert!(!expected.is_empty(), "some users are {wanted}");
        assert_eq!(got, expected, "{file}");
    }

    let mut by_department: BTreeMap<String, Vec<&Expected>> = BTreeMap::new();
    for s in &f.sessions {
        let (department, _) = &f.attributes[&(s.account_id.clone(), s.user_id.clone())];
        by_department.entry(department.clone()).or_default().push(s);
    }
    check_grouped(
        &run_file(&f.engine, "usage_by_department.sql").await,
        "department",
        &by_department,
        |k| Some(k.clone()),
        true,
    );

    let b = run_file(&f.engine, "usage_by_role.sql").await;
    let mut by_role: BTreeMap<&str, Vec<&UserKey>> = BTreeMap::new();
    for key in stats.keys() {
        by_role
            .entry(f.attributes[key].1.as_str())
            .or_default()
            .push(key);
    }
    let (roles, users, sessions) = (texts(&b, "role"), ints(&b, "users"), ints(&b, "sessions"));
    let share = floats(&b, "struggling_share");
    assert_eq!(roles.len(), by_role.len());
    for (i, (role, keys)) in by_role.iter().enumerate() {
        assert_eq!(roles[i].as_deref(), Some(*role));
        assert_eq!(users[i], Some(keys.len() as i64));
        assert_eq!(
            sessions[i],
            Some(keys.iter().map(|k| stats[*k].sessions).sum::<i64>())
        );
        let struggling = keys
            .iter()
            .filter(|k| segment(&stats[**k], &f.settings) == "struggling")
            .count();
        assert!(close(
            share[i].expect("share"),
            struggling as f64 / keys.len() as f64
        ));
    }
}
