-- Sessions, users, average and total session time per account (customer).
SELECT account_id,
       count(*) AS sessions,
       count(DISTINCT user_id) AS users,
       avg(duration_seconds) AS avg_session_seconds,
       sum(duration_seconds) AS total_session_seconds
FROM sessions
GROUP BY account_id
ORDER BY account_id;
