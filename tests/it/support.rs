//! Shared helpers: reading query results into plain Rust values, and the expected sessions of
//! an engine's events computed with the reference implementation of the session rule.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampNanosecondType};
use chrono::{DateTime, NaiveDate};
use dwell_engine::{DataLocation, Engine, GenerateOptions, Settings};
use dwell_session::kernel::{Placement, Rule};
use dwell_session::reference::{self, RefEvent};

/// A column of a result as text (NULL as `None`), whatever its type.
pub(crate) fn texts(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let column = cast(
                b.column_by_name(name)
                    .unwrap_or_else(|| panic!("column {name}")),
                &DataType::Utf8,
            )
            .expect("to text");
            let column = column.as_string::<i32>();
            (0..column.len())
                .map(|r| (!column.is_null(r)).then(|| column.value(r).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A column of a result as i64 (times as nanoseconds since the epoch).
pub(crate) fn ints(batches: &[RecordBatch], name: &str) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| {
            let column = b
                .column_by_name(name)
                .unwrap_or_else(|| panic!("column {name}"));
            let column = match column.data_type() {
                DataType::Timestamp(_, _) => {
                    let ns = cast(column, &DataType::Timestamp(TimeUnit::Nanosecond, None))
                        .expect("to ns");
                    let ns = ns.as_primitive::<TimestampNanosecondType>();
                    return (0..ns.len())
                        .map(|r| (!ns.is_null(r)).then(|| ns.value(r)))
                        .collect::<Vec<_>>();
                }
                _ => cast(column, &DataType::Int64).expect("to i64"),
            };
            let column = column.as_primitive::<Int64Type>();
            (0..column.len())
                .map(|r| (!column.is_null(r)).then(|| column.value(r)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A column of a result as f64.
pub(crate) fn floats(batches: &[RecordBatch], name: &str) -> Vec<Option<f64>> {
    batches
        .iter()
        .flat_map(|b| {
            let column = cast(
                b.column_by_name(name)
                    .unwrap_or_else(|| panic!("column {name}")),
                &DataType::Float64,
            )
            .expect("to f64");
            let column = column.as_primitive::<Float64Type>();
            (0..column.len())
                .map(|r| (!column.is_null(r)).then(|| column.value(r)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Runs SQL and collects the result.
pub(crate) async fn query(engine: &Engine, sql: &str) -> Vec<RecordBatch> {
    engine
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("plan {sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("run {sql}: {e}"))
}

/// A fresh prefix in the S3 bucket of `DWELL_TEST_S3` (`.ci/run` starts moto and sets it and
/// the `AWS_*` variables), or `None` after saying `test` was skipped. Under CI the S3 tests
/// must run, so a missing bucket fails there.
pub(crate) fn s3_test_prefix(test: &str) -> Option<String> {
    let Ok(bucket) = std::env::var("DWELL_TEST_S3") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run {test}: set DWELL_TEST_S3"
        );
        eprintln!("SKIPPED {test}: no S3 server (set DWELL_TEST_S3=s3://bucket and AWS_*)");
        return None;
    };
    Some(format!(
        "{}/{test}-{}-{}",
        bucket.trim_end_matches('/'),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    ))
}

/// Generates events into `location` (created if missing).
pub(crate) async fn generate_at(location: &DataLocation, options: &GenerateOptions) {
    let engine = Engine::builder(location.clone())
        .create_if_missing(true)
        .build()
        .await
        .expect("engine");
    engine.generate(options, &|_| {}).await.expect("generate");
}

/// Floats equal up to summation order.
pub(crate) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// A session as the views should show it, from the reference.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expected {
    pub(crate) session_id: String,
    pub(crate) account_id: Option<String>,
    pub(crate) user_id: String,
    pub(crate) app_id: Option<String>,
    pub(crate) tab_id: Option<String>,
    pub(crate) session_seq: i64,
    pub(crate) start_time: i64,
    pub(crate) end_time: i64,
    pub(crate) duration_seconds: f64,
    pub(crate) event_count: i64,
    pub(crate) page_views: i64,
    pub(crate) user_actions: i64,
    pub(crate) content_engagements: i64,
    pub(crate) end_reason: String,
    pub(crate) timeout_seconds: f64,
    pub(crate) day: NaiveDate,
}

/// The events of an engine's `events` table, as the reference reads them.
pub(crate) async fn reference_events(engine: &Engine, settings: &Settings) -> Vec<RefEvent> {
    let batches = query(engine, "SELECT * FROM events").await;
    let has = |c: &str| {
        batches
            .first()
            .is_some_and(|b| b.column_by_name(c).is_some())
    };
    let column = |c: &str, n: usize| {
        if has(c) {
            texts(&batches, c)
        } else {
            vec![None; n]
        }
    };
    let times = ints(&batches, "event_time");
    let n = times.len();
    let (accounts, users, apps, tabs, types, ids) = (
        column("account_id", n),
        column("user_id", n),
        column("app_id", n),
        column("tab_id", n),
        column("event_type", n),
        column("event_id", n),
    );
    (0..n)
        .map(|i| RefEvent {
            time: times[i],
            account_id: accounts[i].clone(),
            user_id: users[i].clone(),
            app_id: apps[i].clone(),
            tab_id: tabs[i].clone(),
            event_type: types[i].clone(),
            event_id: ids[i].clone(),
            timeout_nanos: Some(
                apps[i]
                    .as_deref()
                    .map_or(settings.default_timeout, |a| settings.timeout_of(a))
                    .as_nanos() as i64,
            ),
        })
        .collect()
}

/// The reference rule for these settings over nanosecond times.
pub(crate) fn rule(settings: &Settings) -> Rule {
    let mut rule = Rule::new(TimeUnit::Nanosecond);
    rule.max_duration_nanos = settings.max_session_duration.map(|d| d.as_nanos() as i64);
    rule.day_boundary = settings.day_boundary.then(|| {
        settings
            .time_zone
            .name()
            .parse()
            .expect("a zone arrow knows")
    });
    rule.gap_equal_splits = settings.split_on_equal_gap;
    rule
}

/// Every session, with the columns of SESSIONS.md §4, by the reference.
pub(crate) fn expected_sessions(events: &[RefEvent], settings: &Settings) -> Vec<Expected> {
    let rule = rule(settings);
    let mut counts: BTreeMap<(Option<&str>, &str, i64), [i64; 3]> = BTreeMap::new();
    for (event, placement) in events.iter().zip(reference::place(events, &rule)) {
        if let Some(Placement::InSession(p)) = placement {
            let c = counts
                .entry((
                    event.account_id.as_deref(),
                    event.user_id.as_deref().expect("placed"),
                    p.session_seq,
                ))
                .or_default();
            match event.event_type.as_deref() {
                Some("page_view") => c[0] += 1,
                Some("user_action") => c[1] += 1,
                Some("content_engagement") => c[2] += 1,
                _ => {}
            }
        }
    }
    reference::sessions(events, &rule)
        .into_iter()
        .map(|s| {
            let c = counts[&(s.account_id.as_deref(), s.user_id.as_str(), s.session_seq)];
            let timeout = s
                .app_id
                .as_deref()
                .map_or(settings.default_timeout, |a| settings.timeout_of(a));
            Expected {
                duration_seconds: ((s.end_time - s.start_time) / 1000) as f64 / 1e6,
                page_views: c[0],
                user_actions: c[1],
                content_engagements: c[2],
                end_reason: s.end_reason.as_str().to_owned(),
                timeout_seconds: timeout.as_secs_f64(),
                day: DateTime::from_timestamp_nanos(s.start_time)
                    .with_timezone(&settings.time_zone)
                    .date_naive(),
                session_id: s.session_id,
                account_id: s.account_id,
                user_id: s.user_id,
                app_id: s.app_id,
                tab_id: s.tab_id,
                session_seq: s.session_seq,
                start_time: s.start_time,
                end_time: s.end_time,
                event_count: s.event_count,
            }
        })
        .collect()
}

/// The `sessions` view read back, in the same order as [`expected_sessions`].
pub(crate) async fn view_sessions(engine: &Engine) -> Vec<Expected> {
    sessions_of(engine, "sessions").await
}

/// A table of sessions (`sessions`, a call of `sessions_with`) read back, in the same order as
/// [`expected_sessions`].
pub(crate) async fn sessions_of(engine: &Engine, table: &str) -> Vec<Expected> {
    let b = query(engine, &format!("SELECT *, CAST(day AS VARCHAR) AS day_text FROM {table} ORDER BY account_id, user_id, session_seq")).await;
    let (ids, accounts, users, apps, tabs) = (
        texts(&b, "session_id"),
        texts(&b, "account_id"),
        texts(&b, "user_id"),
        texts(&b, "app_id"),
        texts(&b, "tab_id"),
    );
    let (seqs, starts, ends) = (
        ints(&b, "session_seq"),
        ints(&b, "start_time"),
        ints(&b, "end_time"),
    );
    let (durations, timeouts) = (
        floats(&b, "duration_seconds"),
        floats(&b, "timeout_seconds"),
    );
    let (count, pages, actions, engagements) = (
        ints(&b, "event_count"),
        ints(&b, "page_views"),
        ints(&b, "user_actions"),
        ints(&b, "content_engagements"),
    );
    let (reasons, days) = (texts(&b, "end_reason"), texts(&b, "day_text"));
    (0..ids.len())
        .map(|i| Expected {
            session_id: ids[i].clone().expect("id"),
            account_id: accounts[i].clone(),
            user_id: users[i].clone().expect("user"),
            app_id: apps[i].clone(),
            tab_id: tabs[i].clone(),
            session_seq: seqs[i].expect("seq"),
            start_time: starts[i].expect("start"),
            end_time: ends[i].expect("end"),
            duration_seconds: durations[i].expect("duration"),
            event_count: count[i].expect("count"),
            page_views: pages[i].expect("pages"),
            user_actions: actions[i].expect("actions"),
            content_engagements: engagements[i].expect("engagements"),
            end_reason: reasons[i].clone().expect("reason"),
            timeout_seconds: timeouts[i].expect("timeout"),
            day: days[i].as_deref().expect("day").parse().expect("date"),
        })
        .collect()
}

/// Exact median: the mean of the two middle values for an even count.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

/// Per-user figures of `user_session_stats`, from expected sessions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserStats {
    pub(crate) sessions: i64,
    pub(crate) active_days: i64,
    pub(crate) total: f64,
    pub(crate) avg: f64,
    pub(crate) median: f64,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
    pub(crate) apps_used: i64,
}

pub(crate) type UserKey = (Option<String>, String);

pub(crate) fn user_stats(sessions: &[Expected]) -> BTreeMap<UserKey, UserStats> {
    let mut by_user: BTreeMap<UserKey, Vec<&Expected>> = BTreeMap::new();
    for s in sessions {
        by_user
            .entry((s.account_id.clone(), s.user_id.clone()))
            .or_default()
            .push(s);
    }
    by_user
        .into_iter()
        .map(|(key, list)| {
            let mut durations: Vec<f64> = list.iter().map(|s| s.duration_seconds).collect();
            let total: f64 = durations.iter().sum();
            let stats = UserStats {
                sessions: list.len() as i64,
                active_days: list.iter().map(|s| s.day).collect::<BTreeSet<_>>().len() as i64,
                total,
                avg: total / list.len() as f64,
                median: median(&mut durations),
                first_seen: list.iter().map(|s| s.start_time).min().expect("one"),
                last_seen: list.iter().map(|s| s.end_time).max().expect("one"),
                apps_used: list
                    .iter()
                    .map(|s| s.app_id.clone())
                    .collect::<BTreeSet<_>>()
                    .len() as i64,
            };
            (key, stats)
        })
        .collect()
}

/// The segment rule of the README, restated.
pub(crate) fn segment(stats: &UserStats, settings: &Settings) -> &'static str {
    let t = &settings.segments;
    let per_day = stats.sessions as f64 / stats.active_days as f64;
    if stats.sessions <= t.disengaged_max_sessions as i64
        || stats.total <= t.disengaged_max_total_session.as_secs_f64()
    {
        "disengaged"
    } else if per_day >= t.struggling_min_sessions_per_day
        && stats.median <= t.struggling_max_median_session.as_secs_f64()
        && stats.apps_used >= t.struggling_min_apps as i64
    {
        "struggling"
    } else {
        "engaged"
    }
}
