#!/usr/bin/env python3
"""Persisted sessions benchmark (issue 17): whole `dwell` processes, side by side in one run.

Given a data location made by `dwell generate` (say 10M events), it copies it, then measures:

- `dwell rebuild` (every session recomputed from the events and committed);
- the headline, daily metrics and segments queries over the persisted `sessions` and the same
  queries over `sessions_with()` (recomputed at query time), interleaved run by run;
- the views `daily_session_metrics` and `user_segments` over the persisted sessions;
- one user's drill-down (`sessionized_events` and `sessions` for that user);
- upkeep: ingesting the next hour of events (the busiest hour of the last week replayed on a
  later day, about 1% of the set) and, separately, 10,000 late
  events spread over the last week, each into a fresh copy of the location, with the sessions'
  upkeep and with `--no-session-upkeep`.

After an ingest with upkeep it checks that the persisted sessions equal `sessions_with()`
(count, events, total duration), and fails otherwise. Prints medians and ratios, and writes
`results.json` and `results.md` to --out.

    python benches/persisted/bench.py --dwell target/release/dwell --data /tmp/dwell-bench/10M/layout

Python packages: pyarrow, numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUERIES = {
    "headline": "SELECT count(*) AS sessions, avg(duration_seconds) AS avg_s, "
    "sum(duration_seconds) AS total_s, count(DISTINCT user_id) AS users FROM {src}",
    "daily metrics": "SELECT day, account_id, app_id, count(*) AS sessions, count(DISTINCT user_id) AS users, "
    "sum(duration_seconds) AS total, avg(duration_seconds) AS mean, median(duration_seconds) AS median "
    "FROM {src} GROUP BY day, account_id, app_id ORDER BY day, account_id, app_id",
    "segments": "WITH u AS (SELECT account_id, user_id, count(*) AS sessions, count(DISTINCT day) AS days, "
    "sum(duration_seconds) AS total, median(duration_seconds) AS median, count(DISTINCT app_id) AS apps "
    "FROM {src} GROUP BY account_id, user_id) "
    "SELECT CASE WHEN sessions <= 1 OR total <= 60 THEN 'disengaged' "
    "WHEN CAST(sessions AS DOUBLE) / days >= 4 AND median <= 120 AND apps >= 2 THEN 'struggling' "
    "ELSE 'engaged' END AS segment, count(*) AS users FROM u GROUP BY 1 ORDER BY 1",
}
# The views over the persisted sessions, aggregated so the output stays small.
VIEW_QUERIES = {
    "daily_session_metrics view": "SELECT count(*) AS rows, sum(sessions) AS sessions, sum(users) AS users, "
    "round(sum(median_session_seconds), 3) AS medians FROM daily_session_metrics",
    "user_segments view": "SELECT segment, count(*) AS users, sum(active_days) AS days, sum(apps_used) AS apps "
    "FROM user_segments GROUP BY 1 ORDER BY 1",
}
CHECK = "SELECT count(*) AS n, sum(event_count) AS events, round(sum(duration_seconds), 3) AS s FROM {src}"


def measured(command: list[str], timeout: float = 1800) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) and stdout of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=timeout)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err}")
    # RUSAGE_CHILDREN after each wait is the largest child so far; measure via /proc-free wait4.
    return wall, 0, out


def measured_rss(command: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = process.stdout.read().decode()
    err = process.stderr.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err}")
    return wall, usage.ru_maxrss * 1024, out


def sql(dwell: str, data: Path, text: str) -> list[str]:
    return [dwell, "sql", "--data", str(data), "--format", "csv", "-c", text]


def make_inputs(data: Path, out: Path) -> tuple[Path, Path, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted((data / "events").rglob("*.parquet"))
    table = pa.concat_tables(
        [pq.read_table(f, columns=["event_time", "account_id", "user_id", "app_id", "tab_id",
                                   "event_type", "event_id"]) for f in files]
    )
    times = table["event_time"]
    newest = pc.max(times).as_py()
    # The next hour: the busiest hour (UTC) of the last week, replayed as many whole days later
    # as puts it after the newest event. The set's own last hour can be nearly empty (night,
    # or the generator's tail: 27 of 10M events once), which would measure only fixed costs.
    import numpy as np
    nanos = times.cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy()
    hour_ns, day_ns = 3600 * 10**9, 24 * 3600 * 10**9
    newest_ns = int(nanos.max())
    recent = nanos[nanos > newest_ns - 7 * day_ns] // hour_ns
    hours, counts = np.unique(recent, return_counts=True)
    busiest = int(hours[counts.argmax()])
    in_hour = (nanos // hour_ns) == busiest
    picked = table.filter(pa.array(in_hour))
    days = (newest_ns - busiest * hour_ns) // day_ns + 1
    shifted = picked.set_column(0, "event_time", pc.add(
        picked["event_time"], pa.scalar(days * day_ns, pa.duration("ns"))))
    shifted = shifted.set_column(6, "event_id", pc.binary_join_element_wise(
        shifted["event_id"], pa.scalar("-next"), ""))
    next_hour = out / "next_hour.parquet"
    pq.write_table(shifted, next_hour)

    week = pa.scalar(7 * 24 * 3600 * 10**9, pa.duration("ns"))
    recent = table.filter(pc.greater(times, pc.subtract(pa.scalar(newest), week)))
    rng = random.Random(17)
    picked = recent.take(pa.array(rng.sample(range(recent.num_rows), 10_000)))
    jitter = pa.array([rng.randrange(1, 60) * 10**9 for _ in range(10_000)], pa.duration("ns"))
    late = picked.set_column(0, "event_time", pc.add(picked["event_time"], jitter))
    late = late.set_column(6, "event_id", pc.binary_join_element_wise(
        late["event_id"], pa.scalar("-late"), ""))
    late_file = out / "late_10k.parquet"
    pq.write_table(late, late_file)
    return next_hour, late_file, table.num_rows


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq
    return pq.read_metadata(path).num_rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dwell", required=True)
    parser.add_argument("--data", required=True, type=Path, help="a location made by dwell generate")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benches/persisted/results"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/dwell-persisted-bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    base = args.work / "base"
    shutil.copytree(args.data, base)
    # The copy keeps its commit log: it names the events (`dwell generate` commits them), and
    # `dwell rebuild` below recomputes every session whatever is persisted.
    results: dict[str, list[float]] = {}
    rss: dict[str, int] = {}

    def record(name: str, wall: float, peak: int) -> None:
        results.setdefault(name, []).append(wall)
        rss[name] = max(rss.get(name, 0), peak)
        print(f"{name}: {wall:.3f} s, {peak / 2**30:.2f} GiB", flush=True)

    for _ in range(3):
        wall, peak, _ = measured_rss([args.dwell, "rebuild", "--data", str(base)])
        record("dwell rebuild", wall, peak)

    user = measured(sql(args.dwell, base, "SELECT user_id FROM sessions ORDER BY user_id LIMIT 1"))[2] \
        .splitlines()[1].strip()
    for _ in range(args.runs):
        for name, text in QUERIES.items():
            for src in ("sessions", "sessions_with()"):
                wall, peak, _ = measured_rss(sql(args.dwell, base, text.format(src=src)))
                record(f"{name} over {src}", wall, peak)
        for name, text in VIEW_QUERIES.items():
            wall, peak, _ = measured_rss(sql(args.dwell, base, text))
            record(name, wall, peak)
        for table in ("sessions", "sessionized_events"):
            wall, peak, _ = measured_rss(sql(
                args.dwell, base, f"SELECT * FROM {table} WHERE user_id = '{user}' ORDER BY 1"))
            record(f"drill-down: {table} of one user", wall, peak)
        wall, peak, _ = measured_rss(sql(args.dwell, base, "SELECT 1"))
        record("process start (SELECT 1)", wall, peak)

    next_hour, late, total = make_inputs(base, args.work)
    print(f"next hour: {pq_rows(next_hour):,} events; late: {pq_rows(late):,} events", flush=True)
    for _ in range(args.runs):
        for label, source in (("next hour", next_hour), ("10,000 late events", late)):
            for upkeep in (True, False):
                copy = args.work / "run"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(base, copy)
                command = [args.dwell, "ingest", "--data", str(copy), str(source)]
                if not upkeep:
                    command.append("--no-session-upkeep")
                wall, peak, _ = measured_rss(command)
                record(f"ingest {label} ({'with' if upkeep else 'without'} upkeep)", wall, peak)
                if upkeep:
                    persisted = measured(sql(args.dwell, copy, CHECK.format(src="sessions")))[2]
                    recomputed = measured(sql(args.dwell, copy, CHECK.format(src="sessions_with()")))[2]
                    if persisted != recomputed:
                        raise SystemExit(f"after {label}: persisted {persisted!r} != recomputed {recomputed!r}")

    # The state an ingest leaves (its delta's retractions held until a compaction): the same
    # queries over `sessions` in the copy the last "next hour" ingest with upkeep made.
    after = args.work / "after-ingest"
    shutil.rmtree(after, ignore_errors=True)
    shutil.copytree(base, after)
    measured_rss([args.dwell, "ingest", "--data", str(after), str(next_hour)])
    for _ in range(args.runs):
        for name, text in QUERIES.items():
            wall, peak, _ = measured_rss(sql(args.dwell, after, text.format(src="sessions")))
            record(f"{name} over sessions, after an ingest", wall, peak)

    medians = {name: statistics.median(walls) for name, walls in results.items()}
    lines = [f"Events: {total:,}; {args.runs} runs (rebuild: 3); medians of whole processes.", "",
             "| case | median s | runs | peak RSS GiB |", "|---|---:|---:|---:|"]
    for name, value in medians.items():
        lines.append(f"| {name} | {value:.3f} | {len(results[name])} | {rss[name] / 2**30:.2f} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    for name in QUERIES:
        lines.append(f"| {name}: persisted / sessions_with() | "
                     f"{medians[f'{name} over sessions'] / medians[f'{name} over sessions_with()']:.4f} |")
    rebuild = medians["dwell rebuild"]
    for label in ("next hour", "10,000 late events"):
        with_upkeep = medians[f"ingest {label} (with upkeep)"]
        without = medians[f"ingest {label} (without upkeep)"]
        lines.append(f"| ingest {label}: with upkeep / rebuild | {with_upkeep / rebuild:.3f} |")
        lines.append(f"| ingest {label}: with / without upkeep | {with_upkeep / without:.2f} |")
    lines.append(f"| rebuild / headline over sessions_with() | "
                 f"{rebuild / medians['headline over sessions_with()']:.2f} |")
    text = "\n".join(lines)
    print(text)
    (args.out / "results.md").write_text(text + "\n")
    (args.out / "results.json").write_text(json.dumps({"runs": results, "rss": rss, "events": total}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
