-- One user's sessions, newest first. Change the user (and account) to drill into another.
SELECT session_seq, app_id, tab_id, start_time, end_time, duration_seconds, event_count,
       page_views, user_actions, content_engagements, end_reason
FROM sessions
WHERE account_id = 'acme' AND user_id = 'acme-u000000'
ORDER BY session_seq DESC;
