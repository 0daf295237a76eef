"""Scenario 8: kill -9 a SQLite writer process mid-write, again and again.

The writer is a process of eight threads recording through the group committer (the path
the API takes), printing each acknowledged event as it is acknowledged. After each kill
the database passes `PRAGMA integrity_check` and holds every acknowledged event.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from ledger import ids
from tests.reliability.support import TIMEOUT, scaled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]
ROUNDS = scaled(3, 20)
WRITER = """
import sys, threading
from pathlib import Path
from ledger.application import Ledger
from ledger.settings import Settings

ledger = Ledger(Settings(home=Path(sys.argv[1]), database_url=sys.argv[2]))
out = threading.Lock()

def write(t):
    n = 0
    while True:
        key_id, _ = ledger.issue_api_key("auditor", actor="writer", label=f"t{t}-{n}")
        with out:
            sys.stdout.write(key_id + "\\n")
            sys.stdout.flush()
        n += 1

threads = [threading.Thread(target=write, args=(t,), daemon=True) for t in range(8)]
[t.start() for t in threads]
threads[0].join()
"""


def collect(stream, lines: list[str]) -> None:  # noqa: ANN001
    for line in stream:
        if line.endswith("\n"):  # a line cut by the kill was never acknowledged to anyone
            lines.append(line.strip())


def stored_originators(url: str) -> set[uuid.UUID]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
            return {
                uuid.UUID(bytes=bytes(r[0]))
                for r in conn.exec_driver_sql("SELECT originator_id FROM ledger_events")
            }
    finally:
        engine.dispose()


def test_a_killed_writer_leaves_an_intact_database_with_every_acknowledged_event(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    rng, acknowledged = random.Random(8), []
    for _ in range(ROUNDS):
        lines: list[str] = []
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), url],
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        reader = threading.Thread(target=collect, args=(writer.stdout, lines))
        reader.start()
        target, deadline = rng.randint(50, 400), time.monotonic() + 120
        while len(lines) < target and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
        reader.join(10)
        acks = list(lines)
        assert len(acks) >= target, f"the writer stopped early (rc {writer.returncode})"
        acknowledged += acks
        stored = stored_originators(url)
        missing = [i for i, k in enumerate(acknowledged) if ids.api_key_id(k) not in stored]
        assert not missing, (
            f"{len(missing)} of {len(acknowledged)} acknowledged events missing, at {missing} "
            f"({[acknowledged[i] for i in missing]}); "
            f"this round acknowledged {len(acks)}"
        )
