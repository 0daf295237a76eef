"""CPU per scored request with the deployment watch and without it (a version read per request).

    python -m bench.deployment_cache [--n 2000] [--rounds 5]

One ledger with a two-model deployment; two Serving objects on it, one with
LEDGER_DEPLOYMENT_STALENESS_MS=0 (the version read on every request) and one with the
default (the watch), alternating rounds of `serving.predict.score_request` (validate and
score, no recording). This process's CPU (all threads, so the watch's own thread counts)
and wall time per request, and the version reads per request, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from bench.common import create_postgres_database, drop_postgres_database, process_cpu
from ledger.application import Ledger
from ledger.settings import Settings
from serving.predict import score_request
from serving.service import Serving
from tests.integration.api_support import ROW, deployment_with_models, make_api


def measure(url: str, n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), database_url=url)
        ledger = Ledger(settings)
        try:
            deployment_with_models(make_api(ledger))
            variants = {
                "version read per request": Serving.build(
                    ledger, replace(settings, deployment_staleness_ms=0)
                ),
                "watch": Serving.build(ledger, settings),
            }
            reads = dict.fromkeys(variants, 0)
            for label, serving in variants.items():
                read = serving.scorer.current_version

                def counted(name: str, label: str = label, read=read) -> int | None:  # noqa: ANN001
                    reads[label] += 1
                    return read(name)

                serving.scorer.current_version = counted  # type: ignore[method-assign]
                score_request(serving, "churn", {"features": ROW, "request_id": "warm"})
            time.sleep(settings.deployment_staleness_ms / 1000)  # the watch is up
            cpu: dict[str, list[float]] = {label: [] for label in variants}
            wall: dict[str, list[float]] = {label: [] for label in variants}
            reads = dict.fromkeys(variants, 0)
            for _ in range(rounds):
                for label, serving in variants.items():
                    body = {"features": ROW, "request_id": uuid.uuid4().hex}
                    started, cpu_started = time.perf_counter(), process_cpu()
                    for _ in range(n):
                        score_request(serving, "churn", body)
                    cpu[label].append((process_cpu() - cpu_started) / n * 1e6)
                    wall[label].append((time.perf_counter() - started) / n * 1e6)
            backend = url.split(":", 1)[0]
            for label in variants:
                print(
                    f"| {backend} | {label} | {statistics.median(cpu[label]):.0f} "
                    f"| {statistics.median(wall[label]):.0f} | {reads[label] / (n * rounds):.2f} |"
                )
            for serving in variants.values():
                serving.scorer.close()
        finally:
            ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| backend | deployment check | CPU µs/request | wall µs/request | reads/request |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        measure(f"sqlite:///{tmp}/bench.db", args.n, args.rounds)
    url = create_postgres_database("ledger_bench_cache")
    try:
        measure(url, args.n, args.rounds)
    finally:
        drop_postgres_database(url)


if __name__ == "__main__":
    main()
