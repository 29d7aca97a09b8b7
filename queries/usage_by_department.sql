-- Usage by department (from the users table): users, sessions, and session time.
SELECT u.department,
       count(DISTINCT (s.account_id, s.user_id)) AS users,
       count(*) AS sessions,
       avg(s.duration_seconds) AS avg_session_seconds,
       sum(s.duration_seconds) AS total_session_seconds
FROM sessions s
JOIN users u ON s.account_id = u.account_id AND s.user_id = u.user_id
GROUP BY u.department
ORDER BY u.department;
