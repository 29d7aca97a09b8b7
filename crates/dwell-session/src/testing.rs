//! Random timelines for property tests: the cases SESSIONS.md makes interesting (gaps just
//! under, at and over each timeout, ties, tab and app switches, closing and opening events,
//! NULL tabs and apps, repeated event ids, several users and accounts).
//!
//! Compiled for this crate's tests and, with the `testing` feature, for other crates' tests.

use arrow::datatypes::TimeUnit;
use proptest::prelude::*;

use crate::kernel::Rule;
use crate::reference::RefEvent;

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
/// App `B`'s timeout; `A` and NULL use the default (30 minutes).
pub const APP_B_TIMEOUT_MICROS: i64 = 5 * MINUTE;
/// 2026-01-05 22:00:00 UTC in microseconds: close enough to midnight that day boundaries matter.
const BASE_MICROS: i64 = 1_767_650_400 * SECOND;

/// Gaps between a user's consecutive events, in microseconds.
const GAPS: [i64; 13] = [
    0,
    1,
    MINUTE,
    APP_B_TIMEOUT_MICROS - 1,
    APP_B_TIMEOUT_MICROS,
    APP_B_TIMEOUT_MICROS + 1,
    30 * MINUTE - 1,
    30 * MINUTE,
    30 * MINUTE + 1,
    60 * MINUTE,
    60 * MINUTE + 1,
    3 * 60 * MINUTE,
    0,
];
const EVENT_TYPES: [Option<&str>; 9] = [
    Some("page_view"),
    Some("page_view"),
    Some("user_action"),
    Some("content_engagement"),
    Some("tab_open"),
    Some("tab_visible"),
    Some("tab_close"),
    Some("tab_hidden"),
    None,
];

/// The timeout of an application, as the per-row column would carry it (µs; NULL = default).
#[must_use]
pub fn app_timeout_micros(app: Option<&str>) -> Option<i64> {
    (app == Some("B")).then_some(APP_B_TIMEOUT_MICROS)
}

fn pick<T: Clone>(options: &[T], i: usize) -> T {
    options[i % options.len()].clone()
}

/// Events in microseconds, not in timeline order; `time`, `user_id` are occasionally NULL.
pub fn events(max_len: usize) -> impl Strategy<Value = Vec<RefEvent>> {
    let step = (
        0..6usize,
        0..GAPS.len(),
        0..8usize,
        0..8usize,
        0..EVENT_TYPES.len(),
        0..14usize,
        0..40u8,
    );
    proptest::collection::vec(step, 0..max_len).prop_map(|steps| {
        let mut clocks = std::collections::HashMap::new();
        steps
            .into_iter()
            .map(|(who, gap, tab, app, kind, id, null)| {
                let account = pick(&[None, Some("a1")], who / 3).map(str::to_owned);
                let user = pick(&["u1", "u2", "u3"], who).to_owned();
                let clock = clocks.entry(who).or_insert(BASE_MICROS);
                *clock += GAPS[gap];
                let app_id = pick(&[Some("A"), Some("A"), Some("A"), Some("B"), None], app);
                RefEvent {
                    time: (null != 0).then_some(*clock),
                    account_id: account,
                    user_id: (null != 1).then_some(user),
                    app_id: app_id.map(str::to_owned),
                    tab_id: pick(&[Some("t1"), Some("t1"), Some("t1"), Some("t2"), None], tab)
                        .map(str::to_owned),
                    event_type: EVENT_TYPES[kind].map(str::to_owned),
                    event_id: (id < 7).then(|| format!("e{id}")),
                    timeout_nanos: app_timeout_micros(app_id).map(|t| t * 1_000),
                }
            })
            .collect()
    })
}

/// A rule for microsecond times with the optional settings on or off.
///
/// # Panics
///
/// Never: the day-boundary zone is a fixed offset.
pub fn rule() -> impl Strategy<Value = Rule> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(max, day, equal)| Rule {
        max_duration_nanos: max.then_some(60 * MINUTE * 1_000),
        day_boundary: day.then(|| "+01:00".parse().expect("fixed offset")),
        gap_equal_splits: equal,
        ..Rule::new(TimeUnit::Microsecond)
    })
}
