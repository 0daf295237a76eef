"""A real `ledger serve` (gunicorn) in a subprocess on a free port, and a tiny HTTP client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


# The README's example row for the demo's churn deployment (its customer_id is personal).
EXAMPLE_ROW = {
    "customer_id": "c-1001",
    "tenure_months": 7,
    "monthly_charges": 82.5,
    "support_calls": 3,
    "income": 41000,
    "region": "north",
    "plan": "premium",
    "has_partner": False,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ledger_cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from api.cli import main; main()", *args]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """The service under test: its URL, environment and log."""

    home: Path
    database_url: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LEDGER_HOME": str(self.home),
            "LEDGER_DATABASE_URL": self.database_url,
        }

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    def command(self, *extra: str) -> list[str]:
        """What `start` runs: `ledger serve` on this server's port."""
        return ledger_cli(
            "serve", "--port", str(self.port), "--workers", "2", "--threads", "4", *extra
        )

    def start(self, *extra: str, timeout: float = 90) -> Server:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command(*extra),
                cwd=self.home,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so stop() can end gunicorn and its children together
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if self.call("GET", "/healthz").status == 200:
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(
            f"the server did not answer in {timeout}s:\n{self.log.read_text()[-3000:]}"
        )

    def log_tail(self, lines: int = 40) -> str:
        exited = self.process.poll() if self.process else None
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return f"server exit status: {exited}\n{tail}"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ledger_cli(*args),
            cwd=self.home,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )
