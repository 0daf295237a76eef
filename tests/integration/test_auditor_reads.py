"""Auditor reads stay reads: the digest endpoint writes at most one file per interval, and
verification runs are capped per key and per worker (429 and Retry-After beyond)."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from api.resources import ledger_endpoints
from ledger import notary
from tests.integration.api_support import make_api


def record(ledger, n=1):
    for i in range(n):
        ledger.issue_api_key("auditor", actor="test", label=f"k{i}")


def digest_files(settings):
    return sorted(settings.digests_dir.glob("digest-*.json"))


@pytest.fixture
def api(ledger, settings):
    notary.create_signing_key(ledger, notary.default_key_path(settings), actor="test")
    record(ledger, 3)
    api = make_api(ledger)
    yield api
    api.client.app.services.close()


def head(ledger):
    notary.advance(ledger.engine)
    return notary.notary_head(ledger.engine).position


def test_a_hundred_digest_reads_write_one_file_per_interval(api, ledger, settings):
    for index in range(100):
        if index % 10 == 5:
            record(ledger)  # the head moves while auditors keep asking
        answer = api.call("GET", "/v1/ledger/digest", "auditor")
        assert answer.status_code == 200, answer.json
        assert answer.json["position"] == head(ledger)
    assert len(digest_files(settings)) == 1  # one interval (300 s by default)


def test_a_digest_at_the_head_is_returned_as_written(api, ledger, settings):
    api.client.app.services.settings = dataclasses.replace(settings, digest_read_write_seconds=0)
    first = api.call("GET", "/v1/ledger/digest", "auditor").json
    again = [api.call("GET", "/v1/ledger/digest", "auditor").json for _ in range(5)]
    assert all(one == first for one in again)  # the file at the head, signature and all
    assert len(digest_files(settings)) == 1
    record(ledger)
    moved = api.call("GET", "/v1/ledger/digest", "auditor").json
    assert moved["position"] > first["position"]
    assert len(digest_files(settings)) == 2  # a past interval: the new head is written
    assert notary.load_digest(digest_files(settings)[-1]).to_json() == moved


def test_a_signed_but_unwritten_digest_links_to_the_written_one(api, ledger, settings):
    written = api.call("GET", "/v1/ledger/digest", "auditor").json
    record(ledger, 2)
    unwritten = api.call("GET", "/v1/ledger/digest", "auditor").json
    assert unwritten["position"] > written["position"]
    assert len(digest_files(settings)) == 1
    previous = notary.Digest.from_json(unwritten)
    notary.check_continuity(ledger.engine, previous)  # a real signed head of this chain
    assert notary.verify_database(ledger.engine, [previous]).ok


def verify_resource(api):
    resource, *_ = api.client.app._router.find("/v1/ledger/verify")
    return resource


def test_verification_runs_are_capped_per_key_and_per_worker(api, ledger, monkeypatch):
    monkeypatch.setattr(ledger_endpoints, "SHORT_RUN_SECONDS", 0.05)
    jobs = verify_resource(api).jobs
    release, real = threading.Event(), jobs._verify
    jobs._verify = lambda: (release.wait(30), real())[1]
    keys = [ledger.issue_api_key(role="auditor", actor="test")[1] for _ in range(3)]

    def verify(key):
        headers = {"Authorization": f"Bearer {key}"}
        return api.client.simulate_get("/v1/ledger/verify", headers=headers)

    try:
        first = verify(keys[0])
        assert first.status_code == 202, first.json
        again = verify(keys[0])
        assert again.status_code == 429 and again.json["code"] == "verify_busy", again.json
        assert int(again.headers["Retry-After"]) >= 1
        assert "this key" in again.json["detail"]
        assert verify(keys[1]).status_code == 202  # another key, within the worker's two
        third = verify(keys[2])
        assert third.status_code == 429 and "on this worker" in third.json["detail"]
    finally:
        release.set()
    for thread in [t for t in threading.enumerate() if t.name.startswith("verify-")]:
        thread.join(30)
    monkeypatch.setattr(ledger_endpoints, "SHORT_RUN_SECONDS", 10.0)
    done = verify(keys[0])
    assert done.status_code == 200 and done.json["status"] == "done", done.json
    assert done.json["report"]["events"] > 0
    job = first.headers["Location"]
    assert api.call("GET", job, "auditor").json["status"] == "done"
