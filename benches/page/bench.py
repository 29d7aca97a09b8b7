"""How long the session analytics page takes to show: a real `dwell serve --http` over a data
location, opened in headless Chromium (Playwright) several times.

    python benches/page/bench.py --dwell target/release/dwell --data /tmp/dwell-bench/10M \
        --runs 5

For each run: a fresh browser context, navigation to the page, and the time until every panel
has drawn (`body[data-ready]`), with each panel's own time (its API call and drawing, from the
page's `data-ms`), then a user drill-down. Prints medians.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from playwright.sync_api import sync_playwright

PANELS = ["summary", "daily", "apps", "durations", "segments"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dwell", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default=os.environ.get("DWELL_TEST_CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--screenshot", help="save the last run's page here")
    args = parser.parse_args()

    server = subprocess.Popen(
        [args.dwell, "serve", "--data", args.data, "--no-flight", "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline().strip()
        prefix = "dwell serve: session analytics page on "
        if not line.startswith(prefix):
            sys.exit(f"unexpected first line {line!r}")
        url = line[len(prefix):]
        results = {"page": [], "user": [], **{p: [] for p in PANELS}}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for run in range(args.runs):
                context = browser.new_context(viewport={"width": 1360, "height": 1000})
                page = context.new_page()
                started = time.perf_counter()
                page.goto(url)
                page.wait_for_selector("body[data-ready='true']", timeout=600_000)
                results["page"].append(time.perf_counter() - started)
                for panel in PANELS:
                    state = page.get_attribute(f"#panel-{panel}", "data-state")
                    if state != "ready":
                        sys.exit(f"panel {panel}: {state}: {page.text_content(f'#panel-{panel} .status')}")
                    results[panel].append(int(page.get_attribute(f"#panel-{panel}", "data-ms")) / 1000)
                user = page.get_attribute("#table-struggling tr.pick", "data-user") or page.get_attribute(
                    "#table-engaged tr.pick", "data-user")
                started = time.perf_counter()
                page.fill("#user-id", user)
                page.click("#user-form button")
                page.wait_for_selector("#panel-user[data-state='ready']", timeout=600_000)
                results["user"].append(time.perf_counter() - started)
                if args.screenshot and run == args.runs - 1:
                    page.screenshot(path=args.screenshot, full_page=True)
                context.close()
                print(f"run {run + 1}: page {results['page'][-1]:.2f} s, drill-down {results['user'][-1]:.2f} s",
                      flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\n{args.runs} runs, medians:\n")
    print("| what | median s |\n|---|---:|")
    print(f"| whole page, navigation to every panel drawn | {statistics.median(results['page']):.2f} |")
    for panel in PANELS:
        print(f"| panel {panel} (its API call and drawing) | {statistics.median(results[panel]):.2f} |")
    print(f"| user drill-down, click to drawn | {statistics.median(results['user']):.2f} |")


if __name__ == "__main__":
    main()
