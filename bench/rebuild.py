"""Projection rebuild events/s on PostgreSQL beside a raw read of the same events.

    .venv/bin/python -m bench.rebuild [--events 1000000 | --quick] [--days 30] [--keep] [--url URL]
                                      [--only predictions]

Builds a ledger of N events (predictions scored by three models, outcomes for about
half of them arriving a few thousand events later, 2% corrected, spread over 30 days),
then in the same run reads every event raw (Core query in id order, pages of 1,000,
orjson decode), reads them through the library (notification log + mapper) on a
sample, and rebuilds each projection beside its live tables. Prints events/s, the
ratios, and peak RSS.
"""

from __future__ import annotations

import argparse
import collections
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import Figure, create_postgres_database, drop_postgres_database, print_table
from ledger import log
from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from ledger.settings import Settings
from projections import events as ev
from projections.registry import ALL
from projections.runner import Runner

PROFILE = {
    "features": {
        "age": {"quantiles": {"0.2": 25.0, "0.4": 35.0, "0.6": 45.0, "0.8": 60.0}},
        "income": {"quantiles": [0, 20000, 40000, 60000, 90000, 200000]},
    }
}
SCHEMA = {
    "features": [
        {"name": "region", "type": "category"},
        {"name": "plan", "type": "category"},
        {"name": "age", "type": "number"},
        {"name": "income", "type": "number"},
        {"name": "active", "type": "boolean"},
    ]
}


def build_ledger(ledger: Ledger, events: int, seed: int = 0, days: float = 30) -> list[str]:
    """Append about `events` events; returns the model ids."""
    rng = random.Random(seed)
    ledger.create_deployment(
        name="bench",
        task="classification",
        schema=SCHEMA,
        policy={"name": "manual"},
        positive_label=1,
        outcome_maturity_days=1,
        actor="bench",
    )
    models = [_model(ledger, i) for i in range(3)]
    deployment = ledger.deployment("bench")
    waiting: collections.deque[Prediction] = collections.deque()
    written, batch, step_us = 0, 1000, int(days * 86_400e6 / max(events, 1) * 1000)
    while written < events:
        fresh = [_prediction(rng, deployment, models, written + i) for i in range(batch // 2)]
        answered = []
        while waiting and len(answered) < batch // 2 and len(waiting) > 3000:
            p = waiting.popleft()
            p.record_outcome(rng.randint(0, 1), None, "key:bench")
            if rng.random() < 0.02:
                p.record_outcome(rng.randint(0, 1), None, "key:bench")  # a correction
            answered.append(p)
        waiting.extend(p for p in fresh if rng.random() < 0.55)
        ledger.save(*fresh, *answered)
        written += len(fresh) + sum(len(p.outcomes) for p in answered)
        _advance(ledger, step_us)
    return models


def _model(ledger: Ledger, i: int) -> str:
    run = ledger.start_training(
        spec_name="bench",
        spec={},
        deployment="bench",
        dataset_ids={},
        features=["region", "age"],
        target="y",
        algorithm="lr",
        params={"C": i},
        code_version={},
        trigger=None,
        actor="bench",
    )
    model = {
        "name": f"m{i}",
        "artifact_digest": f"{i:064x}",
        "features": ["region", "age"],
        "algorithm": "lr",
        "task": "classification",
        "classes": [0, 1],
        "actor": "bench",
    }
    model_id = ledger.finish_training(
        run,
        model,
        metrics={},
        artifact_digest=model["artifact_digest"],
        reference_profile=PROFILE,
        trained_subjects=None,
        actor="bench",
    )
    ledger.add_model("bench", model_id, actor="bench")
    return str(model_id)


def _prediction(rng: random.Random, deployment: Any, models: list[str], i: int) -> Prediction:
    features = {
        "region": rng.choice(["north", "south", "east", "west"]),
        "plan": rng.choice(["a", "b", "c"]),
        "age": round(rng.uniform(18, 80), 1),
        "income": round(rng.uniform(5000, 150000), 2),
        "active": rng.random() < 0.5,
    }
    outputs = {
        m: {"value": rng.randint(0, 1), "probabilities": {"0": 0.4, "1": 0.6}} for m in models
    }
    return Prediction(
        deployment="bench",
        deployment_version=deployment.version,
        request_id=f"r{i}",
        body_digest="d" * 64,
        features=features,
        sealed=None,
        outputs=outputs,
        served_model=models[0],
        policy={"name": "manual"},
        leader=models[0],
        flags=["range"] if rng.random() < 0.05 else [],
        scoring={"mode": "single"},
        actor="key:bench",
    )


def _advance(ledger: Ledger, micros: int) -> None:
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE ledger_clock SET last_us = last_us + {micros}")


def raw_read(ledger: Ledger, decode: bool = True) -> int:
    """Every event in id order, pages of 1,000, as a projection reads them."""
    count, position = 0, 0
    with ledger.engine.connect() as conn:
        top = ev.head(conn)
        while position < top:
            rows, position = log.raw_page(conn, position, top, 1000)
            if decode:
                for row in rows:
                    orjson.loads(row[4])
            count += len(rows)
    return count


def library_read(ledger: Ledger, limit: int) -> int:
    """The library's path: notification log pages, each mapped to a domain event."""
    count, start = 0, 1
    while count < limit:
        notifications = ledger.recorder.select_notifications(start, 1000)
        if not notifications:
            break
        for n in notifications:
            ledger.mapper.to_domain_event(n)
        count += len(notifications)
        start = notifications[-1].id + 1
    return count


def timed(run: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = run()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 events")
    parser.add_argument(
        "--days", type=float, default=30, help="0: real time (every outcome within an hour or two)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    parser.add_argument("--url", help="reuse a ledger kept by --keep (not built, not dropped)")
    parser.add_argument("--only", help="rebuild only this projection")
    args = parser.parse_args()
    events = 50_000 if args.quick else args.events
    url = args.url or create_postgres_database("ledger_bench_rebuild")
    ledger = Ledger(Settings(home=Path("var/bench"), database_url=url, group_commit=False))
    try:
        build_s = (
            0.0 if args.url else timed(lambda: build_ledger(ledger, events, days=args.days))[1]
        )
        report(ledger, build_s, args.only)
    finally:
        ledger.close()
        if args.keep or args.url:
            print(f"\nkept {url}", file=sys.stderr)
        else:
            drop_postgres_database(url)


def report(ledger: Ledger, build_s: float, only: str | None = None) -> None:
    with ledger.engine.connect() as conn:
        total = ev.head(conn)
    print(f"ledger: {total:,} events built in {build_s:.0f} s")
    read_count, read_s = timed(lambda: raw_read(ledger))
    bare_count, bare_s = timed(lambda: raw_read(ledger, decode=False))
    sample = min(total, 100_000)
    lib_count, lib_s = timed(lambda: library_read(ledger, sample))
    raw_rate = read_count / read_s
    figures = [
        Figure("raw read + orjson decode", raw_rate),
        Figure("raw read, no decode", bare_count / bare_s),
        Figure(
            f"library read + mapper ({lib_count:,} events)",
            lib_count / lib_s,
            "raw read + decode",
            raw_rate,
        ),
    ]
    rebuild_s = 0.0
    for cls in [c for c in ALL if only in (None, c.name)]:
        _, seconds = timed(lambda cls=cls: Runner(ledger.engine, cls).rebuild())
        rebuild_s += seconds
        figures.append(
            Figure(
                f"rebuild {cls.name} ({seconds:.1f} s)",
                total / seconds,
                "raw read + decode",
                raw_rate,
                "≥ 0.5×" if cls.name == "predictions" else "",
            )
        )
    figures.append(
        Figure(
            f"rebuild all, one after another ({rebuild_s:.1f} s)",
            total / rebuild_s,
            "raw read + decode",
            raw_rate,
        )
    )
    print_table(f"Rebuild on PostgreSQL, {total:,} events", figures)
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
