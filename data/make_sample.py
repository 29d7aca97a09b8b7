"""Writes data/events/sample.parquet: a small, hand-made day of events (see README).

Run from the repository root: python3 data/make_sample.py (needs pyarrow).
"""
import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq

DAY = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)

# account, user, time (HH:MM:SS), app, tab, event_type, event_id, page_url
ROWS = [
    ("acme", "alice", "09:00:00", "crm", "t1", "tab_open", "a1", "/crm/home"),
    ("acme", "alice", "09:01:10", "crm", "t1", "page_view", "a2", "/crm/leads"),
    ("acme", "alice", "09:03:00", "crm", "t1", "user_action", "a3", "/crm/leads"),
    ("acme", "alice", "09:03:00", "crm", "t1", "user_action", "a3", "/crm/leads"),  # delivered twice
    ("acme", "alice", "09:12:00", "crm", "t1", "page_view", "a4", "/crm/leads/7"),  # > crm's 5 min
    ("acme", "alice", "09:13:30", "crm", "t1", "content_engagement", "a5", "/crm/leads/7"),
    ("acme", "alice", "09:14:00", "wiki", "t2", "tab_open", "a6", "/wiki"),
    ("acme", "alice", "09:20:00", "wiki", "t2", "page_view", "a7", "/wiki/howto"),
    ("acme", "alice", "09:21:00", "wiki", "t2", "tab_hidden", "a8", "/wiki/howto"),
    ("acme", "alice", "09:40:00", "wiki", "t2", "tab_visible", "a9", "/wiki/howto"),
    ("acme", "alice", "09:45:00", "wiki", "t2", "user_action", "a10", "/wiki/howto"),
    ("acme", "alice", "09:46:00", "wiki", "t2", "tab_close", "a11", "/wiki/howto"),
    ("acme", "bob", "10:00:00", "wiki", "t1", "page_view", "b1", "/wiki"),
    ("acme", "bob", "10:20:00", "wiki", "t1", "page_view", "b2", "/wiki/a"),
    ("acme", "bob", "10:50:00", "wiki", "t1", "page_view", "b3", "/wiki/b"),  # exactly 30 min
    ("acme", "bob", "11:30:00", "wiki", "t1", "page_view", "b4", "/wiki/c"),  # 40 min: timeout
    ("acme", "bob", "11:31:00", "wiki", None, "page_view", "b5", "/wiki/c"),  # no tab id
    ("globex", "carol", "14:00:00", "crm", "t1", "page_view", "c1", "/crm"),
    ("globex", "carol", "14:01:00", "crm", "t1", "tab_close", "c2", "/crm"),
    ("globex", "carol", "14:05:00", "crm", "t2", "page_view", "c3", "/crm"),
    ("globex", "carol", "14:06:00", "crm", "t2", "tab_close", "c4", "/crm"),
    ("globex", "carol", "14:10:00", "crm", "t3", "page_view", "c5", "/crm"),
    ("globex", "carol", "14:11:00", "crm", "t3", "tab_close", "c6", "/crm"),
    ("globex", "carol", "15:00:00", "crm", "t1", "page_view", "c7", "/crm"),
    ("globex", "dave", "08:00:00", "wiki", "t9", "page_view", "d1", "/wiki"),
]


def at(hms: str) -> dt.datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return DAY + dt.timedelta(hours=h, minutes=m, seconds=s)


table = pa.table(
    {
        "event_time": pa.array([at(r[2]) for r in ROWS], pa.timestamp("us", tz="UTC")),
        "account_id": [r[0] for r in ROWS],
        "user_id": [r[1] for r in ROWS],
        "app_id": [r[3] for r in ROWS],
        "tab_id": [r[4] for r in ROWS],
        "event_type": [r[5] for r in ROWS],
        "event_id": [r[6] for r in ROWS],
        "page_url": [r[7] for r in ROWS],
    }
)
pq.write_table(table, "data/events/sample.parquet", compression="zstd")
