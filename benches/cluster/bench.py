#!/usr/bin/env python3
"""Cluster benchmark: a Ballista scheduler with two one-slot executors against one process.

Issue 18's goal 4: on the same data location and machine, a query that sessionizes all events
(`sessions_with()`, which sessionizes at query time; `sessions` reads the persisted sessions)
runs through `dwell sql --cluster` against `dwell scheduler` + two `dwell executor --task-slots
1` processes, and through `dwell sql` in one process (two cores, two partitions), alternately,
--runs times each. It prints the medians and their ratio and writes `results.json` and
`results.md` to --out. Both answers must be equal, or the program fails.

The data is generated with `dwell generate` at each size (or reused under --work). Only
loopback addresses; the program stops the processes it started, by their PID.

    python benches/cluster/bench.py --dwell target/release/dwell --sizes 1M,10M --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SQL = ("SELECT count(*) AS sessions, sum(event_count) AS events, "
       "sum(duration_seconds) AS seconds FROM sessions_with()")


def parse_size(text: str) -> int:
    text = text.strip().upper()
    for suffix, factor in (("K", 1_000), ("M", 1_000_000), ("G", 1_000_000_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


def show_size(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n:,}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(dwell: str, work: Path, events: int) -> Path:
    data = work / f"events-{show_size(events)}"
    if not (data / "_dwell").exists():
        subprocess.run([dwell, "generate", "--data", str(data), "--events", str(events)],
                       check=True, stdout=subprocess.DEVNULL)
    return data


class Cluster:
    """`dwell scheduler` and two one-slot `dwell executor` processes over `data`."""

    def __init__(self, dwell: str, data: Path, logs: Path):
        self.processes: list[subprocess.Popen] = []
        port = free_port()
        self.url = f"df://127.0.0.1:{port}"
        self.spawn([dwell, "scheduler", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
                   logs / "scheduler.log")
        for i in range(2):
            work = logs / f"executor-{i}"
            work.mkdir(exist_ok=True)
            self.spawn([dwell, "executor", "--data", str(data), "--scheduler", self.url,
                        "--listen", f"127.0.0.1:{free_port()}", "--task-slots", "1",
                        "--work-dir", str(work)], logs / f"executor-{i}.log")
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    self.stop()
                    raise SystemExit(f"the cluster did not start; see {logs}")
                time.sleep(0.1)
        # Executors register with the scheduler when they first ask for work.
        time.sleep(2)

    def spawn(self, command: list[str], log: Path) -> None:
        self.processes.append(subprocess.Popen(command, stdout=log.open("w"),
                                               stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return wall, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dwell", default="target/release/dwell")
    parser.add_argument("--sizes", default="1M,10M")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default="/tmp/dwell-cluster-bench")
    parser.add_argument("--out", default="benches/cluster/results")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for size in (parse_size(s) for s in args.sizes.split(",")):
        data = prepare(args.dwell, work, size)
        single = [args.dwell, "sql", "--data", str(data), "--format", "csv", "-c", SQL]
        with tempfile.TemporaryDirectory(dir=work) as logs:
            cluster = Cluster(args.dwell, data, Path(logs))
            try:
                on_cluster = single + ["--cluster", cluster.url]
                times: dict[str, list[float]] = {"one process": [], "cluster": []}
                answers = set()
                for _ in range(args.runs):
                    for name, command in (("one process", single), ("cluster", on_cluster)):
                        wall, answer = timed(command)
                        times[name].append(wall)
                        answers.add(answer)
                        print(f"{show_size(size)} {name}: {wall:.2f} s", flush=True)
            finally:
                cluster.stop()
        if len(answers) != 1:
            raise SystemExit(f"{show_size(size)}: the cluster and one process disagree: {answers}")
        medians = {name: statistics.median(ts) for name, ts in times.items()}
        results.append({"events": size, "times": times, "medians": medians,
                        "ratio": medians["cluster"] / medians["one process"],
                        "answer": answers.pop().strip()})
    lines = ["| events | one process (2 cores) | cluster (2 x 1 slot) | cluster / one process |",
             "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {show_size(r['events'])} | {r['medians']['one process']:.2f} s | "
                     f"{r['medians']['cluster']:.2f} s | {r['ratio']:.2f}x |")
    table = "\n".join(lines)
    print(table)
    (out / "results.md").write_text(
        f"`{SQL}`, medians of {args.runs} alternating runs\n\n{table}\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
