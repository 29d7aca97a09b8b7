#!/usr/bin/env python3
"""A/B of two `dwell` builds over persisted sessions, side by side in one run.

Each build rebuilds its own copy of a location (so its session files are in its own form),
then, interleaved run by run: the headline, daily-metrics and segments queries of bench.py
over `sessions`, the two views, and the two upkeep ingests of bench.py (the next hour, 10,000
late events), each into a fresh copy of that build's location. Whole processes; the query
answers and the persisted sessions after each ingest (count, events, total duration) must be
equal between the builds (floats to 1e-9 relative: sums add in another order when row groups
split otherwise), and equal to `sessions_with()` within each build.

    python benches/persisted/versions_ab.py --a OLD_DWELL --b NEW_DWELL --data LOCATION --runs 5

Python packages: pyarrow, numpy.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import CHECK, QUERIES, VIEW_QUERIES, make_inputs, measured, measured_rss, sql  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="the build to compare against (say main)")
    parser.add_argument("--b", required=True, help="the build measured")
    parser.add_argument("--data", required=True, type=Path, help="a location made by dwell generate")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dwell-versions-ab"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    builds = {"A": args.a, "B": args.b}
    bases = {}
    for name, dwell in builds.items():
        base = args.work / f"base-{name}"
        shutil.copytree(args.data, base)
        wall, peak, _ = measured_rss([dwell, "rebuild", "--data", str(base)])
        print(f"{name}: dwell rebuild {wall:.3f} s, {peak / 2**30:.2f} GiB", flush=True)
        bases[name] = base
    next_hour, late, _ = make_inputs(bases["A"], args.work)
    times: dict[str, dict[str, list[float]]] = {}
    answers: dict[str, dict[str, str]] = {}

    def record(case: str, name: str, wall: float, out: str) -> None:
        times.setdefault(case, {}).setdefault(name, []).append(wall)
        answers.setdefault(case, {})[name] = out

    queries = {f"{k} over sessions": v.format(src="sessions") for k, v in QUERIES.items()}
    queries.update(VIEW_QUERIES)
    for run in range(args.runs):
        for case, text in queries.items():
            for name, dwell in builds.items():
                wall, _, out = measured(sql(dwell, bases[name], text))
                record(case, name, wall, out)
        for label, source in (("ingest next hour", next_hour), ("ingest 10,000 late events", late)):
            for name, dwell in builds.items():
                copy = args.work / f"run-{name}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(bases[name], copy)
                wall, _, _ = measured([dwell, "ingest", "--data", str(copy), str(source)])
                kept = measured(sql(dwell, copy, CHECK.format(src="sessions")))[2]
                recomputed = measured(sql(dwell, copy, CHECK.format(src="sessions_with()")))[2]
                if kept != recomputed:
                    raise SystemExit(f"{name} after {label}: persisted {kept!r} != recomputed {recomputed!r}")
                record(label, name, wall, kept)
        print(f"run {run + 1} of {args.runs} done", flush=True)
    print("| case | A median s | B median s | B / A | A runs | B runs |\n|---|---:|---:|---:|---|---|")
    for case, by_build in times.items():
        a, b = statistics.median(by_build["A"]), statistics.median(by_build["B"])
        runs = [" ".join(f"{t:.2f}" for t in by_build[n]) for n in ("A", "B")]
        print(f"| {case} | {a:.3f} | {b:.3f} | {b / a:.2f} | {runs[0]} | {runs[1]} |")
    disagree = [case for case in answers if not same(answers[case]["A"], answers[case]["B"])]
    for case in disagree:
        print(f"{case}: the builds disagree:\n{answers[case]['A'][:400]}\n{answers[case]['B'][:400]}")
    return 1 if disagree else 0


def same(a: str, b: str) -> bool:
    """CSV answers equal, floats to 1e-9 relative: sums over row groups split differently add
    in another order."""
    rows_a, rows_b = a.splitlines(), b.splitlines()
    if len(rows_a) != len(rows_b):
        return False
    for row_a, row_b in zip(rows_a, rows_b):
        cells_a, cells_b = row_a.split(","), row_b.split(",")
        if len(cells_a) != len(cells_b):
            return False
        for x, y in zip(cells_a, cells_b):
            if x == y:
                continue
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                return False
            if abs(fx - fy) > 1e-9 * max(abs(fx), abs(fy)):
                return False
    return True


if __name__ == "__main__":
    sys.exit(main())
