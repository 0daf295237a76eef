"""as_of versus current latency of the prediction index and performance reads.

    .venv/bin/python -m bench.as_of [--events 200000] [--repeat 20] [--days 30] [--database URL]

Builds the same ledger as bench.rebuild on PostgreSQL, projects it, then times each
read now and as of a past position (the middle of the log, and just before the head),
the three in turn (so a change in the machine's load falls on all three alike).
Target: as_of within 2x of the same read now.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import create_postgres_database, drop_postgres_database
from bench.rebuild import build_ledger
from ledger.application import Ledger
from ledger.settings import Settings
from projections import events as ev
from projections.query_performance import performance
from projections.query_predictions import list_predictions
from projections.registry import ALL
from projections.runner import Runner


def now_and_as_of_ms(read: Any, head: int, repeat: int) -> tuple[float, float, float]:
    """Medians of `read` now, as of the middle and as of head-50, timed in turn `repeat` times."""
    cuts, times = (None, head // 2, head - 50), ([], [], [])
    for _ in range(repeat):
        for cut, series in zip(cuts, times, strict=True):
            started = time.perf_counter()
            read(cut)
            series.append((time.perf_counter() - started) * 1000)
    now, middle, recent = (statistics.median(series) for series in times)
    return now, middle, recent


def reads(engine: Any, now_us: int | None = None) -> dict[str, Any]:
    """Each read as of a position (None: now). `now_us`: the instant a window ends at now (the
    ledger's last event when its clock runs ahead of the wall clock, so both windows hold data)."""
    return {
        "prediction index, 100 newest of the deployment": lambda p: list_predictions(
            engine, deployment="bench", limit=100, as_of=p
        ),
        "prediction index, feature.region=north": lambda p: list_predictions(
            engine, features={"region": "north"}, limit=100, as_of=p
        ),
        "prediction index, has_outcome=false": lambda p: list_predictions(
            engine, has_outcome=False, limit=100, as_of=p
        ),
        "performance, whole deployment": lambda p: performance(engine, "bench", as_of=p),
        "performance, slice=age, last 7 days": lambda p: performance(
            engine,
            "bench",
            slice_feature="age",
            window_days=7,
            as_of=p,
            now_us=None if p else now_us,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--days",
        type=int,
        default=30,
        help="days the ledger's clock spans (0: real time, every outcome in an hour or two)",
    )
    parser.add_argument(
        "--database", help="time the reads on this projected bench ledger (kept), build none"
    )
    args = parser.parse_args()
    url = args.database or create_postgres_database("ledger_bench_as_of")
    ledger = Ledger(Settings(home=Path("var/bench"), database_url=url, group_commit=False))
    try:
        if not args.database:
            build(ledger, args.events, args.days)
        with ledger.engine.connect() as conn:
            head = ev.head(conn)
            now_us = ev.recorded_at_of(conn, head)
        report(ledger.engine, head, now_us, args.repeat)
    finally:
        ledger.close()
        if not args.database:
            drop_postgres_database(url)


def build(ledger: Ledger, events: int, days: int) -> None:
    build_ledger(ledger, events, days=days)
    for cls in ALL:
        Runner(ledger.engine, cls).catch_up()
        with ledger.engine.begin() as conn:  # what autovacuum does after a while
            cls(1).analyze(conn)


def report(engine: Any, head: int, now_us: int, repeat: int) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n### as_of vs now on PostgreSQL, {head:,} events (median of {repeat}, ms; load {load})\n"
    )
    print("| read | now | as_of middle | ratio | as_of head-50 | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, read in reads(engine, now_us).items():
        for cut in (
            None,
            head // 2,
            head - 50,
        ):  # warm: the first read of each compiles its statements
            read(cut)
        now, middle, recent = now_and_as_of_ms(read, head, repeat)
        print(
            f"| {name} | {now:.1f} | {middle:.1f} | {middle / now:.2f}× | {recent:.1f} | {recent / now:.2f}× |"
        )


if __name__ == "__main__":
    main()
