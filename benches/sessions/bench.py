#!/usr/bin/env python3
"""Sessionization benchmark: dwell against DuckDB, chDB and Polars on the same Parquet files.

For each size (1M, 10M, 100M events, or any list) it generates events with `dwell generate`
(or reuses them), writes an unsorted copy (rows shuffled across a few Parquet files), and runs,
each in its own process so that wall time and peak memory are the whole engine's:

- dwell's `sessions` view over the unsorted files (goal 1) and over dwell's own ingest layout
  (goal 2), and a bare scan of the columns sessions need (goal 2's baseline);
- the same with one constant timeout instead of the per-application ones (goal 4);
- DuckDB, chDB and Polars running SESSIONS.md section 3 rules 1-6 (with section 2's
  duplicates and tie-breaks and the per-application timeouts) over the unsorted files;
- dwell and the peers again over the unsorted files without `account_id` and `event_id` (both
  optional in SESSIONS.md section 1; every event its own, users by `user_id` alone), the shape
  of events many writers send (issue 15);
- dwell and the peers over events this program generates itself, shaped unlike `dwell
  generate`'s (`other_shape`): heavy-tailed users, 20 applications with their own timeouts, no
  `account_id`/`event_id`, millisecond times in a non-UTC zone, an extra column, a few NULL
  tabs, files in arrival order (not by user or day) with small row groups;
- with --cluster, dwell on its layout again through a Ballista scheduler with two one-slot
  executors (`benches/cluster/bench.py`'s cluster), against the same query in one process.

Every engine returns the number of sessions and of events in them; the program fails when they
disagree. Every case sessionizes at query time (`sessions_with()`; `sessions` reads the
persisted sessions). It prints a table of medians, peak memory and ratios, and writes `results.json`,
`results.md` and a chart (`sessions.svg`, time against size per engine) to --out.

    python benches/sessions/bench.py --dwell target/release/dwell --sizes 1M,10M --runs 3

Python packages: duckdb chdb polars pyarrow numpy matplotlib.
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

EVENT_COLUMNS = ["event_time", "account_id", "user_id", "app_id", "tab_id", "event_type", "event_id"]
OPTIONAL_COLUMNS = ("account_id", "event_id")
NO_OPTIONAL = "no account_id/event_id"
OTHER_SHAPE = "other shape"
ORDER = ["event_time", "event_id", "tab_id", "app_id", "event_type"]


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}
    if text[-1] in scale:
        return int(float(text[:-1]) * scale[text[-1]])
    return int(text)


def show_size(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}K"
    return str(n)


def read_timeouts(settings: Path) -> tuple[float, dict[str, float]]:
    """The default and per-application timeouts (seconds) of a dwell.toml."""
    import tomllib

    def seconds(text: str) -> float:
        units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
        for unit in sorted(units, key=len, reverse=True):
            if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
                return float(text[: -len(unit)]) * units[unit]
        raise SystemExit(f"{settings}: cannot read the duration {text!r}")

    toml = tomllib.loads(settings.read_text()) if settings.exists() else {}
    default = seconds(toml.get("default_timeout", "30m"))
    apps = {app: seconds(t) for app, t in toml.get("app_timeouts", {}).items()}
    return default, apps


# ---------------------------------------------------------------------------------------------
# Data


def prepare(dwell: str, work: Path, events: int, unsorted_copy: bool,
            replicate_from: int | None) -> dict[str, Path]:
    """Generated data (dwell's layout), an unsorted copy, and a constant-timeout view of each."""
    base = work / show_size(events)
    layout = base / "layout"
    if not (layout / ".complete").exists():
        shutil.rmtree(layout, ignore_errors=True)
        if replicate_from and events > replicate_from and events % replicate_from == 0:
            source = prepare(dwell, work, replicate_from, False, None)["layout"]
            replicate(source, layout, events // replicate_from)
        else:
            run_checked([dwell, "generate", "--data", str(layout), "--events", str(events)])
        (layout / ".complete").write_text("")
    paths = {"layout": layout}
    if unsorted_copy:
        def made(name: str, make) -> Path:
            """`base / name`, made by `make(target)` unless a complete one is there."""
            target = base / name
            if not (target / ".complete").exists():
                shutil.rmtree(target, ignore_errors=True)
                make(target)
                (target / ".complete").write_text("")
            paths[name] = target
            return target

        unsorted = made("unsorted", lambda target: shuffle_copy(layout, target))
        made("unsorted-no-optional", lambda target: without_optional_columns(unsorted, target))
        made("other-shape", lambda target: other_shape(target, events))
    for name in [n for n in paths if n in ("layout", "unsorted")]:
        constant = base / f"{name}-constant-timeout"
        if not constant.exists():
            constant.mkdir(parents=True)
            for entry in ["events", "users", "_dwell"]:
                if (paths[name] / entry).exists():
                    os.symlink((paths[name] / entry).resolve(), constant / entry)
            default, _ = read_timeouts(paths[name] / "dwell.toml")
            (constant / "dwell.toml").write_text(f'default_timeout = "{int(default)}s"\n')
        paths[f"{name}-constant-timeout"] = constant
    return paths


def replicate(source: Path, target: Path, copies: int) -> None:
    """`copies` copies of a generated data set, each with its own users (`user_id` and
    `event_id` suffixed with the copy number), in the same layout: as many sessions per copy,
    in a fraction of the time `dwell generate` takes (about 10M events per 6 minutes here)."""
    from concurrent.futures import ProcessPoolExecutor

    files = sorted((source / "events").rglob("*.parquet"))
    jobs = [(f, target / "events" / f.parent.name / f"copy{k:03}-{f.name}", k)
            for k in range(copies) for f in files]
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(replicate_file, jobs, chunksize=8))
    shutil.copy(source / "dwell.toml", target / "dwell.toml")
    if (source / "users").exists():
        shutil.copytree(source / "users", target / "users")


def replicate_file(job: tuple[Path, Path, int]) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source, target, copy = job
    table = pq.read_table(source)
    for column in ["user_id", "event_id"]:
        i = table.schema.get_field_index(column)
        table = table.set_column(i, column, pc.binary_join_element_wise(
            table.column(column), f"c{copy}", "-"))
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target, compression="zstd")


def shuffle_copy(source: Path, target: Path, files: int = 8) -> None:
    """The events of `source` in random order, in `files` Parquet files (zstd, as dwell writes)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    table = ds.dataset(source / "events", format="parquet", partitioning=None).to_table()
    rng = np.random.default_rng(7)
    order = rng.permutation(table.num_rows)
    (target / "events").mkdir(parents=True)
    per_file = -(-table.num_rows // files)
    for i in range(files):
        part = table.take(pa.array(order[i * per_file : (i + 1) * per_file]))
        pq.write_table(part, target / "events" / f"shuffled-{i:03}.parquet", compression="zstd",
                       row_group_size=1_000_000)
        del part
    shutil.copy(source / "dwell.toml", target / "dwell.toml")
    if (source / "users").exists():
        shutil.copytree(source / "users", target / "users")


def without_optional_columns(source: Path, target: Path) -> None:
    """The files of `source` without `account_id` and `event_id`, file by file."""
    import pyarrow.parquet as pq

    (target / "events").mkdir(parents=True)
    for file in sorted((source / "events").glob("*.parquet")):
        table = pq.read_table(file).drop_columns(list(OPTIONAL_COLUMNS))
        pq.write_table(table, target / "events" / file.name, compression="zstd",
                       row_group_size=1_000_000)
        del table
    shutil.copy(source / "dwell.toml", target / "dwell.toml")


def other_shape(target: Path, events: int, files: int = 8, seed: int = 18) -> None:
    """`events` events shaped unlike `dwell generate`'s, as another writer would send them.

    - Users are heavy-tailed: bursts of activity go to users by Pareto weights, so a few users
      have tens of thousands of events and most have a handful.
    - 20 applications with popularity falling off (Zipf-like), each with its own timeout from
      2 minutes to 2 hours (`dwell.toml`'s `[app_timeouts]`).
    - A burst (one app, one tab) has a geometric number of events, gaps mostly of seconds
      and sometimes of tens of minutes (so timeouts split bursts, per application); it may open
      with `tab_open` and end with `tab_close`, and hides and shows its tab now and then. A
      user's tabs repeat across bursts, and 0.5% of events have no tab.
    - No `account_id`, no `event_id`; `event_time` in milliseconds, zone Europe/Berlin; an extra
      `page_url` column; columns in another order.
    - Files in arrival order (time plus a small delivery delay, so slightly out of time order),
      not grouped by user or day, with 64k-row row groups.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    apps = np.array([f"app-{i:02}" for i in range(20)], dtype=object)
    app_weights = 1.0 / np.arange(1, 21) ** 0.8
    app_weights /= app_weights.sum()
    timeouts = rng.choice([120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200], 20)

    users = max(50, events // 60)
    user_weights = rng.pareto(1.1, users) + 1.0
    user_weights /= user_weights.sum()
    lengths = rng.geometric(1 / 7, int(events / 7 * 1.2) + 100)
    ends = np.cumsum(lengths)
    bursts = int(np.searchsorted(ends, events)) + 1
    lengths = lengths[:bursts]
    lengths[-1] -= int(ends[bursts - 1] - events)
    burst_user = rng.choice(users, bursts, p=user_weights)
    burst_app = rng.choice(20, bursts, p=app_weights)
    burst_tab = rng.integers(0, 6, bursts)
    day_ms = 86_400_000
    start = 1_790_000_000_000  # 2026-09-21
    burst_start = start + rng.integers(0, 30 * day_ms, bursts)

    burst_of = np.repeat(np.arange(bursts), lengths)
    first = np.r_[0, np.cumsum(lengths)[:-1]]
    position = np.arange(events) - np.repeat(first, lengths)
    gaps = rng.exponential(25_000, events)
    long = rng.random(events) < 0.04
    gaps[long] = rng.exponential(40 * 60_000, int(long.sum()))
    gaps[first] = 0
    # Cumulative gaps within each burst: a running sum minus the sum before the burst.
    running = np.cumsum(gaps)
    times = burst_start[burst_of] + (running - np.repeat(running[first], lengths)).astype(np.int64)

    kinds = np.array(["page_view", "click", "tab_hidden", "tab_visible", "tab_open",
                      "tab_close"], dtype=object)
    kind = rng.choice(4, events, p=[0.6, 0.35, 0.02, 0.03])
    opens = first[rng.random(bursts) < 0.3]
    kind[opens] = 4
    last = first + lengths - 1
    closes = last[(rng.random(bursts) < 0.2) & (lengths > 1)]
    kind[closes] = 5

    user_ids = pc.binary_join_element_wise(
        "user-", pc.cast(pa.array(burst_user[burst_of] * 7919 % 1_000_003), pa.string()), "")
    tab_ids = pc.binary_join_element_wise(
        user_ids, pc.cast(pa.array(burst_tab[burst_of]), pa.string()), "/tab-")
    no_tab = pa.array(rng.random(events) < 0.005)
    tab_ids = pc.if_else(no_tab, pa.scalar(None, pa.string()), tab_ids)
    page = pc.binary_join_element_wise(
        "/page/", pc.cast(pa.array(rng.integers(0, 500, events)), pa.string()), "")
    table = pa.table({
        "user_id": user_ids,
        "event_type": pa.array(kinds[kind], pa.string()),
        "page_url": page,
        "app_id": pa.array(apps[burst_app[burst_of]], pa.string()),
        "event_time": pa.array(times, pa.timestamp("ms")).cast(pa.timestamp("ms", tz="Europe/Berlin")),
        "tab_id": tab_ids,
    })
    arrival = times + rng.exponential(2_000, events).astype(np.int64)
    table = table.take(pa.array(np.argsort(arrival, kind="stable")))
    (target / "events").mkdir(parents=True)
    per_file = -(-events // files)
    for i in range(files):
        pq.write_table(table.slice(i * per_file, per_file),
                       target / "events" / f"arrived-{i:03}.parquet", compression="snappy",
                       row_group_size=65_536)
    app_lines = "\n".join(f'"{a}" = "{int(t)}s"' for a, t in zip(apps, timeouts))
    (target / "dwell.toml").write_text(f'default_timeout = "30m"\n\n[app_timeouts]\n{app_lines}\n')


# ---------------------------------------------------------------------------------------------
# Engines: each returns (sessions, events in sessions). `absent` names the optional columns the
# files lack; each engine reads them as NULL, as dwell does.


def timeout_case(default: float, apps: dict[str, float], quote: str = "'") -> str:
    """Microseconds of the timeout of `app_id`, as an SQL CASE."""
    if not apps:
        return str(int(default * 1_000_000))
    whens = " ".join(f"WHEN {quote}{a}{quote} THEN {int(t * 1_000_000)}" for a, t in apps.items())
    return f"CASE app_id {whens} ELSE {int(default * 1_000_000)} END"


def deduplicated_events(source: str, order: str, absent: list[str], null: str) -> str:
    """The CTEs `placed` (events with a time and a user) and `deduplicated` (SESSIONS.md §2: the
    first of each (account, user, event_id) in timeline order), for DuckDB and ClickHouse.
    `null` is the engine's NULL string literal, read for the `absent` columns."""
    columns = ", ".join(f"{null} AS {c}" if c in absent else c for c in EVENT_COLUMNS)
    return f"""WITH placed AS (
  SELECT {columns} FROM {source}
  WHERE event_time IS NOT NULL AND user_id IS NOT NULL
),
deduplicated AS (
  SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY account_id, user_id, event_id ORDER BY {order}) AS copy
    FROM placed)
  WHERE event_id IS NULL OR copy = 1
),"""


def duckdb_sql(files: str, default: float, apps: dict[str, float], absent: list[str]) -> str:
    # `epoch_ns`: DuckDB's `epoch_us` takes no TIMESTAMPTZ_NS, the type dwell lands times as.
    order = ", ".join(f"{c} NULLS FIRST" for c in ORDER)
    return f"""
{deduplicated_events(f"read_parquet('{files}')", order, absent, "CAST(NULL AS VARCHAR)")}
flagged AS (
  SELECT *,
    CASE
      WHEN lag(event_time) OVER w IS NULL THEN 1
      WHEN lag(event_type) OVER w IN ('tab_close', 'tab_hidden') THEN 1
      WHEN lag(tab_id) OVER w IS DISTINCT FROM tab_id THEN 1
      WHEN lag(app_id) OVER w IS DISTINCT FROM app_id THEN 1
      WHEN event_type IN ('tab_open', 'tab_visible') THEN 1
      WHEN epoch_ns(event_time) - epoch_ns(lag(event_time) OVER w) > 1000 * ({timeout_case(default, apps)}) THEN 1
      ELSE 0
    END AS starts
  FROM deduplicated
  WINDOW w AS (PARTITION BY account_id, user_id ORDER BY {order})
),
numbered AS (
  SELECT *, sum(starts) OVER (PARTITION BY account_id, user_id ORDER BY {order}
                              ROWS UNBOUNDED PRECEDING) AS session_seq
  FROM flagged
),
sessions AS (
  SELECT account_id, user_id, session_seq, min(event_time) AS start_time,
         max(event_time) AS end_time, count(*) AS event_count,
         count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
         (epoch_ns(max(event_time)) - epoch_ns(min(event_time))) / 1e9 AS duration_seconds
  FROM numbered GROUP BY account_id, user_id, session_seq
)
SELECT count(*) AS sessions, sum(event_count) AS events, sum(duration_seconds) AS seconds
FROM sessions"""


def chdb_sql(files: str, default: float, apps: dict[str, float], absent: list[str]) -> str:
    order = ", ".join(f"{c} ASC NULLS FIRST" for c in ORDER)
    frame = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    # A value no id has, so that NULL tabs and apps compare as their own value.
    null = "'\\x00'"
    return f"""
{deduplicated_events(f"file('{files}', Parquet)", order, absent,
                     "CAST(NULL, 'Nullable(String)')")}
flagged AS (
  SELECT *,
    row_number() OVER w AS n,
    lagInFrame(event_type) OVER w AS prev_type,
    lagInFrame(ifNull(tab_id, {null})) OVER w AS prev_tab,
    lagInFrame(ifNull(app_id, {null})) OVER w AS prev_app,
    lagInFrame(toUnixTimestamp64Micro(event_time)) OVER w AS prev_us
  FROM deduplicated
  WINDOW w AS (PARTITION BY account_id, user_id ORDER BY {order} {frame})
),
started AS (
  SELECT *,
    if(n = 1 OR prev_type IN ('tab_close', 'tab_hidden') OR prev_tab != ifNull(tab_id, {null})
       OR prev_app != ifNull(app_id, {null}) OR event_type IN ('tab_open', 'tab_visible')
       OR toUnixTimestamp64Micro(event_time) - prev_us > {timeout_case(default, apps)}, 1, 0) AS starts
  FROM flagged
),
numbered AS (
  SELECT *, sum(starts) OVER (PARTITION BY account_id, user_id ORDER BY {order} {frame}) AS session_seq
  FROM started
),
sessions AS (
  SELECT account_id, user_id, session_seq, min(event_time) AS start_time,
         max(event_time) AS end_time, count(*) AS event_count,
         countIf(event_type = 'page_view') AS page_views,
         (toUnixTimestamp64Micro(max(event_time)) - toUnixTimestamp64Micro(min(event_time))) / 1e6
           AS duration_seconds
  FROM numbered GROUP BY account_id, user_id, session_seq
)
SELECT count() AS sessions, sum(event_count) AS events, sum(duration_seconds) AS seconds
FROM sessions
SETTINGS max_threads = {os.cpu_count()}"""


def run_duckdb(files: str, default: float, apps: dict[str, float],
               absent: list[str]) -> tuple[int, int]:
    import duckdb

    row = duckdb.connect().execute(duckdb_sql(files, default, apps, absent)).fetchone()
    return int(row[0]), int(row[1])


def run_chdb(files: str, default: float, apps: dict[str, float],
             absent: list[str]) -> tuple[int, int]:
    import chdb

    out = chdb.query(chdb_sql(files, default, apps, absent), "CSV").bytes().decode().strip()
    sessions, events, _ = out.split(",")
    return int(sessions), int(events)


def run_polars(files: str, default: float, apps: dict[str, float],
               absent: list[str]) -> tuple[int, int]:
    import polars as pl

    keys = ["account_id", "user_id"]
    timeout_us = pl.lit(int(default * 1_000_000))
    for app, seconds in apps.items():
        timeout_us = pl.when(pl.col("app_id") == app).then(int(seconds * 1_000_000)).otherwise(timeout_us)
    us = pl.col("event_time").dt.epoch("us")

    def changed(column: str) -> pl.Expr:
        # Distinct from the previous row, NULL-aware.
        col, prev = pl.col(column), pl.col(column).shift(1)
        return (col != prev).fill_null(col.is_null() != prev.is_null())

    events = (
        pl.scan_parquet(files)
        .select([pl.lit(None, dtype=pl.Utf8).alias(c) if c in absent else pl.col(c)
                 for c in EVENT_COLUMNS])
        .filter(pl.col("event_time").is_not_null() & pl.col("user_id").is_not_null())
        .sort(keys + ORDER, nulls_last=False)
        # Duplicates: the first of each (account, user, event_id) in timeline order counts.
        .filter(pl.col("event_id").is_null() | pl.struct(keys + ["event_id"]).is_first_distinct())
    )
    first = changed("account_id") | changed("user_id")
    starts = (
        first
        | pl.col("event_type").shift(1).is_in(["tab_close", "tab_hidden"]).fill_null(False)
        | changed("tab_id")
        | changed("app_id")
        | pl.col("event_type").is_in(["tab_open", "tab_visible"]).fill_null(False)
        | ((us - us.shift(1)) > timeout_us).fill_null(False)
    )
    sessions = (
        events.with_columns(session=starts.cast(pl.UInt32).cum_sum())
        .group_by("session")
        .agg(
            pl.col("event_time").min().alias("start_time"),
            pl.col("event_time").max().alias("end_time"),
            pl.len().alias("event_count"),
            (pl.col("event_type") == "page_view").sum().alias("page_views"),
        )
        .with_columns(((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1e6)
                      .alias("duration_seconds"))
        .select(pl.len().alias("sessions"), pl.col("event_count").sum().alias("events"))
        .collect()
    )
    return int(sessions["sessions"][0]), int(sessions["events"][0])


PEERS = {"duckdb": run_duckdb, "chdb": run_chdb, "polars": run_polars}


# ---------------------------------------------------------------------------------------------
# Running and measuring


def run_checked(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return done.stdout


def measured(command: list[str], timeout: float) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) and stdout of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"timed out after {timeout} s")
    wall = time.perf_counter() - start
    # The command runs under `--peak` (see `wrap`), which prints the peak RSS of its child last.
    if process.returncode != 0:
        raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else f"exit {process.returncode}")
    lines = out.strip().splitlines()
    peak = int(lines[-1].removeprefix("peak_rss_bytes="))
    return wall, peak, "\n".join(lines[:-1])


def wrap(command: list[str]) -> list[str]:
    """Runs `command` under this program's `--peak` mode, which reports its peak RSS."""
    return [sys.executable, __file__, "--peak", "--", *command]


def peak_main(command: list[str]) -> int:
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        print(f"peak_rss_bytes={usage.ru_maxrss * 1024}", flush=True)
    return code


def dwell_query(dwell: str, data: Path, sql: str, memory_limit: str | None) -> list[str]:
    command = [dwell, "sql", "--data", str(data), "--format", "csv", "-c", sql]
    if memory_limit:
        command += ["--memory-limit", memory_limit]
    return command


# `sessions_with()` sessionizes at query time; `sessions` would read the persisted sessions.
SESSIONS_SQL = ("SELECT count(*) AS sessions, sum(event_count) AS events, sum(duration_seconds) AS s, "
                "count(end_reason) AS reasons, sum(length(session_id)) AS id_chars "
                "FROM sessions_with()")
# Sums of lengths rather than min/max, which DataFusion answers from Parquet statistics without
# reading the columns.
SCAN_SQL = ("SELECT count(*), min(event_time), max(event_time), sum(length(account_id)), "
            "sum(length(user_id)), sum(length(app_id)), sum(length(tab_id)), "
            "sum(length(event_type)), sum(length(event_id)) FROM events")


def peer_command(peer: str, files: str, default: float, apps: dict[str, float],
                 absent: list[str]) -> list[str]:
    return [sys.executable, __file__, "--peer", peer, "--files", files,
            "--timeouts", json.dumps([default, apps]), "--absent", ",".join(absent)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dwell", default="target/release/dwell")
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated, e.g. 1M,10M,100M")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default="/tmp/dwell-bench", help="where data is generated")
    parser.add_argument("--out", default="benches/sessions/results")
    parser.add_argument("--engines", default="dwell,duckdb,chdb,polars")
    parser.add_argument("--memory-limit", default=None,
                        help="dwell's memory limit (e.g. 2GiB), for every dwell run")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--replicate-from", default=None,
                        help="make larger sizes from copies of this size's data (e.g. 10M) "
                             "with distinct users instead of generating them")
    parser.add_argument("--layout-only", action="store_true",
                        help="dwell on its own layout only: no unsorted copy (which needs the "
                             "whole data set in Python's memory), no peers")
    parser.add_argument("--cluster", action="store_true",
                        help="also run dwell on its layout through a scheduler with two "
                             "one-slot executors on loopback (peak RSS is the client's)")
    args = parser.parse_args()

    sizes = [parse_size(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for size in sizes:
        replicate_from = parse_size(args.replicate_from) if args.replicate_from else None
        paths = prepare(args.dwell, Path(args.work), size, not args.layout_only, replicate_from)
        default, apps = read_timeouts(paths["layout"] / "dwell.toml")
        cases: list[tuple[str, list[str]]] = []
        lim = args.memory_limit
        if "dwell" in engines and not args.layout_only:
            cases.append(("dwell", dwell_query(args.dwell, paths["unsorted"], SESSIONS_SQL, lim)))
        if "dwell" in engines:
            cases += [
                ("dwell layout", dwell_query(args.dwell, paths["layout"], SESSIONS_SQL, lim)),
                ("dwell layout scan", dwell_query(args.dwell, paths["layout"], SCAN_SQL, lim)),
            ]
        if "dwell" in engines and not args.layout_only:
            cases.append(("dwell constant timeout", dwell_query(
                args.dwell, paths["unsorted-constant-timeout"], SESSIONS_SQL, lim)))
        files = str(paths.get("unsorted", paths["layout"]) / "events" / "*.parquet")
        for peer in PEERS:
            if peer in engines and not args.layout_only:
                cases.append((peer, peer_command(peer, files, default, apps, [])))
        if not args.layout_only:
            # Both shapes lack the optional columns; the other shape has its own timeouts.
            for label, data in ((NO_OPTIONAL, paths["unsorted-no-optional"]),
                                (OTHER_SHAPE, paths["other-shape"])):
                shape_default, shape_apps = read_timeouts(data / "dwell.toml")
                if "dwell" in engines:
                    cases.append((f"dwell {label}",
                                  dwell_query(args.dwell, data, SESSIONS_SQL, lim)))
                for peer in PEERS:
                    if peer in engines:
                        cases.append((f"{peer} {label}", peer_command(
                            peer, str(data / "events" / "*.parquet"), shape_default,
                            shape_apps, list(OPTIONAL_COLUMNS))))
        cluster = None
        if args.cluster and "dwell" in engines:
            cluster = start_cluster(args.dwell, paths["layout"], Path(args.work) / "cluster-logs")
            cases.append(("dwell layout cluster", dwell_query(
                args.dwell, paths["layout"], SESSIONS_SQL, lim) + ["--cluster", cluster.url]))
        # Runs interleaved (every case, then again), so that a noisy moment of the machine does
        # not land on one engine only; in a new order each round and after a pause, because a
        # run right after a memory-hungry one pays for the kernel taking that memory back (1.4 s
        # more system time at 1M, measured after Polars).
        runs: dict[str, list[tuple[float, int, str]]] = {name: [] for name, _ in cases}
        errors: dict[str, str] = {}
        try:
            run_rounds(args, size, cases, runs, errors)
        finally:
            if cluster:
                cluster.stop()
        for name, _ in cases:
            if name in errors:
                results.append({"size": size, "engine": name, "error": errors[name]})
                continue
            walls = [w for w, _, _ in runs[name]]
            answer = runs[name][-1][2].splitlines()[-1].split(",")
            results.append({
                "size": size, "engine": name, "median_s": statistics.median(walls), "runs_s": walls,
                "peak_bytes": max(p for _, p, _ in runs[name]),
                "sessions": int(answer[0]) if "scan" not in name else None,
                "events": int(answer[1]) if "scan" not in name else int(answer[0]),
            })
        check(results, size)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    table = markdown(results) + "\n" + goals(results)
    (out / "results.md").write_text(table)
    print(table)
    chart(results, out / "sessions.svg")
    return 0


def run_rounds(args: argparse.Namespace, size: int, cases: list[tuple[str, list[str]]],
               runs: dict[str, list[tuple[float, int, str]]], errors: dict[str, str]) -> None:
    """--runs rounds of every case, in a new order each round, each after a 2 s pause."""
    for run in range(args.runs):
        order = list(cases)
        random.Random(run).shuffle(order)
        for name, command in order:
            time.sleep(2)
            if name in errors:
                continue
            try:
                wall, peak, stdout = measured(wrap(command), args.timeout)
            except RuntimeError as e:
                errors[name] = str(e)
                print(f"{show_size(size)} {name}: failed: {e}", flush=True)
                continue
            runs[name].append((wall, peak, stdout))
            print(f"{show_size(size)} run {run + 1} {name}: {wall:.2f} s, "
                  f"{peak / 2**20:.0f} MiB: {stdout.splitlines()[-1]}", flush=True)


def start_cluster(dwell: str, data: Path, logs: Path):
    """`benches/cluster/bench.py`'s cluster (a scheduler and two one-slot executors) over
    `data`, on loopback."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "cluster_bench", Path(__file__).resolve().parent.parent / "cluster" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    logs.mkdir(parents=True, exist_ok=True)
    return module.Cluster(dwell, data, logs)


def shape(engine: str) -> str:
    """Which files a case read: cases of one shape must find the same sessions."""
    for label in (NO_OPTIONAL, OTHER_SHAPE):
        if label in engine:
            return label
    return "generated"


def check(results: list[dict], size: int) -> None:
    """Every engine that finished found the same sessions and events on the same files (the
    constant-timeout run follows another rule and is left out)."""
    for label in ("generated", NO_OPTIONAL, OTHER_SHAPE):
        answers = {(r["sessions"], r["events"]) for r in results
                   if r["size"] == size and "error" not in r and r["sessions"] is not None
                   and "constant" not in r["engine"] and shape(r["engine"]) == label}
        if len(answers) <= 1:
            continue
        raise SystemExit(f"engines disagree at {show_size(size)}: " + json.dumps(
            [r for r in results if r["size"] == size], indent=2))


def markdown(results: list[dict]) -> str:
    lines = ["| events | engine | median s | peak MiB | sessions | ratio to dwell |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {show_size(r['size'])} | {r['engine']} | failed: {r['error']} | | | |")
            continue
        dwell = next((d for d in results if d["size"] == r["size"] and d["engine"] == "dwell"
                      and "error" not in d), None)
        ratio = f"{r['median_s'] / dwell['median_s']:.2f}" if dwell else ""
        sessions = f"{r['sessions']:,}" if r["sessions"] is not None else "(scan)"
        lines.append(f"| {show_size(r['size'])} | {r['engine']} | {r['median_s']:.2f} | "
                     f"{r['peak_bytes'] / 2**20:,.0f} | {sessions} | {ratio} |")
    return "\n".join(lines) + "\n"


def goals(results: list[dict]) -> str:
    """The issue's four ratios, from the medians (each pair measured in the same run)."""

    def measured_value(key: str, size: int, engine: str) -> float | None:
        found = [r[key] for r in results
                 if r["size"] == size and r["engine"] == engine and "error" not in r]
        return found[0] if found else None

    def median(size: int, engine: str) -> float | None:
        return measured_value("median_s", size, engine)

    def peak(size: int, engine: str) -> int | None:
        return measured_value("peak_bytes", size, engine)

    lines = ["| goal | size | ratio | target |", "|---|---:|---:|---|"]
    for size in sorted({r["size"] for r in results}):
        dwell = median(size, "dwell")
        peers = [m for m in (median(size, p) for p in PEERS) if m is not None]
        if dwell and peers:
            lines.append(f"| 1: fastest peer / dwell (unsorted files) | {show_size(size)} | "
                         f"{min(peers) / dwell:.2f} | >= 3 |")
        for label in (NO_OPTIONAL, OTHER_SHAPE):
            mine = median(size, f"dwell {label}")
            theirs = [m for m in (median(size, f"{p} {label}") for p in PEERS) if m is not None]
            if mine and theirs:
                lines.append(f"| 1: fastest peer / dwell, {label} | {show_size(size)} | "
                             f"{min(theirs) / mine:.2f} | >= 3 |")
        for label in ("", f" {NO_OPTIONAL}", f" {OTHER_SHAPE}"):
            mine, duck = peak(size, f"dwell{label}"), peak(size, f"duckdb{label}")
            if mine and duck:
                lines.append(f"| 3: dwell / DuckDB peak RSS{label or ', unsorted files'} | "
                             f"{show_size(size)} | {mine / duck:.2f} | <= 1 |")
        on_cluster = median(size, "dwell layout cluster")
        layout_alone = median(size, "dwell layout")
        if on_cluster and layout_alone:
            lines.append(f"| 4: cluster (2 x 1 slot) / one process, dwell layout | "
                         f"{show_size(size)} | {on_cluster / layout_alone:.2f} | <= 1.3 |")
        layout, scan = median(size, "dwell layout"), median(size, "dwell layout scan")
        if layout and scan:
            lines.append(f"| 2: dwell on its layout / bare scan | {show_size(size)} | "
                         f"{layout / scan:.2f} | <= 2 |")
        constant = median(size, "dwell constant timeout")
        if dwell and constant:
            lines.append(f"| per-app timeouts / constant timeout (issue 5) | {show_size(size)} | "
                         f"{dwell / constant:.2f} | <= 1.10 |")
    sizes = sorted({r["size"] for r in results})
    for small, large in zip(sizes, sizes[1:]):
        for engine in ["dwell", "dwell layout"]:
            a, b = median(small, engine), median(large, engine)
            if a and b:
                lines.append(f"| 3: {engine} {show_size(large)} / {show_size(small)} | | "
                             f"{b / a:.2f} | <= {1.1 * large / small:.0f} |")
    return "\n".join(lines) + "\n"


def chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for engine in dict.fromkeys(r["engine"] for r in results):
        points = sorted((r["size"], r["median_s"]) for r in results
                        if r["engine"] == engine and "error" not in r)
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=engine)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events")
    ax.set_ylabel("median wall time (s), whole process")
    ax.set_title("sessions over generated events (2 cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--peak":
        sys.exit(peak_main(sys.argv[3:]))
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        peer_args = argparse.ArgumentParser()
        peer_args.add_argument("--peer")
        peer_args.add_argument("--files")
        peer_args.add_argument("--timeouts")
        peer_args.add_argument("--absent", default="")
        a = peer_args.parse_args()
        default_timeout, app_timeouts = json.loads(a.timeouts)
        absent_columns = [c for c in a.absent.split(",") if c]
        sessions_found, events_found = PEERS[a.peer](a.files, default_timeout, app_timeouts,
                                                     absent_columns)
        print(f"sessions,events\n{sessions_found},{events_found}")
        sys.exit(0)
    sys.exit(main())
