"""The dashboard in a real browser (Debian's chromium driven by playwright) against `ledger serve`.

The charts must show the figures the API returns: the test reads each Chart.js chart's
data from the page and compares it with the JSON of the same call. Screenshots go to
test-artifacts/ (dashboard-now.png, dashboard-as-of.png, dashboard-lookup.png).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.dashboard_world import build, tell_the_story, wait_until_current
from tests.e2e.server import REPO, Server

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium logs each refused fetch; the tests cause 403s and 404s on purpose.
REFUSED_FETCH = re.compile(
    r"Failed to load resource: the server responded with a status of 40[134]"
)


INSTALLING = "installing chromium (Debian package) for the dashboard's browser test"


def ensure_chromium(config: pytest.Config) -> None:
    """Install Debian's chromium when it is missing, saying so first (CI does it in .ci/run)."""
    if Path(CHROMIUM).exists():
        return
    if os.geteuid() != 0:
        missing = "chromium is missing: `apt-get install chromium` (as root) runs this test"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:  # past pytest's capture: the person running the tests sees it
        reporter.write_line(INSTALLING)
    try:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "chromium"],
            check=True,
            capture_output=True,
            timeout=1200,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    except (OSError, subprocess.SubprocessError) as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"chromium is missing and could not be installed: {error}")
        pytest.skip(f"chromium is missing and could not be installed: {error}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config):
    """A served ledger with calm traffic, a quality check, then drifted traffic and its check."""
    ensure_chromium(pytestconfig)
    home = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{home / 'ledger.db'}"
    keys = build(home, url)
    server = Server(home, url).start()
    try:
        calm_instant, ids = tell_the_story(server, keys)
        yield server, keys, calm_instant, ids
    finally:
        server.stop()


def api_json(server: Server, key: str, path: str) -> dict:
    answer = server.call("GET", path, key=key)
    assert answer.status == 200, answer.body
    return answer.json


@pytest.fixture(scope="module")
def page(world):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))  # uncaught script errors
        tab.on(
            "console",
            lambda m: (
                m.type == "error" and not REFUSED_FETCH.search(m.text) and errors.append(m.text)
            ),
        )  # a CSP violation is reported here
        tab.errors = errors
        yield tab
        browser.close()


def open_dashboard(page, server: Server, key: str) -> None:
    page.goto(server.url + "/dashboard")
    page.evaluate("() => sessionStorage.clear()")  # a fresh session: the page asks for the key
    page.reload()
    login(page, key)


def login(page, key: str) -> None:
    page.fill("#key-input", key)
    page.click("#login-form button")
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)


def chart_data(page, name: str) -> dict:
    return page.evaluate(f"""() => {{
        const c = window.dashboard.charts[{name!r}];
        return c ? {{labels: c.data.labels, datasets: c.data.datasets.map(d => ({{label: d.label, data: d.data}}))}} : null;
    }}""")


def test_the_charts_show_the_figures_the_api_returns(world, page):
    server, keys, _, _ = world
    health = wait_until_current(server, keys["auditor"])
    open_dashboard(page, server, keys["auditor"])
    page.screenshot(path=str(ARTIFACTS / "dashboard-now.png"), full_page=True)

    drift = [d for d in health["deployments"][0]["drift"] if d["psi"] is not None]
    shown = chart_data(page, "drift")
    assert shown["labels"] == [d["feature"] for d in drift]
    assert shown["datasets"][0]["data"] == [d["psi"] for d in drift]
    assert {"income", "monthly_charges", "region"} <= {d["feature"] for d in drift if d["drifted"]}

    periods = health["feeds"][0]["periods"]
    feeds = chart_data(page, "feeds")
    assert feeds["datasets"][0]["data"] == [p["received"] for p in periods]
    assert feeds["datasets"][1]["data"] == [p["expected"] for p in periods]

    [model_health] = health["model_health"]
    performance = chart_data(page, "performance")
    for model, dataset in zip(model_health["models"], performance["datasets"], strict=False):
        assert dataset["data"] == [p["value"] for p in model["points"]]
    assert len(model_health["models"]) == 2 and any(
        p["value"] for p in model_health["models"][0]["points"]
    )
    changes = page.evaluate(
        "() => window.dashboard.charts.performance.options.plugins.leaderLines.changes"
    )
    assert [c["model_id"] for c in changes] == [
        c["model_id"] for c in model_health["leader_changes"]
    ]
    assert len(changes) == 2  # the first leader, then the promotion
    assert page.locator("#deployments-table tbody tr").count() == 1
    assert page.locator("#deployments-table tbody td").nth(5).inner_text() != "—"  # a challenger
    assert page.errors == []


def test_the_as_of_picker_moves_the_views_back_to_before_the_drift(world, page):
    server, keys, calm_instant, _ = world
    as_of = calm_instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    past = api_json(server, keys["auditor"], f"/v1/data-health?as_of={as_of}")
    open_dashboard(page, server, keys["auditor"])
    page.fill("#as-of-input", calm_instant.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#as-of-apply")
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-as-of.png"), full_page=True)

    assert page.inner_text("#as-of-label") == f"as of {as_of}"
    calm = [d for d in past["deployments"][0]["drift"] if d["psi"] is not None]
    assert chart_data(page, "drift")["datasets"][0]["data"] == [d["psi"] for d in calm]
    assert not any(d["drifted"] for d in calm)
    page.click("#as-of-now")
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)


def test_a_prediction_lookup_shows_its_whole_provenance(world, page):
    server, keys, _, ids = world
    open_dashboard(page, server, keys["auditor"])
    page.fill("#lookup-id", ids[0])
    page.click("#lookup-form button")
    page.wait_for_selector("#lookup-json", state="attached", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-lookup.png"), full_page=True)
    text = page.text_content("#lookup-json")
    assert ids[0] in text and "training_run" in text and "shadow" in text
    assert page.evaluate("() => Object.keys(sessionStorage)") == ["provenance-ledger-key"]
    assert page.evaluate("() => Object.keys(localStorage)") == []


def test_the_dashboard_asks_for_a_key_and_a_wrong_one_is_refused(world, page):
    server, _, _, _ = world
    page.goto(server.url + "/dashboard")
    page.evaluate("() => sessionStorage.clear()")
    page.reload()
    assert page.is_visible("#login") and not page.is_visible("#views")
    page.fill("#key-input", "pl_nope_nope")
    page.click("#login-form button")
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    assert page.is_visible("#login") and "refused" in page.inner_text("#status")


def test_nothing_is_fetched_from_anywhere_but_the_server(world):
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
    html = (REPO / "api" / "static" / "dashboard" / "index.html").read_text()
    assert "http://" not in html and "https://" not in html


def test_the_slice_table_shows_the_performance_the_api_returns_per_slice(world, page):
    server, keys, _, _ = world
    open_dashboard(page, server, keys["auditor"])
    page.select_option("#slice-feature", "region")
    page.wait_for_function(
        "() => document.querySelector('#slice-table thead th')?.textContent === 'region'"
    )
    answer = api_json(server, keys["auditor"], "/v1/performance?deployment=churn&slice=region")
    expected = [r for r in answer["results"] if r["slice_value"] is not None]
    shown = page.eval_on_selector_all(
        "#slice-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))"
    )
    assert sorted(row[0] for row in shown) == sorted(r["slice_value"] for r in expected)
    by_value = {(r["slice_value"], r["count"]) for r in expected}
    assert {(row[0], int(row[2])) for row in shown} == by_value
    assert "central" in {row[0] for row in shown}  # the region only the drifted traffic has


def lower_bound(bin_label: str) -> float:
    """Where a numeric bin starts: `<=1` before `(1,4]` before `(4,11]` ... before `>55`."""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", bin_label)]
    return float("-inf") if bin_label.startswith("<") else numbers[0]


def test_numeric_slices_are_in_the_order_of_their_bins(world, page):
    server, keys, _, _ = world
    open_dashboard(page, server, keys["auditor"])
    page.select_option("#slice-feature", "tenure_months")
    page.wait_for_function(
        "() => document.querySelector('#slice-table thead th')?.textContent === 'tenure_months'"
    )
    shown = page.eval_on_selector_all(
        "#slice-table tbody tr", "rows => rows.map(r => r.cells[0].innerText)"
    )
    bins = list(dict.fromkeys(shown))
    assert len(bins) >= 3 and all(re.search(r"\d", b) for b in bins), bins
    assert [lower_bound(b) for b in bins] == sorted(lower_bound(b) for b in bins), bins
    assert bins != sorted(bins), "text order and numeric order coincide: the check shows nothing"
    assert all(
        int(n) > 0
        for n in page.eval_on_selector_all(
            "#slice-table tbody tr", "rows => rows.map(r => r.cells[2].innerText)"
        )
    )


def test_a_flagged_prediction_opens_its_provenance_in_view(world, page):
    from playwright.sync_api import expect

    server, keys, _, _ = world
    page.set_viewport_size({"width": 1400, "height": 700})
    try:
        open_dashboard(page, server, keys["auditor"])
        link = page.locator("#flagged-table tbody a.lookup").last
        link.scroll_into_view_if_needed()
        link.click()
        opened = page.locator("#flagged-table tr.inline .provenance")
        expect(opened.locator("dl.summary")).to_be_visible(timeout=15_000)
        expect(opened).to_be_in_viewport()
        assert (link.get_attribute("title") or "").split(":")[0] in opened.inner_html()
        link.click()  # a second click closes it
        expect(page.locator("#flagged-table tr.inline")).to_have_count(0)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_as_of_applies_to_the_lookup_and_stays_in_the_address(world, page):
    server, keys, calm_instant, ids = world
    as_of = calm_instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    open_dashboard(page, server, keys["auditor"])
    page.fill("#lookup-id", ids[0])
    page.click("#lookup-form button")
    page.wait_for_selector("#lookup-result dl.summary")
    assert "stands now" in page.inner_text("#lookup-result")

    page.fill("#as-of-input", calm_instant.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#as-of-apply")
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    assert page.url.endswith(f"#as_of={as_of.replace(':', '%3A')}")
    # the drifted prediction was recorded after that instant: the card no longer shows it
    assert page.locator("#lookup-result dl.summary").count() == 0
    assert "Not shown" in page.inner_text("#lookup-result")

    linked = page.url
    page.goto("about:blank")
    page.goto(linked)  # a linked view opens as of the same instant
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    assert page.inner_text("#as-of-label") == f"as of {as_of}"
    page.click("#as-of-now")
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    assert "as_of" not in page.url and page.url.endswith("/dashboard")


def test_a_key_switch_empties_the_cards_the_new_key_may_not_read(world, page):
    server, keys, _, ids = world
    open_dashboard(page, server, keys["auditor"])
    page.fill("#lookup-id", ids[0])
    page.click("#lookup-form button")
    page.wait_for_selector("#lookup-result .reasons-table")
    assert page.locator("#flagged-table tbody tr").count() > 0

    page.click("#forget-key")
    login(page, keys["predictor"])
    for card in ("performance-view", "feeds-view", "drift-view", "slices-view", "flagged-view"):
        assert page.get_attribute(f"#{card}", "class").endswith("denied"), card
        assert page.locator(f"#{card} tbody tr").count() == 0, card
        assert "may not read" in page.inner_text(f"#{card} .note"), card
    assert page.evaluate("() => Object.keys(window.dashboard.charts)") == []
    assert page.locator("#deployments-table tbody tr").count() == 1  # any key reads deployments
    # nothing of the auditor's lookup stays; the predictor recorded this prediction and reads
    # it again, but not its reasons
    assert page.locator("#lookup-result *").count() == 0
    assert page.input_value("#lookup-id") == ""
    page.fill("#lookup-id", ids[0])
    page.click("#lookup-form button")
    page.wait_for_selector("#lookup-result dl.summary")
    assert page.locator("#lookup-result .reasons-table").count() == 0
    assert "an auditor or admin key may read them" in page.inner_text("#lookup-result")


def test_the_leader_label_is_never_cut(world, page):
    server, keys, _, _ = world
    open_dashboard(page, server, keys["auditor"])
    deployment = api_json(server, keys["auditor"], "/v1/deployments/churn")
    leader = deployment["leader"]
    full = f"{leader['name']} ({leader['id'][:8]})"
    assert page.locator("#deployments-table tbody td.leader").first.inner_text() == full
    labels = page.evaluate("() => window.dashboard.leaderLabels")
    assert len(labels) == 2
    for label in labels:
        assert label["text"].startswith("leader: ") and label["text"].endswith(")")
        assert 0 <= label["left"] and label["right"] <= label["width"], label
    assert deployment["leader_since"]["recorded_at"][:19].replace("T", " ") in page.inner_text(
        "#deployments-table tbody"
    )


def test_the_root_leads_to_the_dashboard_and_the_docs(world, page):
    server, _, _, _ = world
    page.goto(server.url + "/")
    assert page.locator("#to-docs").get_attribute("href") == "/docs"
    page.click("#to-dashboard")
    page.wait_for_url(server.url + "/dashboard")
    icon = server.call("GET", "/favicon.ico")
    headers = {name.lower(): value for name, value in icon.headers.items()}
    assert icon.status == 200 and headers["content-type"] == "image/x-icon"
    assert icon.body[:4] == b"\x00\x00\x01\x00"


def test_no_page_showed_a_script_or_policy_error(page):
    assert page.errors == []
