"""Verification jobs: a thread in the worker, results in a small table any worker can read."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.errors import NotFound

metadata = sa.MetaData()
jobs = sa.Table(
    "ledger_verify_jobs",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("finished_at", sa.String(40)),
    sa.Column("ok", sa.Boolean),
    sa.Column("report", sa.Text),
    sa.Column("error", sa.Text),
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class VerifyJobs:
    """Starts verification runs and answers their state by id (operational, not ledger, data)."""

    def __init__(self, engine: sa.Engine, verify: Any):
        self.engine, self._verify = engine, verify
        metadata.create_all(engine, checkfirst=True)

    def start(self) -> tuple[str, threading.Thread]:
        job_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(jobs.insert().values(job_id=job_id, status="running", started_at=_now()))
        thread = threading.Thread(
            target=self._run, args=(job_id,), name=f"verify-{job_id[:8]}", daemon=True
        )
        thread.start()
        return job_id, thread

    def _run(self, job_id: str) -> None:
        try:
            report = self._verify()
            values = {
                "status": "done",
                "ok": bool(report.ok),
                "report": orjson.dumps(report.to_dict()).decode(),
            }
        except Exception as error:  # noqa: BLE001 - the poller learns why, the worker lives on
            values = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        with self.engine.begin() as conn:
            conn.execute(
                jobs.update().where(jobs.c.job_id == job_id).values(finished_at=_now(), **values)
            )

    def get(self, job_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).mappings().first()
        if row is None:
            raise NotFound(f"no verification job {job_id!r}", field="job_id")
        job = dict(row)
        job["report"] = orjson.loads(job["report"]) if job["report"] else None
        return job
