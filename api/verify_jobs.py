"""Verification jobs: a thread in the worker, results in a small table any worker can read.

A run reads the whole log, so a worker runs only a few at once (per key and in all): past
them, 429 and Retry-After, never another thread.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from api.errors import Problem
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

    RETRY_AFTER_SECONDS = 5

    def __init__(self, engine: sa.Engine, verify: Any, per_key: int = 1, total: int = 2):
        self.engine, self._verify = engine, verify
        self.per_key, self.total = per_key, total
        self._running: Counter[str] = Counter()  # this worker's running runs by key id
        self._lock = threading.Lock()
        metadata.create_all(engine, checkfirst=True)

    def start(self, key_id: str) -> tuple[str, threading.Thread]:
        """Start a run for the key, or 429 when it (or this worker) runs enough already."""
        self._claim(key_id)
        try:
            job_id = uuid.uuid4().hex
            with self.engine.begin() as conn:
                conn.execute(
                    jobs.insert().values(job_id=job_id, status="running", started_at=_now())
                )
            thread = threading.Thread(
                target=self._run, args=(job_id, key_id), name=f"verify-{job_id[:8]}", daemon=True
            )
            thread.start()
        except BaseException:
            self._release(key_id)
            raise
        return job_id, thread

    def _claim(self, key_id: str) -> None:
        with self._lock:
            if self._running[key_id] >= self.per_key:
                why = f"this key already has {self._running[key_id]} verification running"
            elif self._running.total() >= self.total:
                why = f"{self._running.total()} verifications are running on this worker"
            else:
                self._running[key_id] += 1
                return
        raise Problem(
            429,
            "verify_busy",
            f"{why}; poll the running job (its Location) or retry later",
            headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)},
        )

    def _release(self, key_id: str) -> None:
        with self._lock:
            self._running[key_id] -= 1
            if self._running[key_id] <= 0:
                del self._running[key_id]

    def _run(self, job_id: str, key_id: str) -> None:
        try:
            self._finish(job_id)
        finally:
            self._release(key_id)

    def _finish(self, job_id: str) -> None:
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
