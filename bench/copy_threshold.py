"""The writer's two PostgreSQL inserts side by side: the unnest INSERT and binary COPY, by batch size.

    .venv/bin/python -m bench.copy_threshold [--sizes 10 30 100 300 1000] [--repeat 7]

One BatchWriter per path on a fresh PostgreSQL database inserts batches of stored events
the size of a recorded prediction (~1.4 kB), alternating which goes first. Prints, per size,
the median wall and writer-CPU milliseconds of each; `COPY_MIN_EVENTS` in
ledger/lean_insert.py is where COPY starts to win on both. JSON on stdout's last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from bench.common import create_postgres_database, drop_postgres_database
from ledger.application import Ledger
from ledger.domain.predictions import MADE_TOPIC
from ledger.lean_insert import BatchWriter
from ledger.settings import Settings

STATE = os.urandom(700).hex().encode()


def run(sizes: list[int], repeat: int) -> dict[str, Any]:
    url = create_postgres_database("ledger_bench_copy")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as home:
        ledger = Ledger(Settings(home=Path(home), database_url=url))
        try:
            writers = {
                "unnest": BatchWriter(ledger.engine, "bench", copy_min_events=2**62),
                "copy": BatchWriter(ledger.engine, "bench", copy_min_events=1),
            }
            for n in sizes:
                runs: dict[str, list[tuple[float, float]]] = {name: [] for name in writers}
                for r in range(repeat):
                    for name in sorted(writers, reverse=r % 2 == 1):
                        events = [StoredEvent(uuid.uuid4(), 1, MADE_TOPIC, STATE) for _ in range(n)]
                        wall, cpu = time.perf_counter(), time.process_time()
                        writers[name].insert(events)
                        runs[name].append((time.perf_counter() - wall, time.process_time() - cpu))
                out[str(n)] = {
                    name: {
                        "wall_ms": statistics.median(w for w, _ in timings) * 1e3,
                        "cpu_ms": statistics.median(c for _, c in timings) * 1e3,
                    }
                    for name, timings in runs.items()
                }
            for writer in writers.values():
                writer.close()
        finally:
            ledger.close()
            drop_postgres_database(url)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100, 300, 1000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    figures = run(args.sizes, args.repeat)
    for n, paths in figures.items():
        print(
            f"{n:>6} events: "
            + "  ".join(
                f"{name} {f['wall_ms']:.1f} ms wall, {f['cpu_ms']:.2f} ms cpu"
                for name, f in paths.items()
            )
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
