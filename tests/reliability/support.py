"""Shared set-up for the reliability scenarios: sizes, a throwaway PostgreSQL, a served
deployment and retrying clients.

Sizes are reduced for the ordinary suite; `make soak` sets LEDGER_SOAK=1 for full size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from ledger import notary
from ledger.application import Ledger
from ledger.artifacts import dumps_skops
from ledger.settings import Settings
from tests.e2e.server import Answer, Server, free_port

SOAK = os.environ.get("LEDGER_SOAK", "") == "1"
TIMEOUT = 7200 if SOAK else 600  # seconds per test (pytest-timeout)
PG_BIN = Path("/usr/lib/postgresql/15/bin")
FEATURES = ("tenure", "charges", "calls")
PREDICT = "/v1/deployments/churn/predictions"
MADE = "ledger.domain.predictions:Prediction.Made"


def scaled(reduced: int, soak: int) -> int:
    """The reduced size in the ordinary suite, the full size under `make soak`."""
    return soak if SOAK else reduced


def as_postgres(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
    """Run a PostgreSQL tool as the `postgres` OS user (initdb refuses root)."""
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        **kwargs,
    )


class ThrowawayCluster:
    """A PostgreSQL 15 cluster of our own in a temporary directory, on a free port."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = free_port()

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> ThrowawayCluster:
        as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )
        return self.start()

    def start(self) -> ThrowawayCluster:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str = "ledger") -> str:
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def destroy(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def issue_keys(home: Path, url: str) -> dict[str, str]:
    """A key per role and the signing key, written in-process."""
    settings = Settings(home=home, database_url=url, group_commit=False)
    ledger = Ledger(settings)
    try:
        notary.create_signing_key(ledger, notary.default_key_path(settings), "reliability")
        return {
            role: ledger.issue_api_key(role=role, actor="reliability")[1]
            for role in ("admin", "predictor", "auditor")
        }
    finally:
        ledger.close()


def upload_body(seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(80, len(FEATURES))), np.array([0, 1] * 40)
    return dumps_skops(LogisticRegression().fit(x, y))


def build_deployment(server: Server, keys: dict[str, str]) -> None:
    """The churn deployment with one uploaded classifier as its leader."""
    deployment = {
        "name": "churn",
        "task": "classification",
        "positive_label": 1,
        "schema": {"features": [{"name": n, "type": "number"} for n in FEATURES]},
    }
    created = server.call("POST", "/v1/deployments", deployment, key=keys["admin"])
    assert created.status == 201, created.body
    metadata = {
        "name": "lr",
        "task": "classification",
        "features": list(FEATURES),
        "deployment": "churn",
        "declared": {"by": "reliability"},
    }
    uploaded = server.call(
        "POST",
        "/v1/models",
        raw=upload_body(),
        key=keys["admin"],
        headers={
            "Content-Type": "application/octet-stream",
            "X-Model-Metadata": json.dumps(metadata),
        },
    )
    assert uploaded.status == 201, uploaded.body


def served(home: Path, url: str, *extra: str) -> tuple[Server, dict[str, str]]:
    """A running server on `url` with the churn deployment, and a key per role."""
    keys = issue_keys(home, url)
    server = Server(home, url).start(*extra)
    build_deployment(server, keys)
    return server, keys


def row(i: int) -> dict[str, float]:
    return {"tenure": float(i % 50), "charges": 20.0 + (i % 97), "calls": float(i % 7)}


@dataclass
class Tally:
    """What the clients saw: acknowledged answers by request id, and every status."""

    acknowledged: dict[str, dict] = field(default_factory=dict)
    statuses: list[tuple[float, int, str]] = field(default_factory=list)
    mismatched_retries: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, status: int, retry_after: str) -> None:
        with self.lock:
            self.statuses.append((time.monotonic(), status, retry_after))

    def ack(self, request_id: str, answer: dict) -> None:
        with self.lock:
            first = self.acknowledged.setdefault(request_id, answer)
            if (
                first["prediction_id"] != answer["prediction_id"]
                or first["value"] != answer["value"]
            ):
                self.mismatched_retries.append(request_id)


def predict_once(
    server: Server, key: str, request_id: str, i: int, timeout: float = 15
) -> Answer | None:
    """One attempt; None when the connection broke (a killed worker, a refused connect)."""
    import http.client
    import urllib.error
    import urllib.request

    body = json.dumps({"request_id": request_id, "features": row(i)}).encode()
    request = urllib.request.Request(
        server.url + PREDICT,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, lower(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, lower(error.headers), error.read())
    except (OSError, http.client.HTTPException):  # reset, refused, or an answer cut short by a kill
        return None


def lower(headers) -> dict[str, str]:  # noqa: ANN001
    return {name.lower(): value for name, value in headers.items()}


def retrying_client(
    server: Server,
    key: str,
    ids: Iterable[tuple[str, int]],
    tally: Tally,
    deadline: float,
    backoff: float = 0.05,
) -> None:
    """Send each request id until a 2xx answer (or the deadline): what a careful caller does."""
    try:
        _send_all(server, key, ids, tally, deadline, backoff)
    except Exception as error:  # noqa: BLE001 - a dead client thread must fail the test, not hide
        tally.gave_up.append(f"client crashed: {error!r}")


def _send_all(
    server: Server,
    key: str,
    ids: Iterable[tuple[str, int]],
    tally: Tally,
    deadline: float,
    backoff: float,
) -> None:
    for request_id, i in ids:
        while True:
            answer = predict_once(server, key, request_id, i)
            status = answer.status if answer else 0
            tally.saw(status, answer.headers.get("retry-after", "") if answer else "")
            if answer is not None and 200 <= status < 300:
                tally.ack(request_id, answer.json)
                break
            if time.monotonic() > deadline:
                tally.gave_up.append(request_id)
                break
            time.sleep(backoff)


def run_clients(
    server: Server,
    key: str,
    count: int,
    threads: int,
    tally: Tally,
    budget: float,
    prefix: str | None = None,
) -> list[threading.Thread]:
    """Start `threads` retrying clients over `count` fresh request ids; returns the threads."""
    prefix = prefix or uuid.uuid4().hex[:8]
    deadline = time.monotonic() + budget
    shares = [[(f"{prefix}-{i}", i) for i in range(t, count, threads)] for t in range(threads)]
    workers = [
        threading.Thread(
            target=retrying_client, args=(server, key, share, tally, deadline), daemon=True
        )
        for share in shares
    ]
    for worker in workers:
        worker.start()
    return workers


def recorded_predictions(url: str) -> dict[str, int]:
    """How many times each prediction id is in the event table."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT originator_id, count(*) FROM ledger_events WHERE topic = :t GROUP BY originator_id"
                ),
                {"t": MADE},
            ).all()
    finally:
        engine.dispose()
    return {
        str(uuid.UUID(bytes=bytes(o))) if isinstance(o, bytes | memoryview) else str(o): n
        for o, n in rows
    }


def children_of(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(p) for p in text)
    return found


def gunicorn_workers(server: Server) -> list[int]:
    """The server's gunicorn worker pids (its children other than the sidecars and the writer)."""
    assert server.process is not None
    workers = []
    for child in children_of(server.process.pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"api.sidecars" not in cmdline and WRITER not in cmdline:
            workers.append(child)
    return workers


WRITER = b"ledger.writer_process"


def writer_process(server: Server) -> int | None:
    """The pid of the server's writer process (ledger/writer_process.py), if one runs now."""
    assert server.process is not None
    for child in children_of(server.process.pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if WRITER in cmdline and state != "Z":
            return child
    return None


def peak_rss_mb(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    """Run `argv` in a child and return its peak RSS in MB (getrusage of the waited child)."""
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(f'{peak:.1f}'); print(done.returncode); print(done.stdout[-2000:] + done.stderr[-2000:])\n"
    )
    import sys

    out = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=3600,
    ).stdout.split("\n", 2)
    assert out[1] == "0", f"{argv} failed:\n{out[2]}"
    return float(out[0]), out[2]
