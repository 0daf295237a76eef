"""A 10,000-row batch scored and recorded through the API, beside raw COPY of the same rows.

    .venv/bin/python -m bench.batch_copy [--rows 10000] [--repeat 3]

In-process (falcon TestClient: JSON body parsed, validated, scored by two models, personal
field sealed, recorded in one insert) on a fresh PostgreSQL database. The baseline copies
the very rows that batch stored (originator id, version, topic, state, recorded_at) with psycopg2's
COPY into a table shaped like the event table (same indexes), in the same run.
Prints one JSON document on stdout's last line. On a shared machine the wall figures
include waiting for a core; the CPU figures (this process, all threads) are steadier.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import create_postgres_database, drop_postgres_database
from ledger import log
from ledger.application import Ledger
from ledger.settings import Settings
from tests.integration.api_support import ROW, deployment_with_models, make_api


def rows(n: int) -> list[dict[str, Any]]:
    return [
        {**ROW, "age": 18.0 + i % 60, "income": 20_000.0 + 37 * i, "customer": f"c-{i % 5000}"}
        for i in range(n)
    ]


class GcClock:
    """CPU seconds the cyclic garbage collector takes while it is on (a batch allocates ~100 objects a row)."""

    def __init__(self) -> None:
        self.seconds, self._started = 0.0, 0.0

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self._tick)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._tick)

    def _tick(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started


def scored_batch(api: Any, body: list[dict[str, Any]], batch_id: str) -> tuple[float, float, float]:
    """(wall s, CPU s, garbage-collector CPU s) of one batch request."""
    headers = {"Authorization": f"Bearer {api.keys['predictor']}"}
    with GcClock() as collector:
        wall, cpu = time.perf_counter(), time.process_time()
        answer = api.client.simulate_post(
            "/v1/deployments/churn/predictions",
            headers=headers,
            json={"instances": body, "request_id": batch_id},
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if answer.status_code != 201:
        raise RuntimeError(answer.text[:500])
    return wall, cpu, collector.seconds


def head(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return log.head(conn)


def copy_rows(ledger: Ledger, after: int) -> tuple[float, float, int]:
    """(wall s, CPU s, rows) of COPYing the rows stored after `after` into a twin of the event table."""
    events = log.EVENTS.name  # the storage layer itself is what this measures
    with ledger.engine.begin() as conn:
        stored = conn.exec_driver_sql(
            f"SELECT originator_id, originator_version, topic, state, recorded_at FROM {events} "
            "WHERE id > %(a)s ORDER BY id",
            {"a": after},
        ).fetchall()
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS bench_copy (LIKE {events} INCLUDING ALL)")
    text = "".join(f"{r[0]}\t{r[1]}\t{r[2]}\t\\\\x{bytes(r[3]).hex()}\t{r[4]}\n" for r in stored)
    raw = ledger.engine.raw_connection()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        with raw.cursor() as cursor:
            cursor.copy_expert(
                "COPY bench_copy (originator_id, originator_version, topic, state, recorded_at) FROM STDIN",
                io.StringIO(text),
            )
        raw.commit()
        return time.perf_counter() - wall, time.process_time() - cpu, len(stored)
    finally:
        raw.close()


def run(n: int, repeat: int) -> dict[str, Any]:
    url = create_postgres_database("ledger_bench_batch")
    with tempfile.TemporaryDirectory() as home:
        ledger = Ledger(Settings(home=Path(home), database_url=url))
        try:
            api = make_api(ledger)
            deployment_with_models(api)
            scored_batch(api, rows(100), "warm")
            body = rows(n)
            ledger_runs, copy_runs = [], []
            for k in range(repeat):
                before = head(ledger)
                ledger_runs.append(scored_batch(api, body, f"b{k}"))
                copy_runs.append(copy_rows(ledger, before))
        finally:
            ledger.close()
            drop_postgres_database(url)
    wall = statistics.median(w for w, _, _ in ledger_runs)
    copy_wall = statistics.median(w for w, _, _ in copy_runs)
    return {
        "rows": n,
        "copied_rows": copy_runs[0][2],
        "ledger_rows_per_s": n / wall,
        "ledger_wall_s": wall,
        "ledger_cpu_s": statistics.median(c for _, c, _ in ledger_runs),
        "ledger_gc_s": statistics.median(g for _, _, g in ledger_runs),
        "copy_rows_per_s": n / copy_wall,
        "copy_wall_s": copy_wall,
        "copy_cpu_s": statistics.median(c for _, c, _ in copy_runs),
        "ratio": copy_wall / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.repeat)))


if __name__ == "__main__":
    main()
