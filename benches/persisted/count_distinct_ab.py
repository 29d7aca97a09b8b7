#!/usr/bin/env python3
"""A/B in one binary: dwell's grouped count(DISTINCT) against DataFusion's per-group path.

The segments and daily-metrics queries of bench.py over persisted `sessions`, as written and
with each count(DISTINCT) argument dictionary-encoded, which dwell's `count` leaves to
DataFusion's own per-group accumulator (so that side also pays the cast). Whole processes,
interleaved; the answers must be equal.

    python benches/persisted/count_distinct_ab.py target/release/dwell LOCATION RUNS
"""
import statistics, subprocess, sys, time
dwell, data, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def seg(day, app):
    return ("WITH u AS (SELECT account_id, user_id, count(*) AS sessions, count(DISTINCT " + day + ") AS days, "
            "sum(duration_seconds) AS total, median(duration_seconds) AS median, count(DISTINCT " + app + ") AS apps "
            "FROM sessions GROUP BY account_id, user_id) "
            "SELECT CASE WHEN sessions <= 1 OR total <= 60 THEN 'disengaged' "
            "WHEN CAST(sessions AS DOUBLE) / days >= 4 AND median <= 120 AND apps >= 2 THEN 'struggling' "
            "ELSE 'engaged' END AS segment, count(*) AS users FROM u GROUP BY 1 ORDER BY 1")
def daily(user):
    return ("SELECT day, account_id, app_id, count(*) AS sessions, count(DISTINCT " + user + ") AS users, "
            "sum(duration_seconds) AS total, avg(duration_seconds) AS mean, median(duration_seconds) AS median "
            "FROM sessions GROUP BY day, account_id, app_id ORDER BY day, account_id, app_id")
dict_ = lambda c, t: f"arrow_cast({c}, 'Dictionary(Int32, {t})')"
cases = {
    "segments, dwell's grouped count(DISTINCT)": seg("day", "app_id"),
    "segments, DataFusion's per-group count(DISTINCT)": seg(dict_("day", "Date32"), dict_("app_id", "Utf8")),
    "daily, dwell's grouped count(DISTINCT)": daily("user_id"),
    "daily, DataFusion's per-group count(DISTINCT)": daily(dict_("user_id", "Utf8")),
}
times = {k: [] for k in cases}
outs = {}
for _ in range(runs):
    for name, q in cases.items():
        t = time.perf_counter()
        out = subprocess.run([dwell, "sql", "--data", data, "--format", "csv", "-c", q], check=True, capture_output=True, text=True).stdout
        times[name].append(time.perf_counter() - t)
        outs[name] = out
for a, b in (("segments, dwell's grouped count(DISTINCT)", "segments, DataFusion's per-group count(DISTINCT)"),
             ("daily, dwell's grouped count(DISTINCT)", "daily, DataFusion's per-group count(DISTINCT)")):
    assert outs[a] == outs[b], (a, outs[a][:300], outs[b][:300])
for name, ts in times.items():
    print(f"| {name} | {statistics.median(ts):.3f} | {' '.join(f'{t:.2f}' for t in ts)} |")
