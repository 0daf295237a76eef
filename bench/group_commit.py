"""Recorded predictions/s through the group-commit path, beside raw inserts of the same rows.

    .venv/bin/python -m bench.group_commit [--callers 1 8 32] [--seconds 3] [--backends postgres sqlite]

Each caller is a thread that builds one realistic Prediction and calls
Ledger.record_predictions([it]), as an API worker does for a single-row request. The
baselines insert the same stored rows in the same run: raw psycopg2 execute_values (or
sqlite3 executemany) in transactions of as many rows as there are callers, and the
library's own insert path (eventsourcing-sqlalchemy's ORM recorder, one save a caller).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    Figure,
    Rate,
    create_postgres_database,
    drop_postgres_database,
    print_table,
    process_cpu,
)
from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from ledger.settings import Settings

REGIONS = ("north", "south", "east", "west")
PLANS = ("basic", "plus", "pro")
MODELS = ("7d6f3c1e-1111-4a4b-9c2d-000000000001", "7d6f3c1e-1111-4a4b-9c2d-000000000002")


def scored_row(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """30 features as a request sends them, and two models' outputs for them."""
    features: dict[str, Any] = {f"x{i:02d}": round(rng.gauss(0, 1), 6) for i in range(26)}
    features.update(
        region=rng.choice(REGIONS),
        plan=rng.choice(PLANS),
        tenure=rng.randint(0, 120),
        subject_id=None,
    )
    p = rng.random()
    outputs = {m: {"value": int(p > 0.5), "probabilities": {"0": 1 - p, "1": p}} for m in MODELS}
    return features, outputs


# Parsing and scoring are the API's cost, not the ledger's: draw rows from a pool.
ROWS = [scored_row(random.Random(seed)) for seed in range(256)]


def make_prediction(request_id: str, rng: random.Random) -> Prediction:
    """A prediction as the API records it: 30 features, two models' outputs, flags, scoring."""
    features, outputs = ROWS[rng.randrange(len(ROWS))]
    return Prediction(
        deployment="churn",
        deployment_version=3,
        request_id=request_id,
        body_digest=hashlib.sha256(request_id.encode()).hexdigest(),
        features=features,
        sealed=None,
        outputs=outputs,
        served_model=MODELS[0],
        policy={"name": "manual"},
        leader=MODELS[0],
        flags=[],
        scoring={"mode": "alone"},
        actor="key:bench01",
    )


def run_callers(callers: int, seconds: float, call: Callable[[int, int], None]) -> Rate:
    """Calls/s from `callers` threads that each call `call(thread, n)` until time is up."""
    stop = time.perf_counter() + seconds
    counts = [0] * callers
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            while time.perf_counter() < stop:
                call(index, counts[index])
                counts[index] += 1
        except BaseException as error:  # surface in the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(callers)]
    started, cpu = time.perf_counter(), process_cpu()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    done = max(sum(counts), 1)
    return Rate(done / (time.perf_counter() - started), (process_cpu() - cpu) / done * 1e6)


def ledger_rate(url: str, callers: int, seconds: float, group_commit: bool = True) -> Rate:
    """Recorded predictions/s through Ledger.record_predictions, one prediction a call."""
    with tempfile.TemporaryDirectory() as home:
        ledger = Ledger(Settings(home=home, database_url=url, group_commit=group_commit))
        rngs = [random.Random(i) for i in range(callers)]
        try:

            def call(thread: int, n: int) -> None:
                ledger.record_predictions([make_prediction(f"r{thread}-{n}", rngs[thread])])

            return run_callers(callers, seconds, call)
        finally:
            ledger.close()


def _process_rate(url: str, callers: int, seconds: float, start: Any, out: Any) -> None:
    start.wait()
    out.put(tuple(ledger_rate(url, callers, seconds)))


def processes_rate(url: str, processes: int, callers: int, seconds: float) -> Rate:
    """Predictions/s from `processes` worker processes with `callers` threads each, summed."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")  # like gunicorn: workers forked from one master
    start, out = ctx.Event(), ctx.Queue()
    Ledger(
        Settings(home=tempfile.mkdtemp(), database_url=url)
    ).close()  # tables exist before the race
    workers = [
        ctx.Process(target=_process_rate, args=(url, callers, seconds, start, out))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    start.set()
    rates = [Rate(*out.get(timeout=seconds + 120)) for _ in workers]
    for w in workers:
        w.join()
    total = sum(r.per_second for r in rates)
    return Rate(total, sum(r.per_second * r.cpu_us for r in rates) / total)


def stored_rows(count: int) -> list[tuple[str, int, str, bytes]]:
    """The same rows the ledger stores, encoded by the ledger's own mapper."""
    with tempfile.TemporaryDirectory() as home:
        ledger = Ledger(Settings(home=home, database_url=f"sqlite:///{home}/m.db"))
        rng = random.Random(0)
        rows = []
        for n in range(count):
            event = make_prediction(f"raw-{n}", rng).collect_events()[0]
            s = ledger.mapper.to_stored_event(event)
            rows.append((str(s.originator_id), s.originator_version, s.topic, s.state))
        ledger.close()
    return rows


RAW_TABLE = (
    "CREATE TABLE raw_events (id {serial} PRIMARY KEY, originator_id {uuid} NOT NULL, "
    "originator_version INTEGER NOT NULL, topic TEXT NOT NULL, state {bytes}, recorded_at BIGINT)"
)


def raw_postgres_rate(url: str, rows: list[tuple], batch: int) -> float:
    """Rows/s with execute_values, `batch` rows a transaction (the best a batch can do)."""
    import psycopg2
    from psycopg2.extras import execute_values

    conn = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
    with conn, conn.cursor() as cur:
        cur.execute(RAW_TABLE.format(serial="BIGSERIAL", uuid="UUID", bytes="BYTEA"))
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        with conn, conn.cursor() as cur:
            execute_values(
                cur,
                "INSERT INTO raw_events (originator_id, originator_version, topic, "
                "state, recorded_at) VALUES %s RETURNING id",
                [r + (0,) for r in rows[i : i + batch]],
                page_size=batch,
                fetch=True,
            )
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


def raw_sqlite_rate(path: str, rows: list[tuple], batch: int) -> float:
    """Rows/s with sqlite3 executemany, `batch` rows a transaction, WAL and synchronous=FULL."""
    import sqlite3
    import uuid

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(RAW_TABLE.format(serial="INTEGER", uuid="BLOB", bytes="BLOB"))
    data = [(uuid.UUID(r[0]).bytes, r[1], r[2], r[3], 0) for r in rows]
    started = time.perf_counter()
    for i in range(0, len(data), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO raw_events (originator_id, originator_version, topic, state, "
            "recorded_at) VALUES (?, ?, ?, ?, ?)",
            data[i : i + batch],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(data) / elapsed


def library_rate(url: str, callers: int, seconds: float) -> Rate:
    """Predictions/s through eventsourcing-sqlalchemy's own recorder, one save a call."""
    from eventsourcing.application import Application

    class Plain(Application):
        env = {
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": url,
            "SQLALCHEMY_POOL_SIZE": str(max(callers, 5)),
        }

    app = Plain()
    rngs = [random.Random(i) for i in range(callers)]
    try:

        def call(thread: int, n: int) -> None:
            app.save(make_prediction(f"lib{thread}-{n}", rngs[thread]))

        return run_callers(callers, seconds, call)
    finally:
        app.close()


def in_database(backend: str, measure: Callable[[str], Any]) -> Any:
    """Run `measure` against a fresh database of the backend, then drop it."""
    if backend == "postgres":
        url = create_postgres_database()
        try:
            return measure(url)
        finally:
            drop_postgres_database(url)
    with tempfile.TemporaryDirectory() as tmp:
        return measure(f"sqlite:///{os.path.join(tmp, 'bench.db')}")


def bench_backend(
    backend: str, callers_list: list[int], seconds: float, rows: list[tuple], with_library: bool
) -> list[Figure]:
    figures = []
    for callers in callers_list:
        value, cpu = in_database(backend, lambda url, c=callers: ledger_rate(url, c, seconds))
        if backend == "postgres":
            raw = in_database(backend, lambda url, c=callers: raw_postgres_rate(url, rows, c))
            raw_name = f"raw execute_values, {callers} rows/txn"
        else:
            raw = in_database(backend, lambda url, c=callers: raw_sqlite_rate(url[10:], rows, c))
            raw_name = f"raw executemany, {callers} rows/txn"
        figures.append(
            Figure(
                f"{backend}: group commit, {callers} callers",
                value,
                raw_name,
                raw,
                "≥ 5,000/s at 32 (PostgreSQL)" if backend == "postgres" and callers == 32 else "",
                cpu,
            )
        )
        if (
            with_library and backend == "postgres"
        ):  # on SQLite its threads fail with "database is locked"
            lib, lib_cpu = in_database(
                backend, lambda url, c=callers: library_rate(url, c, seconds)
            )
            figures.append(
                Figure(
                    f"{backend}: library ORM path, {callers} callers",
                    lib,
                    "group commit",
                    value,
                    cpu_us=lib_cpu,
                )
            )
    return figures


def bench_splits(splits: list[str], seconds: float) -> list[Figure]:
    """Worker processes × threads on PostgreSQL, each figure beside one process with all threads."""
    figures = []
    for split in splits:
        processes, threads = (int(n) for n in split.split("x"))
        value, cpu = in_database(
            "postgres", lambda url, p=processes, t=threads: processes_rate(url, p, t, seconds)
        )
        single, _ = in_database(
            "postgres", lambda url, c=processes * threads: ledger_rate(url, c, seconds)
        )
        figures.append(
            Figure(
                f"postgres: {processes} processes × {threads} threads",
                value,
                f"1 process × {processes * threads} threads",
                single,
                cpu_us=cpu,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--backends", nargs="+", default=["postgres", "sqlite"])
    parser.add_argument("--raw-rows", type=int, default=8000)
    parser.add_argument("--no-library", action="store_true", help="skip the library's ORM path")
    parser.add_argument(
        "--splits",
        nargs="*",
        default=[],
        metavar="PxT",
        help="also measure P worker processes × T threads on PostgreSQL, e.g. 2x8 2x16",
    )
    args = parser.parse_args()
    rows = stored_rows(args.raw_rows)
    for backend in args.backends:
        figures = bench_backend(backend, args.callers, args.seconds, rows, not args.no_library)
        print_table(
            f"{backend}: recorded predictions/s ({args.seconds:g} s a figure, {os.cpu_count()} cores)",
            figures,
        )
    if args.splits:
        print_table(
            "PostgreSQL: processes × threads (gunicorn gthread workers)",
            bench_splits(args.splits, args.seconds),
        )


if __name__ == "__main__":
    main()
