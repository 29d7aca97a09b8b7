//! The session views: SQL over `events`, with the settings written in as literals.
//!
//! This is the one SQL statement of SESSIONS.md §3-4 and §7 in the project; `queries/` and the
//! tests build on these views rather than restating them.

use std::fmt::Write;
use std::time::Duration;

use arrow::datatypes::Schema;

use crate::settings::Settings;

/// A view or table and the meaning of each of its columns, for `dwell_columns` and the docs.
#[derive(Debug)]
pub struct TableDoc {
    pub name: &'static str,
    pub about: &'static str,
    pub columns: &'static [(&'static str, &'static str)],
}

/// Every view the engine defines, in dependency order.
pub const VIEWS: [TableDoc; 5] = [
    TableDoc {
        name: "sessionized_events",
        about: "every placeable event (not a duplicate event_id, time and user present) with its session",
        columns: &[
            ("*", "every column of `events`"),
            ("session_id", "the id of the event's session"),
            (
                "session_seq",
                "the session's number within its user: 1, 2, ...",
            ),
            ("starts_session", "true on the session's first event"),
            (
                "previous_end_reason",
                "on a session's first event: how the user's previous session ended",
            ),
            (
                "timeout_seconds",
                "the inactivity timeout of the event's application",
            ),
        ],
    },
    TableDoc {
        name: "sessions",
        about: "one row per session (SESSIONS.md §4)",
        columns: &[
            (
                "session_id",
                "deterministic id from the session's first event",
            ),
            (
                "account_id",
                "the customer (tenant); NULL for the default tenant",
            ),
            ("user_id", "the user"),
            ("app_id", "the application"),
            ("tab_id", "the browser tab"),
            (
                "session_seq",
                "1 for the user's first session, 2 for the next, ...",
            ),
            ("start_time", "time of the first event"),
            ("end_time", "time of the last event"),
            (
                "duration_seconds",
                "end_time - start_time in seconds (microsecond precision)",
            ),
            ("event_count", "events in the session"),
            ("page_views", "events of type page_view"),
            ("user_actions", "events of type user_action"),
            ("content_engagements", "events of type content_engagement"),
            (
                "end_reason",
                "tab_close, tab_hidden, tab_switch, app_switch, restart, timeout, max_duration, day_boundary or open",
            ),
            ("timeout_seconds", "the inactivity timeout that applied"),
            (
                "day",
                "calendar date of start_time in the reporting time zone",
            ),
        ],
    },
    TableDoc {
        name: "daily_session_metrics",
        about: "sessions per day, account and application (SESSIONS.md §7)",
        columns: &[
            (
                "day",
                "calendar date of the sessions' start in the reporting time zone",
            ),
            ("account_id", "the customer (tenant)"),
            ("app_id", "the application"),
            ("sessions", "sessions starting that day"),
            ("users", "distinct users with a session starting that day"),
            ("total_session_seconds", "sum of duration_seconds"),
            ("avg_session_seconds", "mean of duration_seconds"),
            ("median_session_seconds", "exact median of duration_seconds"),
        ],
    },
    TableDoc {
        name: "user_session_stats",
        about: "one row per user over all their sessions (SESSIONS.md §7)",
        columns: &[
            ("account_id", "the customer (tenant)"),
            ("user_id", "the user"),
            ("sessions", "number of sessions"),
            (
                "active_days",
                "distinct days on which a session of the user starts",
            ),
            ("total_session_seconds", "sum of duration_seconds"),
            ("avg_session_seconds", "mean of duration_seconds"),
            ("median_session_seconds", "exact median of duration_seconds"),
            ("first_seen", "start of the first session"),
            ("last_seen", "end of the last session"),
            ("apps_used", "distinct applications of the user's sessions"),
        ],
    },
    TableDoc {
        name: "user_segments",
        about: "one row per user: struggling, disengaged or engaged, with the figures that decided it",
        columns: &[
            ("account_id", "the customer (tenant)"),
            ("user_id", "the user"),
            (
                "segment",
                "disengaged, struggling or engaged (rule in the README)",
            ),
            ("sessions", "number of sessions"),
            ("active_days", "distinct days with a session start"),
            ("sessions_per_active_day", "sessions / active_days"),
            ("median_session_seconds", "exact median of duration_seconds"),
            ("total_session_seconds", "sum of duration_seconds"),
            ("apps_used", "distinct applications"),
        ],
    },
];

/// The change log: every session each commit inserted or retracted.
pub const SESSION_CHANGES: TableDoc = TableDoc {
    name: "session_changes",
    about: "every session each commit inserted or retracted; applying them in commit order gives `sessions`",
    columns: &[
        (
            "commit_id",
            "the commit (1, 2, ...; the name of its manifest in _dwell/commits)",
        ),
        ("commit_time", "when it was committed"),
        ("op", "insert or retract"),
        (
            "*",
            "every column of `sessions`: the row inserted, or the row retracted as it was",
        ),
    ],
};

/// The `session_changes` view over the change log's table.
pub(crate) fn session_changes_query(table: &str) -> String {
    format!(
        "SELECT commit_seq AS commit_id, commit_time, op, {} FROM {table}",
        crate::persisted::upkeep::SESSION_COLUMNS.join(", ")
    )
}

/// Column `c` of the events aliased `e`, or a NULL string where `events` lacks it (an optional
/// column no file has, SESSIONS.md §1).
pub(crate) fn optional_column(events: &Schema, c: &str) -> String {
    if events.field_with_name(c).is_ok() {
        format!("e.{c}")
    } else {
        "CAST(NULL AS VARCHAR)".to_owned()
    }
}

/// An SQL string literal.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn interval(duration: Duration) -> String {
    format!("INTERVAL '{} milliseconds'", duration.as_millis())
}

/// `x` as nanoseconds since the epoch, whatever its unit and zone.
fn epoch_nanos(x: &str) -> String {
    format!("arrow_cast(arrow_cast({x}, 'Timestamp(Nanosecond, Some(\"UTC\"))'), 'Int64')")
}

/// `user_session_stats` over a relation of session rows (a table name or a parenthesized
/// query).
fn user_stats_over(sessions: &str) -> String {
    format!(
        "SELECT account_id, user_id, count(*) AS sessions, count(DISTINCT day) AS active_days,
       sum(duration_seconds) AS total_session_seconds,
       avg(duration_seconds) AS avg_session_seconds,
       median(duration_seconds) AS median_session_seconds,
       min(start_time) AS first_seen, max(end_time) AS last_seen,
       count(DISTINCT app_id) + max(CASE WHEN app_id IS NULL THEN 1 ELSE 0 END) AS apps_used
FROM {sessions}
GROUP BY account_id, user_id"
    )
}

/// `user_segments` over a relation of per-user stats: the segment rule of the README, with
/// the configured thresholds.
fn segments_over_stats(settings: &Settings, stats: &str) -> String {
    let t = &settings.segments;
    format!(
        "SELECT account_id, user_id,
       CASE
         WHEN sessions <= {dis_sessions} OR total_session_seconds <= {dis_total:?} THEN 'disengaged'
         WHEN sessions_per_active_day >= {str_per_day:?} AND median_session_seconds <= {str_median:?}
              AND apps_used >= {str_apps} THEN 'struggling'
         ELSE 'engaged'
       END AS segment,
       sessions, active_days, sessions_per_active_day, median_session_seconds,
       total_session_seconds, apps_used
FROM (SELECT *, CAST(sessions AS DOUBLE) / active_days AS sessions_per_active_day
      FROM {stats})",
        dis_sessions = t.disengaged_max_sessions,
        dis_total = t.disengaged_max_total_session.as_secs_f64(),
        str_per_day = t.struggling_min_sessions_per_day,
        str_median = t.struggling_max_median_session.as_secs_f64(),
        str_apps = t.struggling_min_apps,
    )
}

/// The query of `user_segments` (same columns, same rule, the thresholds of `settings`) over
/// any relation of `sessions` rows: a table name or a parenthesized query, for example the
/// sessions of one date range. Over `sessions` itself it is the view.
#[must_use]
pub fn segments_over(settings: &Settings, sessions: &str) -> String {
    segments_over_stats(settings, &format!("({})", user_stats_over(sessions)))
}

/// Each view's name and its query over `events`, in the order of [`VIEWS`] (dependency order).
#[expect(
    clippy::too_many_lines,
    reason = "the views' SQL, in one piece, reads best as one function"
)]
pub(crate) fn view_queries(
    settings: &Settings,
    events: &Schema,
    persisted: bool,
) -> [(&'static str, String); 5] {
    let has = |c: &str| events.field_with_name(c).is_ok();
    let optional = |c: &str| optional_column(events, c);
    let account = optional("account_id");
    let event_id = optional("event_id");
    let mut extra = String::new();
    for c in ["account_id", "event_id"] {
        if !has(c) {
            write!(extra, ", CAST(NULL AS VARCHAR) AS {c}").expect("string");
        }
    }

    // The timeout of an application: a CASE over the configured apps, or a constant; as an
    // interval for `sessionize` and as seconds for the views' columns.
    let timeout_of = |app: &str, value: &dyn Fn(Duration) -> String| {
        if settings.app_timeouts.is_empty() {
            return value(settings.default_timeout);
        }
        let mut case = format!("CASE {app}");
        for (id, timeout) in &settings.app_timeouts {
            write!(case, " WHEN {} THEN {}", literal(id), value(*timeout)).expect("string");
        }
        write!(case, " ELSE {} END", value(settings.default_timeout)).expect("string");
        case
    };
    let seconds = |d: Duration| format!("{:?}", d.as_secs_f64());
    let timeout_expr = timeout_of("e.app_id", &interval);
    let timeout_seconds = timeout_of("e.app_id", &seconds);
    // Per session (one app each) rather than per event: a tenth of the rows.
    let session_timeout_seconds = timeout_of("app_id", &seconds);
    let max_duration = settings
        .max_session_duration
        .map_or_else(|| "NULL".to_owned(), interval);
    let day_boundary = if settings.day_boundary {
        literal(settings.time_zone.name())
    } else {
        "NULL".to_owned()
    };
    let order = format!(
        "e.event_time, {event_id} NULLS FIRST, e.tab_id NULLS FIRST, e.app_id NULLS FIRST, \
         e.event_type NULLS FIRST"
    );
    let sessionized_events = format!(
        "SELECT * EXCLUDE (s), s['session_id'] AS session_id, s['session_seq'] AS session_seq,
       s['starts_session'] AS starts_session,
       CASE WHEN s['starts_session'] THEN s['previous_end_reason'] END AS previous_end_reason
FROM (
  SELECT e.*{extra}, {timeout_seconds} AS timeout_seconds,
         sessionize(e.event_time, e.user_id, e.app_id, e.tab_id, e.event_type,
                    {timeout_expr}, {event_id}, {account},
                    {max_duration}, {day_boundary}, {split})
           OVER (PARTITION BY {account}, e.user_id ORDER BY {order}) AS s
  FROM events e
)
WHERE s IS NOT NULL AND NOT s['is_duplicate']",
        split = settings.split_on_equal_gap,
    );

    let start_ns = epoch_nanos("g.start_time");
    let end_ns = epoch_nanos("g.end_time");
    let newest_ns = epoch_nanos("g.newest_time");
    let gap_op = if settings.split_on_equal_gap {
        ">="
    } else {
        ">"
    };
    // A session has one app and one tab (rules 3-4), so `max` picks them, and at most one
    // closing event, its last (rule 2), so `max` over closing events finds how it closed:
    // grouped aggregates that need no per-group ordering.
    // The account's newest event is the newest end of its sessions: taken with a window over
    // the sessions rather than from the events again, so the events are sessionized once. The
    // next session of the same user is found in the same window order (by account, then user
    // and sequence), so one sort serves both.
    let sessions = format!(
        "WITH grouped AS (
  SELECT account_id, user_id, session_id, session_seq,
         max(app_id) AS app_id, max(tab_id) AS tab_id,
         min(event_time) AS start_time, max(event_time) AS end_time,
         count(*) AS event_count,
         count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
         count(*) FILTER (WHERE event_type = 'user_action') AS user_actions,
         count(*) FILTER (WHERE event_type = 'content_engagement') AS content_engagements,
         max(previous_end_reason) AS previous_end_reason,
         max(CASE WHEN event_type IN ('tab_close', 'tab_hidden') THEN event_type END)
           AS closing_event
  FROM sessionized_events
  GROUP BY account_id, user_id, session_id, session_seq
),
framed AS (
  SELECT *, {session_timeout_seconds} AS timeout_seconds,
         max(end_time) OVER (PARTITION BY account_id) AS newest_time,
         lead(user_id) OVER next_session AS next_user_id,
         lead(previous_end_reason) OVER next_session AS next_previous_end_reason
  FROM grouped
  WINDOW next_session AS (PARTITION BY account_id ORDER BY user_id, session_seq)
)
SELECT g.session_id, g.account_id, g.user_id, g.app_id, g.tab_id, g.session_seq,
       g.start_time, g.end_time,
       CAST(({end_ns} - {start_ns}) / 1000 AS DOUBLE) / 1e6 AS duration_seconds,
       g.event_count, g.page_views, g.user_actions, g.content_engagements,
       COALESCE(
         CASE WHEN g.next_user_id = g.user_id THEN g.next_previous_end_reason END,
         CASE
           WHEN g.closing_event IS NOT NULL THEN g.closing_event
           WHEN CAST({newest_ns} - {end_ns} AS DOUBLE) {gap_op} g.timeout_seconds * 1e9
             THEN 'timeout'
           ELSE 'open'
         END) AS end_reason,
       g.timeout_seconds,
       CAST(to_local_time(arrow_cast(arrow_cast(g.start_time,
              'Timestamp(Nanosecond, Some(\"UTC\"))'),
              'Timestamp(Nanosecond, Some(\"{tz}\"))')) AS DATE) AS day
FROM framed g",
        tz = settings.time_zone.name(),
    );

    // Over persisted sessions (see `persisted`), `sessions` reads them: the same rows, end
    // reasons kept current by every commit.
    let sessions = if persisted {
        // Replaced by `create_views` with the live rows (`persisted::upkeep::live_rows`).
        format!(
            "SELECT {} FROM {}",
            crate::persisted::upkeep::SESSION_COLUMNS.join(", "),
            crate::persisted::ROWS_TABLE
        )
    } else {
        sessions
    };

    let daily =
        "SELECT day, account_id, app_id, count(*) AS sessions, count(DISTINCT user_id) AS users,
       sum(duration_seconds) AS total_session_seconds,
       avg(duration_seconds) AS avg_session_seconds,
       median(duration_seconds) AS median_session_seconds
FROM sessions
GROUP BY day, account_id, app_id"
            .to_owned();

    let user_stats = user_stats_over("sessions");
    let segments = segments_over_stats(settings, "user_session_stats");
    [
        ("sessionized_events", sessionized_events),
        ("sessions", sessions),
        ("daily_session_metrics", daily),
        ("user_session_stats", user_stats),
        ("user_segments", segments),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The views are defined and documented in one order, each under one name.
    #[test]
    fn every_view_is_documented_in_order() {
        let schema = crate::events::events_schema(&arrow::datatypes::DataType::Utf8);
        let defined: Vec<&str> = view_queries(&Settings::default(), &schema, false)
            .iter()
            .map(|(name, _)| *name)
            .collect();
        let documented: Vec<&str> = VIEWS.iter().map(|doc| doc.name).collect();
        assert_eq!(defined, documented);
    }
}
