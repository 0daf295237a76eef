"""What a deployment-change trigger would cost the prediction insert: database CPU per row.

    python -m bench.deployment_notify [--rows 20000] [--batch 0 --batch 1 --batch 32] [--rounds 6]

The alternative to the NOTIFY that Ledger.save sends for a deployment (ledger/storage.py):
a row trigger on the event table whose WHEN picks the deployment topics. Inserts
prediction events through the group committer's BatchWriter into a fresh PostgreSQL
database, alternating rounds with the trigger dropped and installed, and reads the CPU of
the writer's server process from /proc (the server runs on this host). A prediction's row
never matches the WHEN, so no NOTIFY is queued for it; the WHEN is still evaluated.
"""

from __future__ import annotations

import argparse
import os
import statistics
import uuid
from typing import Any

from eventsourcing.persistence import StoredEvent

from bench.common import create_postgres_database, drop_postgres_database
from ledger.application import Ledger
from ledger.deployment_watch import CHANNEL
from ledger.domain.deployments import Deployment
from ledger.domain.predictions import Prediction
from ledger.log import topic
from ledger.settings import Settings

TICKS = os.sysconf("SC_CLK_TCK")
TRIGGER = "ledger_events_deployment_notify"


def create_notify_trigger(conn: Any) -> None:
    """The trigger measured: NOTIFY each deployment event's originator id."""
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION ledger_notify_deployment() RETURNS trigger AS $$ "
        f"BEGIN PERFORM pg_notify('{CHANNEL}', NEW.originator_id::text); RETURN NULL; "
        "END $$ LANGUAGE plpgsql"
    )
    conn.exec_driver_sql(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON ledger_events FOR EACH ROW "
        f"WHEN (starts_with(NEW.topic, '{topic(Deployment)}.')) "
        "EXECUTE FUNCTION ledger_notify_deployment()"
    )


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one server process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


BULK = (
    "INSERT INTO ledger_events (originator_id, originator_version, topic, state, recorded_at) "
    "SELECT gen_random_uuid(), 1, %s, %s, 0 FROM generate_series(1, %s)"
)


def run(rows: int, batches: list[int], rounds: int) -> None:
    """Batch 0: one INSERT … SELECT of all rows (the per-row cost alone, no per-batch noise)."""
    url = create_postgres_database("ledger_bench_notify")
    ledger = Ledger(Settings(database_url=url, group_commit=True))
    try:
        writer = ledger.recorder_.batch_writer
        assert writer is not None
        made = topic(Prediction.Made)
        state = os.urandom(700)  # about a one-row prediction's stored state
        writer.insert([StoredEvent(uuid.uuid4(), 1, made, state)])  # connects and prepares
        conn = writer._connection()  # the writer's own: autocommit, statements prepared
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        print("| batch | trigger | server CPU µs/row (median of rounds) |")
        print("|---:|---|---:|")
        for batch in batches:
            costs: dict[bool, list[float]] = {False: [], True: []}
            for round_ in range(rounds * 2):
                installed = round_ % 2 == 1
                with ledger.engine.begin() as ddl:
                    ddl.exec_driver_sql(f"DROP TRIGGER IF EXISTS {TRIGGER} ON ledger_events")
                    if installed:
                        create_notify_trigger(ddl)
                before = backend_cpu(pid)
                if batch == 0:
                    with conn.cursor() as cur:
                        cur.execute(BULK, (made, state, rows))
                for _ in range(rows // batch if batch else 0):
                    writer.insert([StoredEvent(uuid.uuid4(), 1, made, state) for _ in range(batch)])
                costs[installed].append((backend_cpu(pid) - before) / rows * 1e6)
            for installed in (False, True):
                median = statistics.median(costs[installed])
                label = "installed" if installed else "dropped"
                print(f"| {batch or 'all rows'} | {label} | {median:.1f} |")
    finally:
        ledger.close()
        drop_postgres_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    run(args.rows, args.batch or [0, 1, 32], args.rounds)


if __name__ == "__main__":
    main()
