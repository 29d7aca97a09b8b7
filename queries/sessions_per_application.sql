-- Sessions, average and total session time per application.
SELECT app_id,
       count(*) AS sessions,
       avg(duration_seconds) AS avg_session_seconds,
       sum(duration_seconds) AS total_session_seconds
FROM sessions
GROUP BY app_id
ORDER BY app_id;
