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

/// Events and a rule decoded from arbitrary bytes, for fuzzing: 10 bytes an event (user and
/// account, gap, tab, app, type, id, NULLs, and two bytes that sometimes make the gap huge,
/// up to the ends of `i64`), the first byte choosing the rule.
///
/// # Panics
///
/// Never: the day-boundary zone is a fixed offset.
#[must_use]
pub fn timeline_from_bytes(data: &[u8]) -> (Vec<RefEvent>, Rule) {
    let Some((&first, rest)) = data.split_first() else {
        return (Vec::new(), Rule::new(TimeUnit::Microsecond));
    };
    let rule = Rule {
        max_duration_nanos: (first & 1 != 0).then_some(60 * MINUTE * 1_000),
        day_boundary: (first & 2 != 0).then(|| "+01:00".parse().expect("fixed offset")),
        gap_equal_splits: first & 4 != 0,
        ..Rule::new(TimeUnit::Microsecond)
    };
    let mut clocks = std::collections::HashMap::new();
    let events = rest
        .chunks_exact(10)
        .map(|b| {
            let who = usize::from(b[0] % 6);
            let account = pick(&[None, Some("a1")], who / 3).map(str::to_owned);
            let user = pick(&["u1", "u2", "u3"], who).to_owned();
            let gap = match b[8] {
                // Far jumps: the kernel's arithmetic must hold at the ends of the range.
                0xFF => i64::MAX / 4 * i64::from(b[9] % 4),
                0xFE => -(i64::MAX / 4) * i64::from(b[9] % 4),
                _ => GAPS[usize::from(b[1]) % GAPS.len()],
            };
            let clock: &mut i64 = clocks.entry(who).or_insert(BASE_MICROS);
            *clock = clock.saturating_add(gap);
            let app_id = pick(
                &[Some("A"), Some("A"), Some("A"), Some("B"), None],
                usize::from(b[3]),
            );
            RefEvent {
                time: (b[6] % 40 != 0).then_some(*clock),
                account_id: account,
                user_id: (b[6] % 40 != 1).then_some(user),
                app_id: app_id.map(str::to_owned),
                tab_id: pick(
                    &[Some("t1"), Some("t1"), Some("t1"), Some("t2"), None],
                    usize::from(b[2]),
                )
                .map(str::to_owned),
                event_type: EVENT_TYPES[usize::from(b[4]) % EVENT_TYPES.len()].map(str::to_owned),
                event_id: (b[5] % 14 < 7).then(|| format!("e{}", b[5] % 14)),
                timeout_nanos: app_timeout_micros(app_id).map(|t| t * 1_000),
            }
        })
        .collect();
    (events, rule)
}

/// Where the streaming kernel and the reference place `events` differently, if anywhere: the
/// kernel is fed each user's timeline in order, one event at a time.
///
/// # Panics
///
/// Never: the reference's timelines hold only rows with a time.
#[must_use]
pub fn kernel_disagreement(events: &[RefEvent], rule: &Rule) -> Option<String> {
    use crate::kernel::{DEFAULT_TIMEOUT_NANOS, Event, Sessionizer};
    let expected = crate::reference::place(events, rule);
    let mut got = vec![None; events.len()];
    for timeline in crate::reference::timelines(events) {
        let mut sessionizer = Sessionizer::new(rule.clone());
        for i in timeline {
            let e = &events[i];
            let event = Event {
                time: e.time.expect("placed rows have a time"),
                account_id: e.account_id.as_deref(),
                user_id: e.user_id.as_deref(),
                app_id: e.app_id.as_deref(),
                tab_id: e.tab_id.as_deref(),
                event_type: e.event_type.as_deref(),
                event_id: e.event_id.as_deref(),
                timeout_nanos: e.timeout_nanos.unwrap_or(DEFAULT_TIMEOUT_NANOS),
            };
            match sessionizer.push(&event) {
                Ok(placement) => got[i] = Some(placement),
                Err(error) => {
                    return Some(format!("event {i} refused in timeline order: {error:?}"));
                }
            }
        }
    }
    (got != expected).then(|| {
        let first = (0..events.len()).find(|&i| got[i] != expected[i]);
        format!("first difference at event {first:?}: kernel {got:?}, reference {expected:?}")
    })
}
