-- Usage by role (from the users table): users, sessions, session time, and the share of
-- struggling users.
SELECT u.role,
       count(*) AS users,
       sum(g.sessions) AS sessions,
       sum(g.total_session_seconds) AS total_session_seconds,
       avg(CASE WHEN g.segment = 'struggling' THEN 1.0 ELSE 0.0 END) AS struggling_share
FROM user_segments g
JOIN users u ON g.account_id = u.account_id AND g.user_id = u.user_id
GROUP BY u.role
ORDER BY u.role;
