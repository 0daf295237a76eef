"""Shared bench helpers: time a run, and print figures beside their baselines as ratios."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple


class Rate(NamedTuple):
    """Items per second, and this process's CPU time per item (user + system, µs)."""

    per_second: float
    cpu_us: float


def process_cpu() -> float:
    """CPU seconds this process has used (all threads, user + system)."""
    t = os.times()
    return t.user + t.system


@dataclass
class Figure:
    """One measured figure, the baseline it is compared with, and its target ratio."""

    name: str
    value: float
    baseline_name: str = ""
    baseline: float | None = None
    target: str = ""
    cpu_us: float | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


def rate(count: int, run: Callable[[], object], repeat: int = 1) -> float:
    """Items per second for `run` (which handles `count` items); the median of `repeat` runs."""
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def print_table(title: str, figures: list[Figure]) -> None:
    """A Markdown table: figure, value, client CPU per item, baseline, ratio, target."""
    print(f"\n### {title}\n")
    print("| figure | /s | client CPU µs/item | baseline | baseline /s | ratio | target |")
    print("|---|---:|---:|---|---:|---:|---|")
    for f in figures:
        base = f"{f.baseline:,.0f}" if f.baseline else ""
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else ""
        cpu = f"{f.cpu_us:,.0f}" if f.cpu_us is not None else ""
        print(
            f"| {f.name} | {f.value:,.0f} | {cpu} | {f.baseline_name} | {base} | {ratio} | {f.target} |"
        )


PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def create_postgres_database(prefix: str = "ledger_bench") -> str:
    """A new empty PostgreSQL database for one bench run; drop it with drop_postgres_database."""
    import uuid

    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    engine.dispose()
