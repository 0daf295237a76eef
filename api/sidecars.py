"""The processes `ledger serve` keeps beside gunicorn on one host: projector, health, digests.

Run as `python -m api.sidecars --db URL`: it starts `ledger project --follow` (exactly
one projector, never one per worker) and `ledger autopilot --loop` (feed timer, best_recent, retention),
restarts either if it dies, and writes a signed digest every digest interval with the
notary's DigestWriter. It stops when `ledger serve` does (its parent goes away).
With --no-projector it only writes digests (the compose file's `digests` service).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import click
import structlog

from api.observability import configure_logging
from ledger.settings import Settings

log = structlog.get_logger("ledger.sidecars")
RESTART_BACKOFF_SECONDS = (1, 2, 5, 10, 30)


def ledger_command(database_url: str, *args: str) -> list[str]:
    """The `ledger` CLI as this interpreter runs it (unbuffered, so lines come as they are said)."""
    return [
        sys.executable,
        "-u",
        "-c",
        "from api.cli import main; main()",
        "--db",
        database_url,
        *args,
    ]


def relay(name: str, stream: IO[str]) -> None:
    """Each line a child says, as one of our JSON log lines tagged with the child's name."""
    for line in stream:
        text = line.strip()
        if text:
            log_line(name, text)


def log_line(name: str, text: str) -> None:
    """A JSON log line passes with its fields; a JSON report is nested; plain text is the event."""
    try:
        said = json.loads(text)
    except ValueError:
        said = None
    if isinstance(said, dict) and "event" in said:
        level = str(said.pop("level", "info"))
        fields = {k: v for k, v in said.items() if k not in ("timestamp", "event")}
        getattr(log, level, log.info)(str(said["event"]), **{"sidecar": name, **fields})
    elif isinstance(said, dict):
        log.info(f"{name} report", sidecar=name, report=said)
    elif text.startswith("Error:"):
        log.error(text.removeprefix("Error:").strip(), sidecar=name)
    else:
        log.info(text, sidecar=name)


class Child:
    """One long-running child, restarted with backoff when it exits."""

    def __init__(self, name: str, argv: Sequence[str]):
        self.name, self.argv = name, list(argv)
        self.process: subprocess.Popen[str] | None = None
        self.failures = 0
        self.next_start = 0.0

    def tend(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        if self.process is not None:
            self.failures += 1
            delay = RESTART_BACKOFF_SECONDS[min(self.failures, len(RESTART_BACKOFF_SECONDS)) - 1]
            log.warning(
                "sidecar exited; restarting",
                sidecar=self.name,
                returncode=self.process.returncode,
                restart_in_s=delay,
            )
            self.process, self.next_start = None, time.monotonic() + delay
        if time.monotonic() >= self.next_start:
            self.process = subprocess.Popen(
                self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            reader = threading.Thread(
                target=relay, args=(self.name, self.process.stdout), daemon=True
            )
            reader.start()
            log.info("sidecar started", sidecar=self.name, pid=self.process.pid)

    def ask_to_stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self, timeout: float = 10) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()


def write_digest(writer: object, key_path: Path) -> None:
    """One signed digest of the chain's head (no signing key yet: say so, don't fail)."""
    if not key_path.exists():
        log.warning("no signing key: digests are not written; run `ledger signing-key init`")
        return
    from ledger.notary import TamperSuspected

    try:
        digest = writer.write_once()  # type: ignore[attr-defined]
    except TamperSuspected as error:  # nothing is signed until someone looks
        log.error("digest refused: the chain was rewritten", error=str(error))
        return
    except Exception as error:  # noqa: BLE001 - the next tick retries
        log.warning("digest not written", error=str(error))
        return
    if digest is not None:
        log.info("digest written", position=digest.position)


def digest_writer(settings: Settings, interval: int) -> tuple[object, Path]:
    """The notary's digest writer on this database, and the key file it signs with."""
    from ledger import notary
    from ledger.database import create_engine

    key_path = notary.default_key_path(settings)
    engine = create_engine(settings.database_url)
    return notary.DigestWriter(engine, key_path, settings.digests_dir, interval), key_path


@click.command()
@click.option("--db", "database_url", required=True)
@click.option(
    "--digest-interval",
    type=int,
    default=None,
    help="Seconds between digests (default: LEDGER_DIGEST_INTERVAL_SECONDS); 0: none.",
)
@click.option(
    "--projector/--no-projector",
    default=True,
    help="Also run the projector and the health pass (single host); off: digests only.",
)
def main(database_url: str, digest_interval: int | None, projector: bool) -> None:
    """Keep the projector running and write digests until the parent goes away."""
    settings = Settings.at_start(database_url=database_url)
    if digest_interval is None:
        digest_interval = settings.digest_interval_seconds
    configure_logging(settings.log_level)
    parent = os.getppid()
    children = (
        [Child("projector", ledger_command(database_url, "project", "--follow"))]
        if projector
        else []
    )
    if (
        projector
    ):  # one host runs it all; on a cluster `ledger autopilot --loop` runs as its own service
        # feed timer, quality windows, best_recent, retention and any configured rebuild rules
        children.append(
            Child(
                "autopilot",
                ledger_command(database_url, "autopilot", "--loop", "--interval", "60", "--json"),
            )
        )
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):  # `ledger serve` stops us with SIGTERM
        signal.signal(signum, lambda *_: stopping.append(True))
    writer, key_path = digest_writer(settings, digest_interval)
    next_digest = time.monotonic() + min(digest_interval, 30)
    try:
        while not stopping and os.getppid() == parent:
            for child in children:
                child.tend()
            if digest_interval > 0 and time.monotonic() >= next_digest:
                write_digest(writer, key_path)
                next_digest = time.monotonic() + digest_interval
            time.sleep(0.5)
    finally:
        for child in children:  # all at once: each stops in its own time, not in turn
            child.ask_to_stop()
        for child in children:
            child.stop()


if __name__ == "__main__":
    main()
