"""Every HTML answer the route table declares sends the page headers; every answer is nosniff."""

from __future__ import annotations

import pytest

from api.routes import ROUTES
from api.security_headers import PAGE_HEADERS
from tests.integration.api_support import make_api

PAGES = [
    route.path.replace("{file}", "index.html")
    for route in ROUTES
    if any(
        "text/html" in (a.media if isinstance(a.media, str) else " ".join(a.media))
        for a in route.answers.values()
    )
]


@pytest.fixture
def api(ledger):
    api = make_api(ledger)
    yield api
    api.client.app.services.close()


def test_the_route_table_declares_the_pages():
    assert {"/", "/docs", "/dashboard", "/docs/index.html"} <= set(PAGES)


@pytest.mark.parametrize("path", PAGES)
def test_a_page_sends_the_page_headers(api, path):
    answer = api.call("GET", path, role=None)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    for name, value in PAGE_HEADERS.items():
        assert answer.headers[name] == value, name
    policy = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy
    assert "unsafe-inline" not in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_other_answers_are_nosniff_and_carry_no_page_policy(api):
    for path, role in (
        ("/openapi.json", None),
        ("/docs/init.js", None),
        ("/v1/deployments", "admin"),
    ):
        answer = api.call("GET", path, role=role)
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert "Content-Security-Policy" not in answer.headers, path


def test_the_docs_page_keeps_no_key_in_local_storage():
    from api.openapi import STATIC

    script = (STATIC / "init.js").read_text()
    assert "persistAuthorization: false" in script and "localStorage." not in script
    assert "<script>" not in (STATIC / "index.html").read_text()  # no inline script
