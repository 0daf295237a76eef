"""`verify --from-url` talks only to the origin it was given: the bearer key never leaves it."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from click.testing import CliRunner

from api.cli import main
from ledger import notary
from ledger.errors import InvalidCommand


@contextmanager
def serving(answer):
    """A local server; `answer(handler)` returns (status, headers, body) for each GET."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            seen.append((self.path, self.headers.get("Authorization")))
            status, headers, body = answer(self)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def events_body(engine):
    return "".join(json.dumps(e) + "\n" for e in notary.iter_raw_events(engine)).encode()


@contextmanager
def redirecting_elsewhere(engine):
    """Server A answers 302 to server B, another origin (another port on the same host)."""
    with serving(lambda h: (200, {}, events_body(engine))) as (other, other_seen):
        with serving(lambda h: (302, {"Location": f"{other}/events"}, b"")) as (origin, seen):
            yield origin, seen, other_seen


def test_a_redirect_to_another_origin_is_refused_and_the_key_stays_home(ledger):
    ledger.issue_api_key("auditor", actor="test")
    with redirecting_elsewhere(ledger.engine) as (origin, seen, other_seen):
        with pytest.raises(InvalidCommand, match="another origin"):
            list(notary.iter_events_from_url(f"{origin}/events", "pl_abc_secret"))
    assert seen == [("/events", "Bearer pl_abc_secret")]
    assert other_seen == []  # not even a request without the key


def test_the_cli_refuses_the_redirect_in_one_line(ledger, monkeypatch):
    ledger.issue_api_key("auditor", actor="test")
    monkeypatch.setenv("LEDGER_API_KEY", "pl_abc_secret")
    with redirecting_elsewhere(ledger.engine) as (origin, _, other_seen):
        result = CliRunner().invoke(main, ["verify", "--from-url", f"{origin}/events"])
    assert result.exit_code == 2 and "another origin" in result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert other_seen == []


def test_a_redirect_within_the_origin_is_followed_with_the_key(ledger):
    ledger.issue_api_key("auditor", actor="test")

    def answer(handler):
        if handler.path == "/old":
            return 302, {"Location": "/events"}, b""
        return 200, {}, events_body(ledger.engine)

    with serving(answer) as (origin, seen):
        report = notary.verify_events(notary.iter_events_from_url(f"{origin}/old", "pl_k_s"))
    assert not report.problems and report.events == 1, report.render()
    assert seen == [("/old", "Bearer pl_k_s"), ("/events", "Bearer pl_k_s")]


@pytest.mark.parametrize(
    "url, other",
    [
        ("http://127.0.0.1:8000/e", "http://127.0.0.1:8001/e"),
        ("https://h.example/e", "http://h.example/e"),
        ("http://h.example/e", "http://g.example/e"),
    ],
)
def test_origins_differ_by_scheme_host_or_port(url, other):
    assert notary.remote._origin(url) != notary.remote._origin(other)
    assert notary.remote._origin("http://H.example:80/x") == notary.remote._origin(
        "http://h.example/y"
    )


def test_a_401_says_to_set_an_auditor_key(monkeypatch):
    monkeypatch.delenv("LEDGER_API_KEY", raising=False)
    with serving(lambda h: (401, {}, b'{"title": "unauthorized"}')) as (origin, _):
        result = CliRunner().invoke(main, ["verify", "--from-url", f"{origin}/v1/ledger/events"])
    assert result.exit_code != 0
    [line] = result.output.strip().splitlines()
    assert "LEDGER_API_KEY" in line and "auditor key" in line, line
