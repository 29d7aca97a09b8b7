-- Every session of every user (SESSIONS.md §4), from the raw `events` table.
--
-- The application timeouts are inline here (crm: 5 minutes; everything else the default 30);
-- the engine's `sessions` view will take them from dwell.toml.
WITH app_settings(app_id, timeout) AS (
  VALUES ('crm', INTERVAL '5 minutes')
),
sessionized AS (
  SELECT e.account_id, e.user_id, e.app_id, e.tab_id, e.event_time, e.event_type, e.event_id,
         COALESCE(a.timeout, INTERVAL '30 minutes') AS timeout,
         sessionize(e.event_time, e.user_id, e.app_id, e.tab_id, e.event_type,
                    timeout => a.timeout, event_id => e.event_id, account_id => e.account_id)
           OVER (PARTITION BY e.account_id, e.user_id
                 ORDER BY e.event_time, e.event_id NULLS FIRST, e.tab_id NULLS FIRST,
                          e.app_id NULLS FIRST, e.event_type NULLS FIRST) AS s
  FROM events e LEFT JOIN app_settings a ON e.app_id = a.app_id
),
placed AS (
  SELECT account_id, user_id, app_id, tab_id, event_time, event_type, event_id, timeout,
         s['session_id'] AS session_id, s['session_seq'] AS session_seq,
         CASE WHEN s['starts_session'] THEN s['previous_end_reason'] END AS previous_end_reason
  FROM sessionized
  WHERE s IS NOT NULL AND NOT s['is_duplicate']
),
newest AS (
  SELECT account_id, max(event_time) AS newest_time FROM placed GROUP BY account_id
),
grouped AS (
  SELECT account_id, user_id, session_id, session_seq,
         first_value(app_id) AS app_id, first_value(tab_id) AS tab_id,
         min(event_time) AS start_time, max(event_time) AS end_time,
         count(*) AS event_count,
         count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
         count(*) FILTER (WHERE event_type = 'user_action') AS user_actions,
         count(*) FILTER (WHERE event_type = 'content_engagement') AS content_engagements,
         max(timeout) AS timeout,
         max(previous_end_reason) AS previous_end_reason,
         last_value(event_type ORDER BY event_time, event_id NULLS FIRST, tab_id NULLS FIRST,
                    app_id NULLS FIRST, event_type NULLS FIRST) AS last_event_type
  FROM placed
  GROUP BY account_id, user_id, session_id, session_seq
)
SELECT g.session_id, g.account_id, g.user_id, g.app_id, g.tab_id, g.session_seq,
       g.start_time, g.end_time,
       CAST(CAST(arrow_cast(g.end_time, 'Timestamp(Microsecond, None)') AS BIGINT)
            - CAST(arrow_cast(g.start_time, 'Timestamp(Microsecond, None)') AS BIGINT)
            AS DOUBLE) / 1e6 AS duration_seconds,
       g.event_count, g.page_views, g.user_actions, g.content_engagements,
       COALESCE(
         lead(g.previous_end_reason)
           OVER (PARTITION BY g.account_id, g.user_id ORDER BY g.session_seq),
         CASE
           WHEN g.last_event_type IN ('tab_close', 'tab_hidden') THEN g.last_event_type
           WHEN n.newest_time - g.end_time > g.timeout THEN 'timeout'
           ELSE 'open'
         END) AS end_reason,
       date_part('epoch', g.timeout) AS timeout_seconds,
       CAST(g.start_time AS DATE) AS day
FROM grouped g JOIN newest n ON g.account_id IS NOT DISTINCT FROM n.account_id
ORDER BY g.account_id, g.user_id, g.session_seq;
