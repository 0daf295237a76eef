"""Single-row predictions/s through a real gunicorn, loopback only, bounded in time.

    .venv/bin/python -m bench.http_load [--backend postgres|sqlite] [--seconds 10] [--clients 16]

Starts `ledger serve --demo` on a fresh database, then `clients` threads each send
single-row predictions (a fresh request_id each, so every request records one event)
for `seconds`, one connection per request (the server closes after each answer).
The load generator shares the machine's cores with the server: read the figure as a
floor, and compare runs made the same way.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.e2e.server import EXAMPLE_ROW, Server

PREDICT, HEALTHZ = "/v1/deployments/churn/predictions", "/healthz"
ROW = EXAMPLE_ROW


def client(
    port: int,
    key: str,
    name: str,
    until: float,
    latencies: list[float],
    errors: list[int],
    path: str,
) -> None:
    """Send requests until the deadline; record each latency (or the failing status)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    i = 0
    while time.perf_counter() < until:
        body = (
            json.dumps({"request_id": f"{name}-{i}", "features": ROW}) if path != HEALTHZ else None
        )
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST" if body else "GET", path, body, headers)
        status = connection.getresponse().status
        connection.close()
        (
            latencies.append(time.perf_counter() - started)
            if status in (200, 201)
            else errors.append(status)
        )
        i += 1


def load(
    server: Server, key: str, seconds: float, clients: int, path: str = PREDICT
) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(
            target=client,
            args=(server.port, key, f"c{n}-{seconds}", until, latencies, errors, path),
        )
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    return {
        "requests_per_s": len(latencies) / seconds,
        "ok": len(latencies),
        "errors": len(errors),
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        url = (
            fresh_postgres_database()
            if args.backend == "postgres"
            else f"sqlite:///{home}/ledger.db"
        )
        server = Server(Path(home), url)
        try:
            server.start("--demo", timeout=300)
            key = json.loads((Path(home) / "demo-keys.json").read_text())["predictor"]
            load(server, key, 2, args.clients)  # warm every worker's caches and connections
            figures = load(server, key, args.seconds, args.clients)
            # No switch turns recording off: the same HTTP stack answering /healthz (one
            # database read, no scoring, no write) is the ceiling beside it, in the same run.
            ceiling = load(server, key, args.seconds, args.clients, HEALTHZ)
        finally:
            server.stop()
            if args.backend == "postgres":
                drop_postgres_database(url)
    for name, numbers in (("predictions", figures), ("healthz", ceiling)):
        print(
            f"{args.backend} {name}, {args.clients} clients, {args.seconds:.0f} s, 2 gthread workers x 4 "
            "threads: " + ", ".join(f"{k}={v:.1f}" for k, v in numbers.items())
        )


if __name__ == "__main__":
    main()
