-- Users with frequent, short sessions across applications (thresholds in dwell.toml [segments]).
SELECT account_id, user_id, sessions, active_days, sessions_per_active_day,
       median_session_seconds, apps_used
FROM user_segments
WHERE segment = 'struggling'
ORDER BY sessions_per_active_day DESC, account_id, user_id;
