"""The API docs page in a real browser (Debian's chromium driven by playwright).

Under the page headers every HTML answer sends (api/security_headers.py): Swagger UI still
renders every operation, nothing breaks the Content-Security-Policy, a call made from the
page works, and the key typed into "Authorize" is kept for the tab only, never in
localStorage. A screenshot goes to test-artifacts/docs.png.
"""

from __future__ import annotations

import pytest

from api.routes import ROUTES
from ledger.application import Ledger
from ledger.settings import Settings
from tests.e2e.server import Server
from tests.e2e.test_dashboard_browser import ARGS, ARTIFACTS, CHROMIUM, ensure_chromium

pytestmark = pytest.mark.slow
# Playwright's init script is not subject to the page's policy: it records every violation.
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation",
  e => window.violations.push(e.violatedDirective + " " + e.blockedURI));
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config):
    ensure_chromium(pytestconfig)
    home = tmp_path_factory.mktemp("docs")
    url = f"sqlite:///{home / 'ledger.db'}"
    ledger = Ledger(Settings(home=home, database_url=url, group_commit=False))
    try:
        key = ledger.issue_api_key(role="admin", actor="e2e")[1]
    finally:
        ledger.close()
    server = Server(home, url).start()
    try:
        yield server, key
    finally:
        server.stop()


@pytest.fixture
def page(served):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        tab.add_init_script(RECORD_VIOLATIONS)
        tab.problems = []
        tab.on("pageerror", lambda error: tab.problems.append(f"script error: {error}"))
        tab.on(
            "console",
            lambda message: (
                tab.problems.append(message.text)
                if message.type == "error" or "Content Security Policy" in message.text
                else None
            ),
        )
        yield tab
        browser.close()


def authorize(page, key: str) -> None:
    page.click("button.btn.authorize")
    page.fill(".modal-ux input", key)
    page.click(".modal-ux .auth-btn-wrapper button.authorize")
    page.click(".modal-ux button.btn-done")


def authorized(page) -> dict:
    return page.evaluate("() => window.ui.authSelectors.authorized().toJS()")


def test_the_docs_page_renders_every_operation_under_its_policy(served, page):
    server, key = served
    answer = page.goto(server.url + "/docs")
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "unsafe-eval" not in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    page.wait_for_selector(".opblock", timeout=30_000)
    shown = page.locator(".opblock").count()
    assert shown == len(ROUTES)
    assert "/v1/ledger/digest" in page.inner_text("#swagger-ui")

    authorize(page, key)
    page.screenshot(path=str(ARTIFACTS / "docs.png"), full_page=False)
    assert authorized(page)["bearer"]["value"] == key
    assert key not in page.evaluate("() => JSON.stringify(localStorage)")
    assert key in page.evaluate("() => JSON.stringify(sessionStorage)")
    # "Try it out" on an operation: expanded, sent from the page with the key, answered.
    operation = page.locator("#operations-deployments-get_v1_deployments")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    assert status.first.inner_text(timeout=15_000).strip() == "200"
    page.screenshot(path=str(ARTIFACTS / "docs-try-it-out.png"), full_page=False)
    assert page.evaluate("() => window.violations") == []
    assert page.problems == []


def test_the_key_lasts_for_the_tab_only(served, page):
    server, key = served
    page.goto(server.url + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    authorize(page, key)
    page.reload()
    page.wait_for_selector(".opblock", timeout=30_000)
    page.wait_for_function("() => window.ui.authSelectors.authorized().size > 0")
    assert authorized(page)["bearer"]["value"] == key  # kept across a reload of the tab
    assert key not in page.evaluate("() => JSON.stringify(localStorage)")

    other = page.context.new_page()  # a new tab starts without it
    other.goto(server.url + "/docs")
    other.wait_for_selector(".opblock", timeout=30_000)
    assert other.evaluate("() => window.ui.authSelectors.authorized().toJS()") == {}
    assert other.evaluate("() => JSON.stringify(localStorage)") == "{}"
    page.click("button.btn.authorize")
    page.click(".modal-ux .auth-btn-wrapper button")  # Logout
    assert key not in page.evaluate("() => JSON.stringify(sessionStorage)")
    assert page.evaluate("() => window.violations") == []
