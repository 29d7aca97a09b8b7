//! The session rule written the obvious way: the executable form of SESSIONS.md §2-§4.
//!
//! Slow (sorts, re-scans) and simple on purpose. Tests compare the streaming [`Sessionizer`]
//! and the SQL function with it; nothing in production calls it.
//!
//! Compiled for this crate's tests and, with the `testing` feature, for other crates' tests.
//!
//! [`Sessionizer`]: crate::kernel::Sessionizer

use std::collections::{BTreeMap, HashSet};

use chrono::TimeZone;

use crate::kernel::{DEFAULT_TIMEOUT_NANOS, EndReason, Event, Placement, Rule, SessionPlacement};
use crate::session_id::SessionIdHasher;

/// One input row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefEvent {
    /// `event_time` in the rule's unit; NULL rows cannot be placed.
    pub time: Option<i64>,
    pub account_id: Option<String>,
    /// NULL rows cannot be placed.
    pub user_id: Option<String>,
    pub app_id: Option<String>,
    pub tab_id: Option<String>,
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    /// The application's timeout; NULL means the default (30 minutes).
    pub timeout_nanos: Option<i64>,
}

impl RefEvent {
    fn as_event(&self) -> Event<'_> {
        Event {
            time: self.time.unwrap_or_default(),
            account_id: self.account_id.as_deref(),
            user_id: self.user_id.as_deref(),
            app_id: self.app_id.as_deref(),
            tab_id: self.tab_id.as_deref(),
            event_type: self.event_type.as_deref(),
            event_id: self.event_id.as_deref(),
            timeout_nanos: self.timeout_nanos.unwrap_or(DEFAULT_TIMEOUT_NANOS),
        }
    }

    fn timeline_key(&self) -> impl Ord + '_ {
        (
            self.time,
            &self.event_id,
            &self.tab_id,
            &self.app_id,
            &self.event_type,
        )
    }
}

/// A finished session, with its end reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSession {
    pub session_id: String,
    pub account_id: Option<String>,
    pub user_id: String,
    pub app_id: Option<String>,
    pub tab_id: Option<String>,
    pub session_seq: i64,
    pub start_time: i64,
    pub end_time: i64,
    pub event_count: i64,
    pub end_reason: EndReason,
}

/// Where each row lands, in input order: `None` for rows without `event_time` or `user_id`.
///
/// # Panics
///
/// Never: the `expect`s state invariants of the walk.
#[must_use]
pub fn place(events: &[RefEvent], rule: &Rule) -> Vec<Option<Placement>> {
    let mut out = vec![None; events.len()];
    for timeline in timelines(events) {
        let mut seen = HashSet::new();
        let mut kept: Vec<usize> = Vec::new();
        for &i in &timeline {
            match &events[i].event_id {
                Some(id) if !seen.insert(id.clone()) => out[i] = Some(Placement::Duplicate),
                _ => kept.push(i),
            }
        }
        let mut hasher = SessionIdHasher::default();
        let mut current: Option<SessionPlacement> = None;
        for (k, &i) in kept.iter().enumerate() {
            let e = &events[i];
            // `Some(why the session before ended)` when `e` starts a session.
            let starts = match current {
                None => Some(None),
                Some(c) => boundary(rule, &events[kept[k - 1]], e, c.session_start).map(Some),
            };
            let placement = match (starts, current) {
                (None, Some(c)) => SessionPlacement {
                    starts_session: false,
                    previous_end_reason: None,
                    ..c
                },
                (None, None) => unreachable!("the first event starts a session"),
                (Some(previous_end_reason), _) => {
                    let earlier = kept[..k]
                        .iter()
                        .filter(|&&j| events[j].time == e.time)
                        .count();
                    SessionPlacement {
                        session_id: hasher.session_id(&e.as_event(), rule.scale, earlier as u64),
                        session_seq: current.map_or(1, |c| c.session_seq + 1),
                        session_start: e.time.expect("placed"),
                        starts_session: true,
                        previous_end_reason,
                    }
                }
            };
            current = Some(placement);
            out[i] = Some(Placement::InSession(placement));
        }
    }
    out
}

/// The sessions of all users, ordered by account, user and `session_seq`.
///
/// # Panics
///
/// Never: the `expect`s state invariants of the walk.
#[must_use]
pub fn sessions(events: &[RefEvent], rule: &Rule) -> Vec<RefSession> {
    let placements = place(events, rule);
    let mut newest: BTreeMap<Option<&str>, i64> = BTreeMap::new();
    let mut by_session: BTreeMap<(Option<&str>, &str, i64), Vec<usize>> = BTreeMap::new();
    for (i, p) in placements.iter().enumerate() {
        if let Some(Placement::InSession(s)) = p {
            let e = &events[i];
            let t = e.time.expect("placed");
            let n = newest.entry(e.account_id.as_deref()).or_insert(t);
            *n = (*n).max(t);
            let user = e.user_id.as_deref().expect("placed");
            by_session
                .entry((e.account_id.as_deref(), user, s.session_seq))
                .or_default()
                .push(i);
        }
    }
    let mut out: Vec<RefSession> = Vec::new();
    let keys: Vec<_> = by_session.keys().copied().collect();
    for (n, key) in keys.iter().enumerate() {
        let mut rows = by_session[key].clone();
        rows.sort_by(|&a, &b| events[a].timeline_key().cmp(&events[b].timeline_key()));
        let (first, last) = (&events[rows[0]], &events[*rows.last().expect("non-empty")]);
        let Some(Placement::InSession(p)) = placements[rows[0]] else {
            unreachable!()
        };
        let next = keys.get(n + 1).filter(|k| k.0 == key.0 && k.1 == key.1);
        let end_reason = if let Some(next_key) = next {
            let next_first = by_session[next_key]
                .iter()
                .find_map(|&i| match placements[i] {
                    Some(Placement::InSession(s)) if s.starts_session => s.previous_end_reason,
                    _ => None,
                });
            next_first.expect("a later session always has a previous end reason")
        } else {
            let closing = matches!(last.event_type.as_deref(), Some("tab_close" | "tab_hidden"));
            let newest_time = newest[&key.0];
            let gap = (i128::from(newest_time) - i128::from(last.time.expect("placed")))
                * rule.scale.nanos(1);
            let timeout = i128::from(last.timeout_nanos.unwrap_or(DEFAULT_TIMEOUT_NANOS));
            if closing {
                if last.event_type.as_deref() == Some("tab_close") {
                    EndReason::TabClose
                } else {
                    EndReason::TabHidden
                }
            } else if gap > timeout || (rule.gap_equal_splits && gap == timeout) {
                EndReason::Timeout
            } else {
                EndReason::Open
            }
        };
        out.push(RefSession {
            session_id: p.session_id.to_string(),
            account_id: first.account_id.clone(),
            user_id: key.1.to_owned(),
            app_id: first.app_id.clone(),
            tab_id: first.tab_id.clone(),
            session_seq: p.session_seq,
            start_time: first.time.expect("placed"),
            end_time: last.time.expect("placed"),
            event_count: rows.len() as i64,
            end_reason,
        });
    }
    out
}

/// Row indices per `(account_id, user_id)`, each in timeline order (rows without time or user
/// left out).
#[must_use]
pub fn timelines(events: &[RefEvent]) -> Vec<Vec<usize>> {
    let mut users: BTreeMap<(Option<&str>, &str), Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if let (Some(_), Some(user)) = (e.time, e.user_id.as_deref()) {
            users
                .entry((e.account_id.as_deref(), user))
                .or_default()
                .push(i);
        }
    }
    users
        .into_values()
        .map(|mut rows| {
            rows.sort_by(|&a, &b| events[a].timeline_key().cmp(&events[b].timeline_key()));
            rows
        })
        .collect()
}

/// SESSIONS.md §3, row by row, in order. `None`: `e` continues `p`'s session.
fn boundary(rule: &Rule, p: &RefEvent, e: &RefEvent, session_start: i64) -> Option<EndReason> {
    let nanos = |from: i64, to: i64| (i128::from(to) - i128::from(from)) * rule.scale.nanos(1);
    let over = |gap: i128, limit: i64| {
        gap > i128::from(limit) || (rule.gap_equal_splits && gap == i128::from(limit))
    };
    let (pt, et) = (p.time.expect("placed"), e.time.expect("placed"));
    let reason = match () {
        () if p.event_type.as_deref() == Some("tab_close") => EndReason::TabClose,
        () if p.event_type.as_deref() == Some("tab_hidden") => EndReason::TabHidden,
        () if e.tab_id != p.tab_id => EndReason::TabSwitch,
        () if e.app_id != p.app_id => EndReason::AppSwitch,
        () if matches!(e.event_type.as_deref(), Some("tab_open" | "tab_visible")) => {
            EndReason::Restart
        }
        () if over(
            nanos(pt, et),
            p.timeout_nanos.unwrap_or(DEFAULT_TIMEOUT_NANOS),
        ) =>
        {
            EndReason::Timeout
        }
        () if rule
            .max_duration_nanos
            .is_some_and(|max| over(nanos(session_start, et), max)) =>
        {
            EndReason::MaxDuration
        }
        () if rule
            .day_boundary
            .is_some_and(|tz| local_day(rule, tz, pt) != local_day(rule, tz, et)) =>
        {
            EndReason::DayBoundary
        }
        () => return None,
    };
    Some(reason)
}

/// The local calendar day of a time, as days since 1970-01-01. Times beyond chrono's range
/// (past year 262143, reachable only with second or millisecond units) count in UTC days.
fn local_day(rule: &Rule, tz: arrow::array::timezone::Tz, ticks: i64) -> i64 {
    let secs = rule.scale.nanos(ticks).div_euclid(1_000_000_000);
    let secs = i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX });
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(utc) => {
            let local = tz.from_utc_datetime(&utc.naive_utc()).date_naive();
            local
                .signed_duration_since(chrono::NaiveDate::default())
                .num_days()
        }
        None => secs.div_euclid(86_400),
    }
}
