-- Users with minimal activity (thresholds in dwell.toml [segments]).
SELECT account_id, user_id, sessions, active_days, total_session_seconds
FROM user_segments
WHERE segment = 'disengaged'
ORDER BY total_session_seconds, account_id, user_id;
