"""deploy/nginx/ledger.conf keeps to the API's own limits (checked by text, no nginx needed)."""

from __future__ import annotations

import re
from pathlib import Path

from ledger.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"


def megabytes(directive: str, text: str) -> list[int]:
    return [int(m) * 1024 * 1024 for m in re.findall(rf"^\s*{directive}\s+(\d+)m;", text, re.M)]


def test_body_sizes_are_the_api_limits_and_bodies_are_buffered():
    site = (DEPLOY / "ledger.conf").read_text()
    proxy = (DEPLOY / "ledger-proxy.conf").read_text()
    defaults = Settings()
    assert megabytes("client_max_body_size", site) == [
        defaults.max_body_bytes,
        defaults.max_model_bytes,
    ]
    assert re.search(r"location = /v1/models \{\s*client_max_body_size", site)
    assert "proxy_request_buffering on;" in proxy and "keepalive " in site
    for timeout in ("client_header_timeout", "client_body_timeout"):
        seconds = re.search(rf"{timeout} (\d+)s;", site)
        assert seconds and int(seconds.group(1)) <= defaults.body_timeout_seconds
