"""What the deployment-change trigger costs the prediction insert: database CPU per row.

    python -m bench.deployment_notify [--rows 20000] [--batch 1 --batch 32] [--rounds 6]

Inserts prediction events through the group committer's BatchWriter into a fresh
PostgreSQL database, alternating rounds with the trigger (ledger/deployment_watch.py)
dropped and installed, and reads the CPU of the writer's server process from /proc
(the server runs on this host). The trigger's WHEN is evaluated for every row; a
prediction's never matches, so no NOTIFY is queued for it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import uuid

from eventsourcing.persistence import StoredEvent

from bench.common import create_postgres_database, drop_postgres_database
from ledger.application import Ledger
from ledger.deployment_watch import TRIGGER, create_notify_trigger
from ledger.domain.predictions import Prediction
from ledger.log import topic
from ledger.settings import Settings

TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one server process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run(rows: int, batches: list[int], rounds: int) -> None:
    url = create_postgres_database("ledger_bench_notify")
    ledger = Ledger(Settings(database_url=url, group_commit=True))
    try:
        writer = ledger.recorder_.batch_writer
        assert writer is not None
        made = topic(Prediction.Made)
        state = os.urandom(700)  # about a one-row prediction's stored state
        writer.insert([StoredEvent(uuid.uuid4(), 1, made, state)])  # connects and prepares
        with writer._connection().cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        print("| batch | trigger | server CPU µs/row (median of rounds) |")
        print("|---:|---|---:|")
        for batch in batches:
            costs: dict[bool, list[float]] = {False: [], True: []}
            for round_ in range(rounds * 2):
                installed = round_ % 2 == 1
                with ledger.engine.begin() as conn:
                    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {TRIGGER} ON ledger_events")
                    if installed:
                        create_notify_trigger(conn)
                before = backend_cpu(pid)
                for _ in range(rows // batch):
                    writer.insert([StoredEvent(uuid.uuid4(), 1, made, state) for _ in range(batch)])
                costs[installed].append((backend_cpu(pid) - before) / rows * 1e6)
            for installed in (False, True):
                median = statistics.median(costs[installed])
                label = "installed" if installed else "dropped"
                print(f"| {batch} | {label} | {median:.1f} |")
    finally:
        ledger.close()
        drop_postgres_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    run(args.rows, args.batch or [1, 32], args.rounds)


if __name__ == "__main__":
    main()
