"""Time one single-row prediction in-process (falcon TestClient), SQLite and PostgreSQL.

    .venv/bin/python -m bench.api_single_row [--n 500] [--profile]

Two models (logistic regression + decision tree, 6-feature schema with a personal field),
one predictor key; each request has a fresh request_id, so each records one event.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import create_postgres_database, drop_postgres_database
from ledger.application import Ledger
from ledger.settings import Settings
from tests.integration.api_support import ROW, deployment_with_models, make_api


def run(url: str, n: int, profile: bool) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory() as home:
        ledger = Ledger(Settings(home=Path(home), database_url=url))
        try:
            api = make_api(ledger)
            deployment_with_models(api)
            headers = {"Authorization": f"Bearer {api.keys['predictor']}"}
            post = api.client.simulate_post
            for i in range(50):  # warm caches: runtime, schemas, keys, connections
                post(
                    "/v1/deployments/churn/predictions",
                    headers=headers,
                    json={"features": ROW, "request_id": f"warm-{i}"},
                )
            profiler = cProfile.Profile() if profile else None
            times = []
            if profiler:
                profiler.enable()
            cpu_started = time.process_time()
            for i in range(n):
                started = time.perf_counter()
                result = post(
                    "/v1/deployments/churn/predictions",
                    headers=headers,
                    json={"features": ROW, "request_id": f"r-{i}"},
                )
                times.append(time.perf_counter() - started)
                assert result.status_code == 201, result.text
            cpu_per_request = (time.process_time() - cpu_started) / n
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            return times, cpu_per_request
        finally:
            ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as d:
                times, cpu = run(f"sqlite:///{d}/ledger.db", args.n, args.profile)
        else:
            url = create_postgres_database()
            try:
                times, cpu = run(url, args.n, args.profile)
            finally:
                drop_postgres_database(url)
        ms = sorted(t * 1000 for t in times)
        print(
            f"{backend}: n={len(ms)} median {statistics.median(ms):.2f} ms, "
            f"p90 {ms[int(len(ms) * 0.9)]:.2f} ms, p99 {ms[int(len(ms) * 0.99)]:.2f} ms, "
            f"CPU {cpu * 1000:.2f} ms a request (this process, all threads)"
        )


if __name__ == "__main__":
    main()
