-- Every session of every user (SESSIONS.md §4), in order.
SELECT *
FROM sessions
ORDER BY account_id, user_id, session_seq;
