"""Raw events from the auditor API (JSON lines), so verification needs no database access.

The bearer key goes only to the origin the auditor named: a redirect or a `next` page on
another origin (scheme, host and port) is refused, never followed.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Generator, Iterator
from typing import IO

from ledger.errors import InvalidCommand, NotAuthorized
from ledger.notary.chain import RawEvent, raw_event_from_json


def iter_events_from_url(
    url: str, api_key: str | None = None, timeout: float = 60
) -> Iterator[RawEvent]:
    """Follow GET /v1/ledger/events pages: a line `{"next": URL-or-cursor}` names the next page.

    A line carrying `next` (alone or as `next_cursor`) is a paging hint, never an event; the
    verifier still checks that positions strictly increase across pages.
    """
    next_url: str | None = url
    seen: set[str] = set()
    origin = _origin(url)
    while next_url:
        if next_url in seen:
            raise InvalidCommand(f"the server's next cursor loops back to {next_url}")
        if _origin(next_url) != origin:  # never hand the bearer key to another host
            raise InvalidCommand(f"the server's next page {next_url} is not on {url}'s origin")
        seen.add(next_url)
        next_url = yield from _read_page(next_url, api_key, timeout)


def _read_page(
    url: str, api_key: str | None, timeout: float
) -> Generator[RawEvent, None, str | None]:
    request = urllib.request.Request(url, headers={"Accept": "application/x-ndjson"})
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    following: str | None = None
    with _opened(request, timeout) as response:
        for line in response:
            if not line.strip():
                continue
            item = json.loads(line)
            cursor = item.get("next", item.get("next_cursor")) if isinstance(item, dict) else None
            if isinstance(item, dict) and "position" not in item:
                following = _next_url(url, cursor) if cursor else None
                continue
            yield raw_event_from_json(item)
    return following


def _opened(request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    """The page's response; a refused key is told as what to set, not as a bare HTTP status."""
    try:
        response: http.client.HTTPResponse = _OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise NotAuthorized(
                f"{request.full_url} answered 401: set LEDGER_API_KEY to an auditor key "
                "(`ledger keys create --role auditor` prints one)"
            ) from None
        if error.code == 403:
            raise NotAuthorized(
                f"{request.full_url} answered 403: the key in LEDGER_API_KEY may not read "
                "the event stream; use an auditor key"
            ) from None
        raise
    return response


def _next_url(current: str, cursor: str) -> str:
    """A full URL stays as given; a bare cursor replaces the `cursor` query parameter."""
    if "://" in str(cursor):
        return str(cursor)
    parts = urllib.parse.urlsplit(current)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["cursor"] = str(cursor)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port (the scheme's default when none is given)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


_DEFAULT_PORTS = {"http": 80, "https": 443}


class SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the origin asked: urllib would copy Authorization along."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            fp.close()
            raise InvalidCommand(
                f"{req.full_url} redirects ({code}) to {newurl}, another origin: refusing to "
                "follow it with the bearer key; give --from-url the address that serves the events"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(SameOriginRedirects)
