"""The session analytics page in headless Chromium, driven by Playwright.

Started by tests/it/web.rs against a running `dwell serve --http`; the figures the page must
show come from the SQL views, in the JSON file named by DWELL_PAGE_EXPECTED.
"""

import json
import math
import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

PAGE = os.environ["DWELL_PAGE"]
EXPECTED = json.loads(Path(os.environ["DWELL_PAGE_EXPECTED"]).read_text())
SHOTS = Path(os.environ["DWELL_PAGE_SCREENSHOTS"])
# The flags that keep Chromium off the network it cannot reach (and quick to start).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def credentials(variable):
    user, password = os.environ[variable].split(":", 1)
    return {"username": user, "password": password}


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ["DWELL_TEST_CHROMIUM"], headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def open_page(browser, who, query=""):
    context = browser.new_context(
        http_credentials=credentials(who), viewport={"width": 1360, "height": 1000}
    )
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{PAGE}/{query}")
    return page, requests, errors


def wait_ready(page):
    page.wait_for_selector("body[data-ready='true']", timeout=60_000)
    for panel in ["summary", "daily", "apps", "durations", "segments"]:
        state = page.get_attribute(f"#panel-{panel}", "data-state")
        message = page.text_content(f"#panel-{panel} .status")
        assert state == "ready", f"panel {panel} is {state}: {message}"


def card(page, name):
    return float(page.get_attribute(f"#card-{name}", "data-value"))


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def check_cards(page, want):
    assert card(page, "sessions") == want["sessions"]
    assert card(page, "users") == want["users"]
    assert close(card(page, "total"), want["total_session_seconds"])
    assert close(card(page, "avg"), want["avg_session_seconds"])
    # The text people read is there too, not only the attribute.
    assert page.text_content("#card-sessions") == f"{want['sessions']:,}"


def chart_data(page, canvas):
    return page.evaluate(
        """(id) => {
            const chart = Chart.getChart(id);
            if (!chart) return null;
            return { labels: chart.data.labels, datasets: chart.data.datasets.map(d => d.data) };
        }""",
        canvas,
    )


def test_admin_sees_every_panel_with_the_views_figures(browser):
    page, requests, errors = open_page(browser, "DWELL_PAGE_ADMIN")
    wait_ready(page)
    check_cards(page, EXPECTED["all"])
    assert page.text_content("#who").startswith("analyst")
    assert page.is_visible("#f-account")

    daily = chart_data(page, "chart-daily")
    assert daily["labels"] == [r["day"] for r in EXPECTED["daily"]]
    assert daily["datasets"][0] == [r["sessions"] for r in EXPECTED["daily"]]
    assert len(daily["datasets"][1]) == len(EXPECTED["daily"])

    apps = chart_data(page, "chart-apps")
    assert apps["labels"] == [r["app_id"] for r in EXPECTED["apps"]]
    assert apps["datasets"][0] == [r["sessions"] for r in EXPECTED["apps"]]

    durations = chart_data(page, "chart-durations")
    assert len(durations["labels"]) == 11
    assert sum(durations["datasets"][0]) == EXPECTED["all"]["sessions"]

    segments = chart_data(page, "chart-segments")
    want = {r["segment"]: r["users"] for r in EXPECTED["segments"]}
    assert dict(zip(segments["labels"], segments["datasets"][0])) == {
        s: want.get(s, 0) for s in ["struggling", "disengaged", "engaged"]
    }
    split = chart_data(page, "chart-attribute")
    assert split is not None and len(split["labels"]) > 1, "segments split by department"
    assert sum(sum(d) for d in split["datasets"]) == sum(want.values())
    listed = page.locator("#table-struggling tr.pick").count() + page.locator(
        "#table-disengaged tr.pick"
    ).count()
    assert listed == min(100, want.get("struggling", 0)) + min(100, want.get("disengaged", 0))

    # Nothing came from anywhere but dwell, and the page threw nothing.
    assert all(url.startswith(PAGE) for url in requests), [u for u in requests if not u.startswith(PAGE)]
    assert errors == []
    page.screenshot(path=str(SHOTS / "admin.png"), full_page=True)
    page.context.close()


def test_drill_down_shows_the_users_sessions(browser):
    page, _, errors = open_page(browser, "DWELL_PAGE_ADMIN")
    wait_ready(page)
    page.fill("#user-id", EXPECTED["user_id"])
    page.click("#user-form button")
    page.wait_for_selector("#panel-user[data-state='ready']", timeout=60_000)
    rows = page.locator("#table-user tr[data-session]")
    want = EXPECTED["user_sessions"]
    assert rows.count() == len(want)
    got = [
        (rows.nth(i).get_attribute("data-session"), rows.nth(i).locator("td").last.text_content())
        for i in range(rows.count())
    ]
    assert got == [(s["session_id"], s["end_reason"]) for s in want]
    timeline = chart_data(page, "chart-user")
    assert sum(len(d) for d in timeline["datasets"]) == len(want)
    assert EXPECTED["user_id"] in page.text_content("#user-summary")
    # The drill-down is in the address, so it can be shared and reopened.
    assert f"user={EXPECTED['user_id']}" in page.url
    assert errors == []
    page.locator("#panel-user").screenshot(path=str(SHOTS / "drill-down.png"))
    page.context.close()

    reopened, _, _ = open_page(browser, "DWELL_PAGE_ADMIN", f"?user={EXPECTED['user_id']}")
    reopened.wait_for_selector("#panel-user[data-state='ready']", timeout=60_000)
    assert reopened.locator("#table-user tr[data-session]").count() == len(want)
    reopened.context.close()


def test_tenant_sees_its_account_only(browser):
    page, _, errors = open_page(browser, "DWELL_PAGE_TENANT")
    wait_ready(page)
    check_cards(page, EXPECTED["tenant"])
    assert EXPECTED["tenant_account"] in page.text_content("#who")
    assert not page.is_visible("#f-account"), "no account choice for a tenant"
    options = page.eval_on_selector_all("#f-app option", "os => os.map(o => o.value).filter(v => v)")
    assert options == EXPECTED["tenant_apps"]
    assert errors == []
    page.screenshot(path=str(SHOTS / "tenant.png"), full_page=True)
    page.context.close()


def test_errors_are_messages_not_blank_panels(browser):
    # A tenant asking for another account's data (in the address) is told why, in the page.
    page, _, _ = open_page(browser, "DWELL_PAGE_TENANT", f"?account={EXPECTED['other_account']}")
    page.wait_for_selector("#context-status.error", timeout=60_000)
    message = page.text_content("#context-status")
    assert "may see account" in message, message
    assert page.get_attribute("#who", "data-state") == "error"
    for panel in ["summary", "daily", "apps", "durations", "segments", "user"]:
        assert page.get_attribute(f"#panel-{panel}", "data-state") == "error"
        assert "Not loaded" in page.text_content(f"#panel-{panel} .status"), panel
    page.screenshot(path=str(SHOTS / "error.png"), full_page=True)
    page.context.close()

    # A panel whose query fails shows the server's message in that panel; the rest draw.
    page, _, _ = open_page(browser, "DWELL_PAGE_ADMIN")
    wait_ready(page)
    page.evaluate(
        """() => { const o = document.createElement('option');
                   o.value = 'no-such-column'; o.textContent = o.value;
                   document.getElementById('f-attribute').appendChild(o); }"""
    )
    page.select_option("#f-attribute", "no-such-column")
    page.wait_for_selector("#panel-segments[data-state='error']", timeout=60_000)
    assert "not a text column of users" in page.text_content("#panel-segments .status")
    assert page.get_attribute("#panel-daily", "data-state") == "ready"
    page.context.close()


def test_a_slow_panel_shows_progress(browser):
    # The segments call is held back: its panel says it is loading, with the seconds so far,
    # while the others draw; released, it draws too.
    context = browser.new_context(http_credentials=credentials("DWELL_PAGE_ADMIN"))
    page = context.new_page()
    held = []
    page.route("**/api/segments*", lambda route: held.append(route))
    page.goto(f"{PAGE}/")
    page.wait_for_selector("#panel-summary[data-state='ready']", timeout=60_000)
    page.wait_for_function(
        "() => /Loading… [1-9]/.test(document.querySelector('#panel-segments .status').textContent)",
        timeout=30_000,
    )
    assert page.get_attribute("#panel-segments", "data-state") == "loading"
    assert "loading" in page.get_attribute("#panel-segments .status", "class")
    assert held, "the segments request was held"
    for route in held:
        route.continue_()
    page.wait_for_selector("body[data-ready='true']", timeout=60_000)
    assert page.get_attribute("#panel-segments", "data-state") == "ready"
    context.close()
