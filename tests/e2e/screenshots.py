"""`python -m tests.e2e.screenshots`: the README's pictures of the dashboard, taken afresh.

Starts `ledger serve --demo` in a temporary home (its 60 days of simulated history: what a
new user sees), asks it for one prediction, opens the dashboard in Debian's chromium and
writes docs/img/dashboard-overview.png, dashboard-performance.png and dashboard-lookup.png.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.server import EXAMPLE_ROW, REPO, Server

OUT = REPO / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
LOADED = "body[data-loaded=true]"


def shoot(server: Server, keys: dict[str, str], prediction_id: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    written = [OUT / f"dashboard-{name}.png" for name in ("overview", "performance", "lookup")]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(server.url + "/dashboard")
        page.fill("#key-input", keys["auditor"])
        page.click("#login-form button")
        page.wait_for_selector(LOADED, timeout=30_000)
        for select in ("#performance-deployment", "#slice-deployment", "#drift-deployment"):
            page.select_option(select, "churn")
        page.select_option("#slice-feature", "tenure_months")
        page.wait_for_function(
            "() => document.querySelector('#slice-table thead th')?.textContent === 'tenure_months'"
        )
        page.screenshot(path=str(written[0]))
        page.locator("#performance-view").screenshot(path=str(written[1]))
        page.fill("#lookup-id", prediction_id)
        page.click("#lookup-form button")
        page.wait_for_selector("#lookup-result .reasons-table", timeout=30_000)
        page.locator("#lookup-view").screenshot(path=str(written[2]))
        browser.close()
    return written


def wait_for_the_drift_check(server: Server, key: str) -> None:
    """Until the server's projector shows the churn deployment's window checks."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = server.call("GET", "/v1/data-health", key=key).json
        churn = [d for d in health["deployments"] if d["name"] == "churn"]
        if churn and len([c for c in churn[0]["checks"] if c["key"].startswith("window:")]) >= 2:
            return
        time.sleep(0.5)
    raise RuntimeError("the quality checks never reached data health")


def one_prediction(server: Server, key: str) -> str:
    """The README's example prediction, as a new user sends it."""
    body = {"request_id": "screenshot-1", "features": EXAMPLE_ROW}
    answer = server.call("POST", "/v1/deployments/churn/predictions", body=body, key=key)
    return str(answer.json["prediction_id"])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ledger-screenshots-") as home:
        server = Server(Path(home), f"sqlite:///{home}/ledger.db").start("--demo")
        try:
            keys = json.loads((Path(home) / "demo-keys.json").read_text())
            wait_for_the_drift_check(server, keys["auditor"])
            for path in shoot(server, keys, one_prediction(server, keys["predictor"])):
                print(f"{path.relative_to(REPO)}: {path.stat().st_size // 1024} KB")
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
