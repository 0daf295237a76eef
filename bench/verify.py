"""Time the notary over N events: build the chain (advance), then verify it (database and wire).

    .venv/bin/python -m bench.verify --backend sqlite -n 200000
    .venv/bin/python -m bench.verify --backend postgres -n 1000000

Events go in through the recorder's lean insert path in batches (fabricated prediction-like
states of --state-bytes), so building a large ledger takes seconds, not the domain's minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from eventsourcing.persistence import StoredEvent

from bench.common import create_postgres_database, drop_postgres_database
from ledger import log, notary
from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from ledger.settings import Settings

TOPIC = log.topic(Prediction.Made)


def fabricate(count: int, state_bytes: int, start: int) -> list[StoredEvent]:
    padding = "x" * max(state_bytes - 120, 0)
    return [
        StoredEvent(
            uuid.uuid4(),
            1,
            TOPIC,
            json.dumps(
                {"request_id": f"r{start + i}", "features": {"f": padding}, "value": i}
            ).encode(),
        )
        for i in range(count)
    ]


def fill(ledger: Ledger, total: int, state_bytes: int, batch: int = 5000) -> float:
    started = time.perf_counter()
    for start in range(0, total, batch):
        ledger.recorder_.insert_now(fabricate(min(batch, total - start), state_bytes, start))
    return time.perf_counter() - started


def timed(label: str, count: int, run) -> object:
    started, cpu = time.perf_counter(), time.process_time()
    result = run()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    # CPU seconds of this process (all its threads): steadier than wall time on a shared machine.
    print(
        f"{label:<34} {seconds:8.2f} s wall {count / seconds:>10,.0f} events/s"
        f"   {cpu:7.2f} s CPU {count / cpu:>10,.0f} events/CPU-s"
    )
    return result


def wire_events(engine):
    # The auditor's path minus HTTP: JSON lines out, parsed back in.
    for event in notary.iter_raw_events(engine):
        yield json.loads(json.dumps(event))


def run(url: str, count: int, state_bytes: int, wire: bool) -> None:
    with tempfile.TemporaryDirectory() as home:
        ledger = Ledger(Settings(home=Path(home), database_url=url, group_commit=False))
        try:
            print(f"{url.split(':')[0]}: {count:,} events of ~{state_bytes} B state")
            print(
                f"{'insert (lean path, batches of 5000)':<34} {fill(ledger, count, state_bytes):8.2f} s"
            )
            engine = ledger.engine
            timed("advance (build the chain)", count, lambda: notary.advance(engine))
            report = timed(
                "verify from the database", count, lambda: notary.verify_database(engine)
            )
            assert report.ok and report.events == count, report.render()
            if wire:
                chain = list(notary.iter_chain_rows(engine))
                report = timed(
                    "verify from JSON lines (+ chain)",
                    count,
                    lambda: notary.verify_events(wire_events(engine), chain),
                )
                assert report.ok, report.render()
        finally:
            ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("-n", "--events", type=int, default=200_000)
    parser.add_argument("--state-bytes", type=int, default=600)
    parser.add_argument(
        "--wire", action="store_true", help="also time verification from the wire format"
    )
    args = parser.parse_args()
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            run(f"sqlite:///{directory}/bench.db", args.events, args.state_bytes, args.wire)
        return
    url = create_postgres_database("ledger_bench_verify")
    try:
        run(url, args.events, args.state_bytes, args.wire)
    finally:
        drop_postgres_database(url)


if __name__ == "__main__":
    main()
