//! The session rule, as a pure state machine over one user's timeline.
//!
//! This is the only place where SESSIONS.md §3 is implemented. Everything else (the Arrow
//! adapter, the views) feeds events in and reads placements out.
//!
//! Walk a user's timeline (ordered by `event_time`, then `event_id`, `tab_id`, `app_id`,
//! `event_type`, NULLs first). Event `e`, with `p` the non-duplicate event before it, starts a new
//! session when any of these holds; the first that holds, in this order, is the `end_reason` of
//! the session that `p` ends:
//!
//! | # | condition                                                         | end reason of the session before |
//! |---|-------------------------------------------------------------------|----------------------------------|
//! | 1 | `e` is the user's first event                                     | (none)                           |
//! | 2 | `p.event_type` is `tab_close` or `tab_hidden`                     | `tab_close` / `tab_hidden`       |
//! | 3 | `e.tab_id` is distinct from `p.tab_id`                            | `tab_switch`                     |
//! | 4 | `e.app_id` is distinct from `p.app_id`                            | `app_switch`                     |
//! | 5 | `e.event_type` is `tab_open` or `tab_visible`                     | `restart`                        |
//! | 6 | `e.event_time - p.event_time > timeout` (of `p`)                  | `timeout`                        |
//! | 7 | a maximum duration is set and `e.event_time - start > max`        | `max_duration`                   |
//! | 8 | a day boundary is set and `e`, `p` fall on different local days   | `day_boundary`                   |
//!
//! "Distinct" treats NULL as a value of its own (`IS DISTINCT FROM`). Gaps equal to the timeout
//! or the maximum duration continue the session unless [`Rule::gap_equal_splits`] is set.
//! An event whose non-NULL `event_id` was already seen on this timeline is a duplicate: it is
//! reported as such and changes nothing.
//!
//! The end reason of a user's *last* session (`open`, `timeout`, or the closing event's type)
//! needs the end of the timeline and the account's newest event; see [`last_session_end_reason`].

use std::fmt;

use arrow::array::timezone::Tz;
use arrow::datatypes::TimeUnit;
use chrono::{Offset, TimeZone};

use crate::event_ids::EventIdSet;
use crate::session_id::{SessionId, SessionIdHasher};

/// The session activity timeout used when an application has none: 30 minutes.
pub const DEFAULT_TIMEOUT_NANOS: i64 = 30 * 60 * 1_000_000_000;

/// What an `event_type` means to the rule (SESSIONS.md §1). Types are compared exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Any other value, NULL included.
    Activity,
    /// `tab_open` or `tab_visible`: a session always starts here.
    Start,
    /// `tab_close`: the session ends with this event.
    TabClose,
    /// `tab_hidden`: the session ends with this event.
    TabHidden,
}

impl EventKind {
    /// Classifies an `event_type` value.
    #[must_use]
    pub fn of(event_type: Option<&str>) -> Self {
        match event_type {
            Some("tab_open" | "tab_visible") => Self::Start,
            Some("tab_close") => Self::TabClose,
            Some("tab_hidden") => Self::TabHidden,
            _ => Self::Activity,
        }
    }

    fn closing_reason(self) -> Option<EndReason> {
        match self {
            Self::TabClose => Some(EndReason::TabClose),
            Self::TabHidden => Some(EndReason::TabHidden),
            Self::Activity | Self::Start => None,
        }
    }
}

/// Why a session ended (SESSIONS.md §3 and §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndReason {
    TabClose,
    TabHidden,
    TabSwitch,
    AppSwitch,
    Restart,
    Timeout,
    MaxDuration,
    DayBoundary,
    /// The user's last session, which an event at the account's newest time would continue.
    Open,
}

impl EndReason {
    pub const ALL: [Self; 9] = [
        Self::TabClose,
        Self::TabHidden,
        Self::TabSwitch,
        Self::AppSwitch,
        Self::Restart,
        Self::Timeout,
        Self::MaxDuration,
        Self::DayBoundary,
        Self::Open,
    ];

    /// The value shown in SQL.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TabClose => "tab_close",
            Self::TabHidden => "tab_hidden",
            Self::TabSwitch => "tab_switch",
            Self::AppSwitch => "app_switch",
            Self::Restart => "restart",
            Self::Timeout => "timeout",
            Self::MaxDuration => "max_duration",
            Self::DayBoundary => "day_boundary",
            Self::Open => "open",
        }
    }
}

impl std::str::FromStr for EndReason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown end reason '{s}'"))
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A time on the timeline: an integer count of `unit`s since the Unix epoch (UTC).
///
/// Gaps are compared in nanoseconds as `i128`, so every unit is exact and nothing overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeScale {
    nanos_per_tick: i64,
}

impl TimeScale {
    #[must_use]
    pub fn new(unit: TimeUnit) -> Self {
        let nanos_per_tick = match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        };
        Self { nanos_per_tick }
    }

    /// Nanoseconds since the epoch.
    #[must_use]
    pub fn nanos(self, ticks: i64) -> i128 {
        i128::from(ticks) * i128::from(self.nanos_per_tick)
    }

    /// Nanoseconds from `from` to `to`.
    #[must_use]
    pub fn gap_nanos(self, from: i64, to: i64) -> i128 {
        (i128::from(to) - i128::from(from)) * i128::from(self.nanos_per_tick)
    }
}

/// The parts of the rule that are settings rather than data (SESSIONS.md §5).
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unit of the event times fed to the kernel.
    pub scale: TimeScale,
    /// Rule 7: split when a session would last longer than this many nanoseconds.
    pub max_duration_nanos: Option<i64>,
    /// Rule 8: split where the calendar day changes in this time zone.
    pub day_boundary: Option<Tz>,
    /// A gap exactly equal to the timeout (or maximum duration) splits.
    pub gap_equal_splits: bool,
}

impl Rule {
    /// The default rule for times in `unit`: no maximum duration, no day boundary, equal gaps
    /// continue.
    #[must_use]
    pub fn new(unit: TimeUnit) -> Self {
        Self {
            scale: TimeScale::new(unit),
            max_duration_nanos: None,
            day_boundary: None,
            gap_equal_splits: false,
        }
    }

    fn exceeds(&self, gap_nanos: i128, limit_nanos: i64) -> bool {
        if self.gap_equal_splits {
            gap_nanos >= i128::from(limit_nanos)
        } else {
            gap_nanos > i128::from(limit_nanos)
        }
    }

    /// The calendar day of `ticks` in the day-boundary zone, as days since 0001-01-01.
    fn local_day(&self, tz: Tz, ticks: i64) -> i64 {
        let nanos = self.scale.nanos(ticks);
        let secs = nanos.div_euclid(1_000_000_000);
        // chrono's range ends near year 262143; far beyond any event. Clamp rather than panic.
        let secs = i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX });
        match chrono::DateTime::from_timestamp(secs, 0) {
            Some(utc) => {
                let offset = tz.offset_from_utc_datetime(&utc.naive_utc()).fix();
                let local_secs = secs + i64::from(offset.local_minus_utc());
                local_secs.div_euclid(86_400)
            }
            None => secs.div_euclid(86_400),
        }
    }
}

/// One event as the kernel sees it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// `event_time` in the rule's unit.
    pub time: i64,
    pub account_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub app_id: Option<&'a str>,
    pub tab_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub event_id: Option<&'a str>,
    /// The session activity timeout of this event's application, in nanoseconds (> 0).
    pub timeout_nanos: i64,
}

/// Where an event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A repeat of an earlier event of this timeline with the same `event_id`; ignored.
    Duplicate,
    /// The event belongs to a session.
    InSession(SessionPlacement),
}

/// An event's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPlacement {
    pub session_id: SessionId,
    /// 1 for the user's first session, 2 for the next, ...
    pub session_seq: i64,
    /// `event_time` of the session's first event, in the rule's unit.
    pub session_start: i64,
    /// This event is its session's first.
    pub starts_session: bool,
    /// When this event starts a session that is not the user's first: why the one before ended.
    pub previous_end_reason: Option<EndReason>,
}

/// Event times went backwards: the input is not ordered by `event_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfOrder {
    pub previous: i64,
    pub current: i64,
}

/// The last non-duplicate event, owned so that state survives across batches.
#[derive(Debug)]
struct Previous {
    time: i64,
    tab_id: Option<String>,
    app_id: Option<String>,
    kind: EventKind,
    timeout_nanos: i64,
    /// Local day of `time`, when a day boundary is set.
    day: Option<i64>,
}

/// Replaces `slot` with `value` reusing its allocation; a no-op when they are equal.
fn assign(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(current), Some(new)) if current == new => {}
        (Some(current), Some(new)) => {
            current.clear();
            current.push_str(new);
        }
        (None, None) => {}
        (_, new) => *slot = new.map(str::to_owned),
    }
}

/// Sessionizes one user's timeline, one event at a time.
///
/// Feed the events of one timeline in order with [`Sessionizer::push`]; state carries over
/// between calls, so input may arrive in any number of batches. Use a new `Sessionizer` per
/// timeline.
#[derive(Debug)]
pub struct Sessionizer {
    rule: Rule,
    /// Time of the last event pushed, duplicates included: the order check.
    last_time: Option<i64>,
    previous: Option<Previous>,
    seen_event_ids: EventIdSet,
    current: Option<SessionPlacement>,
    /// How many non-duplicate events before the next one share `previous.time`.
    same_time_run: u64,
    id_hasher: SessionIdHasher,
}

impl Sessionizer {
    #[must_use]
    pub fn new(rule: Rule) -> Self {
        Self {
            rule,
            last_time: None,
            previous: None,
            seen_event_ids: EventIdSet::default(),
            current: None,
            same_time_run: 0,
            id_hasher: SessionIdHasher::default(),
        }
    }

    /// Starts the next timeline, as a new `Sessionizer` would, keeping allocated memory.
    pub fn restart(&mut self) {
        self.last_time = None;
        self.previous = None;
        self.seen_event_ids.clear();
        self.current = None;
        self.same_time_run = 0;
    }

    /// Places the next event of the timeline.
    pub fn push(&mut self, event: &Event<'_>) -> Result<Placement, OutOfOrder> {
        if let Some(previous) = self.last_time
            && event.time < previous
        {
            return Err(OutOfOrder {
                previous,
                current: event.time,
            });
        }
        self.last_time = Some(event.time);
        if let Some(id) = event.event_id
            && !self.seen_event_ids.insert(id)
        {
            return Ok(Placement::Duplicate);
        }

        let kind = EventKind::of(event.event_type);
        let day = self
            .rule
            .day_boundary
            .map(|tz| self.rule.local_day(tz, event.time));
        // `Some((seq of the session before, why it ended))` when `event` starts a session.
        let starts = match (&self.previous, &self.current) {
            (Some(p), Some(current)) => self
                .boundary(p, current, event, kind, day)
                .map(|reason| (current.session_seq, Some(reason))),
            _ => Some((0, None)),
        };

        let placement = match (starts, self.current) {
            (None, Some(current)) => SessionPlacement {
                starts_session: false,
                previous_end_reason: None,
                ..current
            },
            (Some((previous_seq, previous_end_reason)), _) => {
                let earlier_at_same_time = match &self.previous {
                    Some(p) if p.time == event.time => self.same_time_run,
                    _ => 0,
                };
                SessionPlacement {
                    session_id: self.id_hasher.session_id(
                        event,
                        self.rule.scale,
                        earlier_at_same_time,
                    ),
                    session_seq: previous_seq + 1,
                    session_start: event.time,
                    starts_session: true,
                    previous_end_reason,
                }
            }
            (None, None) => unreachable!("an event without a session before it always starts one"),
        };
        self.current = Some(placement);
        self.remember(event, kind, day);
        Ok(Placement::InSession(placement))
    }

    /// `None` when `e` continues the current session, else why the current session ends.
    fn boundary(
        &self,
        p: &Previous,
        current: &SessionPlacement,
        e: &Event<'_>,
        kind: EventKind,
        day: Option<i64>,
    ) -> Option<EndReason> {
        let rule = &self.rule;
        let reason = if let Some(closing) = p.kind.closing_reason() {
            closing
        } else if p.tab_id.as_deref() != e.tab_id {
            EndReason::TabSwitch
        } else if p.app_id.as_deref() != e.app_id {
            EndReason::AppSwitch
        } else if kind == EventKind::Start {
            EndReason::Restart
        } else if rule.exceeds(rule.scale.gap_nanos(p.time, e.time), p.timeout_nanos) {
            EndReason::Timeout
        } else if rule.max_duration_nanos.is_some_and(|max| {
            rule.exceeds(rule.scale.gap_nanos(current.session_start, e.time), max)
        }) {
            EndReason::MaxDuration
        } else if day.is_some() && day != p.day {
            EndReason::DayBoundary
        } else {
            return None;
        };
        Some(reason)
    }

    fn remember(&mut self, e: &Event<'_>, kind: EventKind, day: Option<i64>) {
        let Some(p) = &mut self.previous else {
            self.same_time_run = 1;
            self.previous = Some(Previous {
                time: e.time,
                tab_id: e.tab_id.map(str::to_owned),
                app_id: e.app_id.map(str::to_owned),
                kind,
                timeout_nanos: e.timeout_nanos,
                day,
            });
            return;
        };
        self.same_time_run = if p.time == e.time {
            self.same_time_run + 1
        } else {
            1
        };
        p.time = e.time;
        assign(&mut p.tab_id, e.tab_id);
        assign(&mut p.app_id, e.app_id);
        p.kind = kind;
        p.timeout_nanos = e.timeout_nanos;
        p.day = day;
    }
}

/// The end reason of a user's last session (SESSIONS.md §3).
///
/// `last_event_type` and `last_time` are of the session's last event; `newest_time` is the
/// account's newest `event_time` after duplicates are dropped; `timeout_nanos` is the timeout
/// that applied to the session.
#[must_use]
pub fn last_session_end_reason(
    rule: &Rule,
    last_event_type: Option<&str>,
    last_time: i64,
    newest_time: i64,
    timeout_nanos: i64,
) -> EndReason {
    if let Some(closing) = EventKind::of(last_event_type).closing_reason() {
        closing
    } else if rule.exceeds(rule.scale.gap_nanos(last_time, newest_time), timeout_nanos) {
        EndReason::Timeout
    } else {
        EndReason::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60;

    fn rule() -> Rule {
        Rule::new(TimeUnit::Second)
    }

    /// An event at `minute` past 10:00 on 2026-01-05 UTC.
    fn at(minute: i64) -> Event<'static> {
        Event {
            time: 1_767_607_200 + minute * MIN,
            account_id: None,
            user_id: Some("u1"),
            app_id: Some("A"),
            tab_id: Some("t1"),
            event_type: Some("page_view"),
            event_id: None,
            timeout_nanos: DEFAULT_TIMEOUT_NANOS,
        }
    }

    fn run(rule: Rule, events: &[Event<'_>]) -> Vec<Placement> {
        let mut s = Sessionizer::new(rule);
        events.iter().map(|e| s.push(e).expect("ordered")).collect()
    }

    fn seqs(placements: &[Placement]) -> Vec<i64> {
        placements
            .iter()
            .map(|p| match p {
                Placement::InSession(s) => s.session_seq,
                Placement::Duplicate => 0,
            })
            .collect()
    }

    fn reasons(placements: &[Placement]) -> Vec<Option<EndReason>> {
        placements
            .iter()
            .filter_map(|p| match p {
                Placement::InSession(s) if s.starts_session => Some(s.previous_end_reason),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn first_event_starts_session_one_without_reason() {
        let p = run(rule(), &[at(0)]);
        assert_eq!(seqs(&p), [1]);
        assert_eq!(reasons(&p), [None]);
    }

    #[test]
    fn gap_equal_to_timeout_continues_session() {
        assert_eq!(seqs(&run(rule(), &[at(0), at(30)])), [1, 1]);
    }

    #[test]
    fn gap_one_tick_over_timeout_splits_with_timeout() {
        let mut late = at(30);
        late.time += 1;
        let p = run(rule(), &[at(0), late]);
        assert_eq!(seqs(&p), [1, 2]);
        assert_eq!(reasons(&p), [None, Some(EndReason::Timeout)]);
    }

    #[test]
    fn gap_equal_to_timeout_splits_when_configured() {
        let r = Rule {
            gap_equal_splits: true,
            ..rule()
        };
        let mut early = at(30);
        early.time -= 1;
        assert_eq!(seqs(&run(r.clone(), &[at(0), early])), [1, 1]);
        assert_eq!(seqs(&run(r, &[at(0), at(30)])), [1, 2]);
    }

    #[test]
    fn event_after_tab_close_starts_new_session() {
        let close = Event {
            event_type: Some("tab_close"),
            ..at(1)
        };
        let p = run(rule(), &[at(0), close, at(1)]);
        assert_eq!(seqs(&p), [1, 1, 2]);
        assert_eq!(reasons(&p), [None, Some(EndReason::TabClose)]);
    }

    #[test]
    fn tab_hidden_ends_session_and_tab_visible_starts_one() {
        // SESSIONS.md §6 example 5.
        let p = run(
            rule(),
            &[
                at(0),
                Event {
                    event_type: Some("tab_hidden"),
                    ..at(1)
                },
                Event {
                    event_type: Some("tab_visible"),
                    ..at(2)
                },
                Event {
                    event_type: Some("user_action"),
                    ..at(3)
                },
            ],
        );
        assert_eq!(seqs(&p), [1, 1, 2, 2]);
        assert_eq!(reasons(&p), [None, Some(EndReason::TabHidden)]);
    }

    #[test]
    fn tab_switch_ends_session_even_within_timeout() {
        // SESSIONS.md §6 example 3.
        let t2 = Event {
            tab_id: Some("t2"),
            ..at(3)
        };
        let close = Event {
            event_type: Some("tab_close"),
            ..at(6)
        };
        let p = run(rule(), &[at(0), at(2), t2, at(5), close]);
        assert_eq!(seqs(&p), [1, 1, 2, 3, 3]);
        assert_eq!(
            reasons(&p),
            [None, Some(EndReason::TabSwitch), Some(EndReason::TabSwitch)]
        );
    }

    #[test]
    fn null_tab_is_a_tab_of_its_own() {
        let untabbed = Event {
            tab_id: None,
            ..at(1)
        };
        let p = run(rule(), &[at(0), untabbed, untabbed, at(2)]);
        assert_eq!(seqs(&p), [1, 2, 2, 3]);
    }

    #[test]
    fn app_switch_in_same_tab_ends_session() {
        let b = Event {
            app_id: Some("B"),
            ..at(1)
        };
        let p = run(rule(), &[at(0), b]);
        assert_eq!(reasons(&p), [None, Some(EndReason::AppSwitch)]);
    }

    #[test]
    fn tab_open_restarts_session_in_same_tab() {
        let open = Event {
            event_type: Some("tab_open"),
            ..at(1)
        };
        let p = run(rule(), &[at(0), open]);
        assert_eq!(reasons(&p), [None, Some(EndReason::Restart)]);
    }

    #[test]
    fn closing_event_wins_over_tab_switch() {
        let close = Event {
            event_type: Some("tab_close"),
            ..at(1)
        };
        let t2 = Event {
            tab_id: Some("t2"),
            ..at(90)
        };
        let p = run(rule(), &[at(0), close, t2]);
        assert_eq!(reasons(&p), [None, Some(EndReason::TabClose)]);
    }

    #[test]
    fn timeout_of_previous_event_applies() {
        // SESSIONS.md §6 example 4: app B has a 5 minute timeout.
        let five = 5 * MIN * 1_000_000_000;
        let b = |m| Event {
            app_id: Some("B"),
            timeout_nanos: five,
            ..at(m)
        };
        assert_eq!(seqs(&run(rule(), &[b(0), b(4), b(10)])), [1, 1, 2]);
        assert_eq!(seqs(&run(rule(), &[at(0), at(4), at(10)])), [1, 1, 1]);
    }

    #[test]
    fn max_duration_equal_continues_and_longer_splits() {
        // SESSIONS.md §6 example 6.
        let r = Rule {
            max_duration_nanos: Some(60 * MIN * 1_000_000_000),
            ..rule()
        };
        let events: Vec<_> = (0..=17).map(|i| at(i * 4)).collect();
        let p = run(r, &events);
        assert_eq!(seqs(&p), [vec![1; 16], vec![2; 2]].concat());
        assert_eq!(reasons(&p), [None, Some(EndReason::MaxDuration)]);
    }

    #[test]
    fn day_boundary_splits_at_local_midnight() {
        let tz: Tz = "+02:00".parse().expect("offset");
        let r = Rule {
            day_boundary: Some(tz),
            ..rule()
        };
        // 10:00 UTC + 13h50 = 23:50 UTC = 01:50 local next day; 21:55 UTC = 23:55 local.
        let before = at(11 * 60 + 55);
        let after = at(12 * 60 + 5);
        let p = run(r, &[before, after]);
        assert_eq!(reasons(&p), [None, Some(EndReason::DayBoundary)]);
        assert_eq!(
            seqs(&run(rule(), &[before, after])),
            [1, 1],
            "off by default"
        );
    }

    #[test]
    fn duplicate_event_id_is_ignored() {
        let e = Event {
            event_id: Some("e1"),
            ..at(0)
        };
        let dup_later = Event {
            event_id: Some("e1"),
            app_id: Some("B"),
            ..at(1)
        };
        let next = at(2);
        let p = run(rule(), &[e, dup_later, next]);
        assert_eq!(p[1], Placement::Duplicate);
        assert_eq!(
            seqs(&p),
            [1, 0, 1],
            "the duplicate's app switch must not split"
        );
    }

    #[test]
    fn null_event_ids_are_never_duplicates() {
        assert_eq!(seqs(&run(rule(), &[at(0), at(0)])), [1, 1]);
    }

    #[test]
    fn time_going_backwards_is_an_error() {
        let mut s = Sessionizer::new(rule());
        s.push(&at(5)).expect("first");
        assert_eq!(
            s.push(&at(4)),
            Err(OutOfOrder {
                previous: at(5).time,
                current: at(4).time
            })
        );
    }

    #[test]
    fn sessions_starting_at_the_same_instant_get_distinct_ids() {
        let close = Event {
            event_type: Some("tab_close"),
            ..at(0)
        };
        let p = run(rule(), &[close, close, at(0)]);
        let ids: Vec<_> = p
            .iter()
            .map(|p| match p {
                Placement::InSession(s) => s.session_id,
                Placement::Duplicate => unreachable!(),
            })
            .collect();
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_ne!(ids[0], ids[2]);
    }

    #[test]
    fn session_id_depends_only_on_first_event() {
        let a = run(rule(), &[at(0), at(1)]);
        let b = run(
            rule(),
            &[
                at(0),
                at(1),
                at(2),
                Event {
                    tab_id: Some("t9"),
                    ..at(3)
                },
            ],
        );
        assert_eq!(a[0], b[0]);
        assert_eq!(a[1], b[1]);
    }

    #[test]
    fn last_session_is_open_within_timeout_of_newest_event() {
        let r = rule();
        let t = at(0).time;
        assert_eq!(
            last_session_end_reason(&r, Some("page_view"), t, t, DEFAULT_TIMEOUT_NANOS),
            EndReason::Open
        );
        assert_eq!(
            last_session_end_reason(
                &r,
                Some("page_view"),
                t,
                t + 30 * MIN,
                DEFAULT_TIMEOUT_NANOS
            ),
            EndReason::Open
        );
        assert_eq!(
            last_session_end_reason(
                &r,
                Some("page_view"),
                t,
                t + 30 * MIN + 1,
                DEFAULT_TIMEOUT_NANOS
            ),
            EndReason::Timeout
        );
        assert_eq!(
            last_session_end_reason(&r, Some("tab_hidden"), t, t, DEFAULT_TIMEOUT_NANOS),
            EndReason::TabHidden
        );
    }
}
