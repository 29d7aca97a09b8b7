-- Sessions, users, average and total session time per day (all applications and accounts).
SELECT day,
       count(*) AS sessions,
       count(DISTINCT (account_id, user_id)) AS users,
       avg(duration_seconds) AS avg_session_seconds,
       sum(duration_seconds) AS total_session_seconds
FROM sessions
GROUP BY day
ORDER BY day;
