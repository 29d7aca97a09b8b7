-- Headline metrics: how many sessions, and the average and total session time.
SELECT count(*) AS sessions,
       round(avg(duration_seconds), 1) AS avg_session_seconds,
       round(sum(duration_seconds) / 3600, 1) AS total_session_hours
FROM sessions;
