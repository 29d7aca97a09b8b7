#!/usr/bin/env python3
"""Streams a large result over Flight SQL with the ADBC client, beside `dwell sql`.

    python benches/flight/stream_bench.py --dwell target/release/dwell --data /tmp/d10m \
        [--sql "SELECT * FROM sessionized_events"] [--runs 3]

Starts `dwell serve` on 127.0.0.1 (a free port) over DATA, fetches the query's whole result
through ADBC (adbc-driver-flightsql), and runs the same query through
`dwell sql --format parquet -o FILE`. Prints rows, Arrow bytes, medians, rows/s and MB/s.
The server is stopped by the PID this script started.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import adbc_driver_flightsql.dbapi as flight_sql


def start_server(dwell, data):
    server = subprocess.Popen(
        [dwell, "serve", "--data", data, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = server.stdout.readline().strip()
    prefix = "dwell serve: listening on "
    if not line.startswith(prefix):
        server.kill()
        sys.exit(f"unexpected first line from dwell serve: {line!r}")
    return server, line[len(prefix):]


def adbc_run(uri, sql):
    started = time.perf_counter()
    rows = nbytes = 0
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(sql)
        reader = cur.fetch_record_batch()
        for batch in reader:
            rows += batch.num_rows
            nbytes += batch.nbytes
    return time.perf_counter() - started, rows, nbytes


def cli_run(dwell, data, sql):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.parquet")
        started = time.perf_counter()
        subprocess.run(
            [dwell, "sql", "--data", data, "-c", sql, "--format", "parquet", "-o", out],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
        size = os.path.getsize(out)
    return elapsed, size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dwell", required=True, help="path to the dwell binary (release)")
    parser.add_argument("--data", required=True, help="data location with generated events")
    parser.add_argument("--sql", default="SELECT * FROM sessionized_events")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    server, uri = start_server(args.dwell, args.data)
    try:
        adbc = [adbc_run(uri, args.sql) for _ in range(args.runs)]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    cli = [cli_run(args.dwell, args.data, args.sql) for _ in range(args.runs)]

    rows, nbytes = adbc[0][1], adbc[0][2]
    adbc_median = statistics.median(t for t, _, _ in adbc)
    cli_median = statistics.median(t for t, _ in cli)
    print(f"query: {args.sql}")
    print(f"rows: {rows:,}   Arrow bytes: {nbytes / 1e6:,.1f} MB   runs: {args.runs}")
    print(f"{'path':<34}{'median s':>10}{'rows/s':>14}{'MB/s':>10}   all runs (s)")
    print(
        f"{'ADBC over Flight SQL (loopback)':<34}{adbc_median:>10.2f}"
        f"{rows / adbc_median:>14,.0f}{nbytes / 1e6 / adbc_median:>10.1f}   "
        + ", ".join(f"{t:.2f}" for t, _, _ in adbc)
    )
    print(
        f"{'dwell sql --format parquet -o F':<34}{cli_median:>10.2f}"
        f"{rows / cli_median:>14,.0f}{nbytes / 1e6 / cli_median:>10.1f}   "
        + ", ".join(f"{t:.2f}" for t, _ in cli)
    )
    print(f"ADBC / dwell sql time ratio: {adbc_median / cli_median:.2f}")


if __name__ == "__main__":
    main()
