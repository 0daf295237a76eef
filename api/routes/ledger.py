"""The ledger itself, for auditors: raw events, signed digests, verification."""

from __future__ import annotations

from api.routes.common import cursor, limit
from api.routes.table import AUDITOR, Answer, Param, Route, roles
from api.schemas.ledger import DigestSchema, VerifyJobSchema

TAG = "ledger and proof"
NDJSON = "application/x-ndjson"
JOB = VerifyJobSchema

ROUTES = (
    Route(
        "GET",
        "/v1/ledger/events",
        roles(AUDITOR),
        "Raw stored events as JSON lines, from a position",
        TAG,
        {
            200: Answer(
                "one event a line, then a `next_cursor` line when the page is full",
                {"type": "string"},
                media=NDJSON,
            )
        },
        query=(
            Param("from", "the first position", type="integer", minimum=0, default=0),
            limit(10_000, 100_000),
            cursor("position"),
        ),
    ),
    Route(
        "GET",
        "/v1/ledger/digest",
        roles(AUDITOR),
        "The signed head of the chain",
        TAG,
        {200: Answer("a signed digest", DigestSchema)},
        description="A read: the digest file at the head as it is, else the head signed now;"
        " at most one new file per LEDGER_DIGEST_READ_WRITE_SECONDS.",
    ),
    Route(
        "GET",
        "/v1/ledger/verify",
        roles(AUDITOR),
        "Verify the chain (a long run answers 202 and a job)",
        TAG,
        {
            200: Answer("the finished verification", JOB),
            202: Answer("a long run: poll the job at Location", JOB),
        },
        description="A few runs at once per key and per worker (LEDGER_VERIFY_JOBS_PER_KEY,"
        " LEDGER_VERIFY_JOBS_TOTAL); past them 429 `verify_busy` with Retry-After.",
    ),
    Route(
        "GET",
        "/v1/ledger/verify/jobs/{job_id}",
        roles(AUDITOR),
        "A verification job",
        TAG,
        {200: Answer("the job", JOB)},
    ),
)
