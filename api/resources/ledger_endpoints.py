"""Auditor endpoints on the ledger itself: raw events, signed digests, verification; /healthz."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import falcon
import orjson

from api import params
from api.staleness import describe, stalled_beyond, statuses_of
from api.verify_jobs import VerifyJobs
from ledger import notary
from ledger.errors import NotFound

NDJSON = "application/x-ndjson"
SHORT_RUN_SECONDS = 2.0  # a verification finished within this answers 200 at once


class EventsResource:
    """GET /v1/ledger/events: stored events as JSON lines from `from`, then a `next_cursor` line."""

    def __init__(self, services: Any):
        self.engine = services.ledger.engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        start = max(params.query(req)["from"], params.cursor(req) + 1)
        limit = params.limit(req)
        resp.content_type = NDJSON
        resp.stream = self._lines(start, limit)

    def _lines(self, start: int, limit: int) -> Iterator[bytes]:
        last, count = None, 0
        for item in notary.iter_raw_events(self.engine, start, None, page=min(limit, 5000)):
            yield orjson.dumps(item) + b"\n"
            last, count = item["position"], count + 1
            if count == limit:
                break
        if count == limit and last is not None:
            yield orjson.dumps({"next_cursor": params.next_cursor(last)}) + b"\n"


class DigestResource:
    """GET /v1/ledger/digest: the signed head; a read, so it writes at most one file per interval."""

    def __init__(self, services: Any):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        settings = self.services.settings
        key_path = notary.default_key_path(settings)
        if not key_path.exists():
            raise NotFound("this server has no signing key: run `ledger signing-key init` on it")
        digest = notary.digest_for_reader(
            self.services.ledger.engine,
            key_path,
            settings.digests_dir,
            settings.digest_read_write_seconds,
        )
        resp.media = digest.to_json()


class VerifyResource:
    """GET /v1/ledger/verify (200 for a short run, else 202 and a job to poll)."""

    def __init__(self, services: Any):
        engine, settings = services.ledger.engine, services.settings
        self.jobs = VerifyJobs(
            engine,
            lambda: notary.verify_database(engine, _digests(settings)),
            per_key=settings.verify_jobs_per_key,
            total=settings.verify_jobs_total,
        )

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        job_id, thread = self.jobs.start(req.context.principal.key_id)
        thread.join(SHORT_RUN_SECONDS)
        job = self.jobs.get(job_id)
        resp.media = job
        if job["status"] == "running":
            resp.status = falcon.HTTP_202
            resp.location = f"/v1/ledger/verify/jobs/{job_id}"
            resp.set_header("Retry-After", "2")

    def on_get_job(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = self.jobs.get(job_id)


def _digests(settings: Any) -> list[Any]:
    """The latest digest this server wrote, if any, so verification also checks it."""
    latest = notary.latest_digest_file(settings.digests_dir)
    return [notary.load_digest(latest)] if latest else []


class HealthResource:
    """GET /healthz: liveness, the database's state and the projections' (api/staleness.py).

    200 while the process answers, unless a projection has been stalled longer than
    LEDGER_PROJECTION_STALL_GRACE_SECONDS: then 503, naming it."""

    def __init__(self, services: Any):
        self.statuses = statuses_of(services)
        self.grace = services.settings.projection_stall_grace_seconds

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            position, found = self.statuses.get()
        except Exception:  # noqa: BLE001 - liveness reports the database, it does not fail on it
            resp.media = {"status": "ok", "database": "unavailable", "position": None}
            return
        stalled = stalled_beyond(found, self.grace)
        resp.media = {
            "status": "stalled" if stalled else "ok",
            "database": "ok",
            "position": int(position),
            "projections": [describe(s) for s in found],
        }
        if stalled:
            resp.status = falcon.HTTP_503


def add_routes(app: falcon.App, services: Any) -> None:
    verify = VerifyResource(services)
    app.add_route("/v1/ledger/events", EventsResource(services))
    app.add_route("/v1/ledger/digest", DigestResource(services))
    app.add_route("/v1/ledger/verify", verify)
    app.add_route("/v1/ledger/verify/jobs/{job_id}", verify, suffix="job")
    app.add_route("/healthz", HealthResource(services))
