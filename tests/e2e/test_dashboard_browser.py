"""The dashboard in a real browser (Debian's chromium driven by playwright) against `ledger serve`.

The charts must show the figures the API returns: the test reads each Chart.js chart's
data from the page and compares it with the JSON of the same call. Screenshots go to
test-artifacts/ (dashboard-now.png, dashboard-as-of.png, dashboard-lookup.png).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.settings import Settings
from policies.feeds import close_elapsed_periods
from policies.quality_windows import check_recent_windows
from projections.registry import ALL
from projections.runner import catch_up
from tests.e2e.server import REPO, Server
from trainers import demo_data

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
WINDOW = 200


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


def rows(n: int, seed: int, drift: bool) -> list[dict]:
    frame = demo_data.generate(n, seed=seed, drift=drift).astype(object)
    frame = frame.where(frame.notna(), None)
    return [
        {k: v for k, v in r.items() if k not in ("event_time", "churned", "lifetime_value")}
        | {"_churned": r["churned"]}
        for r in frame.to_dict("records")
    ]


def build(home: Path, url: str) -> dict[str, str]:
    """Two trained churn models, a feed, and a key per role, written in-process."""
    from api.demo import create_deployment
    from trainers.demo import demo_specs

    ledger = Ledger(Settings(home=home, database_url=url, group_commit=False))
    try:
        specs = [s for s in demo_specs(rows=1500) if s["deployment"] == "churn"]
        create_deployment(ledger, "churn", specs)
        ledger.declare_feed("churn-requests", 500, 3600, "e2e", tolerance=0.1, deployment="churn")
        return {
            role: ledger.issue_api_key(role=role, actor="e2e")[1]
            for role in ("admin", "predictor", "auditor")
        }
    finally:
        ledger.close()


def predict_and_report(
    server: Server, keys: dict[str, str], batch: list[dict], request_id: str
) -> list[str]:
    instances = [{k: v for k, v in r.items() if k != "_churned"} for r in batch]
    answer = server.call(
        "POST",
        "/v1/deployments/churn/predictions",
        {"request_id": request_id, "instances": instances},
        key=keys["predictor"],
    )
    assert answer.status in (200, 201), answer.body
    ids = [p["prediction_id"] for p in answer.json["predictions"]]
    outcomes = [
        {"prediction_id": i, "actual": r["_churned"]} for i, r in zip(ids, batch, strict=True)
    ]
    reported = server.call("POST", "/v1/outcomes", outcomes, key=keys["predictor"])
    assert reported.status == 201, reported.body
    return ids


def promote_the_challenger(server: Server, keys: dict[str, str]) -> None:
    deployment = server.call("GET", "/v1/deployments/churn", key=keys["admin"]).json
    challenger = deployment["challengers"][0]["id"]
    promoted = server.call(
        "PUT",
        "/v1/deployments/churn/leader",
        {"model_id": challenger, "reason": "e2e"},
        key=keys["admin"],
        headers={"If-Match": f'"{deployment["version"]}"'},
    )
    assert promoted.status == 200, promoted.body


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config):
    """A served ledger with calm traffic, a quality check, then drifted traffic and its check."""
    ensure_chromium(pytestconfig)
    home = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{home / 'ledger.db'}"
    keys = build(home, url)
    server = Server(home, url).start()
    try:
        ledger = Ledger(Settings(home=home, database_url=url, group_commit=False))
        predict_and_report(server, keys, rows(WINDOW, seed=21, drift=False), "calm")
        check_recent_windows(ledger, window=WINDOW)
        time.sleep(1.1 - time.time() % 1)  # a whole second between the two checks, for the picker
        calm_instant = datetime.now(UTC).replace(microsecond=0)
        time.sleep(1.1)
        ids = predict_and_report(server, keys, rows(WINDOW, seed=22, drift=True), "drifted")
        check_recent_windows(ledger, window=WINDOW)
        promote_the_challenger(server, keys)
        close_elapsed_periods(ledger, now=datetime.now(UTC) + timedelta(hours=3))
        for projection in ALL:  # here, or by waiting for the server's projector if it runs them
            catch_up(ledger.engine, projection)
        ledger.close()
        yield server, keys, calm_instant, ids
    finally:
        server.stop()


def api_json(server: Server, key: str, path: str) -> dict:
    answer = server.call("GET", path, key=key)
    assert answer.status == 200, answer.body
    return answer.json


def wait_until_current(server: Server, key: str) -> dict:
    """Data health once the projector has caught up with every check and closed period."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        health = api_json(server, key, "/v1/data-health")
        if (
            health["deployments"]
            and health["deployments"][0]["latest"]["key"].startswith("window:")
            and len(health["deployments"][0]["checks"]) == 2
            and health["feeds"][0]["flagged_periods"] >= 3
        ):
            return health
        time.sleep(0.3)
    raise AssertionError(f"data health never caught up: {str(health)[:2000]}")


@pytest.fixture(scope="module")
def page(world):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))  # uncaught script errors
        tab.errors = errors
        yield tab
        browser.close()


def open_dashboard(page, server: Server, key: str) -> None:
    page.goto(server.url + "/dashboard")
    page.evaluate("() => sessionStorage.clear()")  # a fresh session: the page asks for the key
    page.reload()
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
    assert page.locator("#deployments-table tbody td").nth(4).inner_text() != "—"  # a challenger
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
    page.wait_for_selector("#lookup-json", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-lookup.png"), full_page=True)
    text = page.inner_text("#lookup-json")
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
    assert [row[0] for row in shown] == [r["slice_value"] for r in expected]
    assert [int(row[2]) for row in shown] == [r["count"] for r in expected]
    assert [row[6] for row in shown] == [f"{r['f1']:.3f}" for r in expected]
    assert "central" in {row[0] for row in shown}  # the region only the drifted traffic has
