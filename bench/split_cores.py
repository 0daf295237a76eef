"""Recording on vs off with the API on one core and PostgreSQL on the other, beside the HTTP floor.

    .venv/bin/python -m bench.split_cores [--seconds 15] [--clients 16 64] [--workers 2] [--threads 8]

bench.http_compare measures the API and PostgreSQL on the same two cores, so the API's cost
and the database's are mixed. Here a throwaway PostgreSQL 15 cluster (initdb into a
temporary directory, fsync on, its own port and socket directory, run as the `postgres`
user) runs on core 1; the three gunicorn servers, with http_compare's options, run on core
0 with their workers: `ledger serve` (recording), bench/unrecorded_app.py (the same app,
not recording) and bench/floor_app.py (bare Falcon: the HTTP floor). wrk runs beside the
database on core 1. The servers are loaded one at a time, alternately. Per request: the
API's CPU (master and workers) and the database's (every process of the cluster), from
/proc. The cluster is stopped and removed at the end, also on error or SIGTERM; one left by
a killed run (SIGKILL, as run_all's timeout sends) is removed by the next run.
Prints a summary on stderr and one JSON document on stdout's last line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.http_compare import (
    PREDICT,
    ROW,
    FloorServer,
    alternate,
    lua_script,
    made_events,
    pinned,
    start_beside,
    start_pair,
    summary,
    tree,
)
from tests.e2e.server import free_port

PG_BIN = Path(os.environ.get("LEDGER_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
API_CPUS, DATABASE_CPUS = "0", "1"
PREFIX = "ledger-bench-pg-"


class Cluster:
    """A PostgreSQL cluster of its own: data, socket and log in one temporary directory."""

    def __init__(self, root: Path, port: int, postmaster: int):
        self.root, self.port, self.postmaster = root, port, postmaster

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/ledger_bench"

    def pids(self) -> list[int]:
        """The postmaster and every process it started (backends, WAL writer, checkpointer...)."""
        return tree(self.postmaster)


def as_postgres(*command: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """initdb and pg_ctl refuse root: run them as the `postgres` user when we are root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *command], capture_output=True, text=True, **kwargs)


def remove_leftovers() -> None:
    """Clusters left by a run that was killed (SIGKILL skips every cleanup): stop and remove them."""
    for root in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        owner = root / "owner"
        try:
            os.kill(int(owner.read_text()), 0)
            continue  # its run is still going
        except (OSError, ValueError):
            pass
        stop(root)


def stop(root: Path) -> None:
    data = root / "data"
    if (data / "postmaster.pid").exists():
        done = as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate", "-w", timeout=60
        )
        if done.returncode:
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int((data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster(cpus: str = DATABASE_CPUS) -> Iterator[Cluster]:
    """A new PostgreSQL 15 cluster on `cpus`, fsync on, with an empty `ledger_bench` database."""
    remove_leftovers()
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    (root / "owner").write_text(str(os.getpid()))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        data, port = root / "data", free_port()
        # -N: initdb's own files are not flushed (they are thrown away); the server fsyncs.
        made = as_postgres(
            str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N"
        )
        if made.returncode:
            raise RuntimeError(f"initdb failed: {made.stderr[-1500:]}")
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
            "-c fsync=on -c synchronous_commit=on"
        )
        started = as_postgres(
            *pinned(cpus, [str(PG_BIN / "pg_ctl"), "-D", str(data)]),
            "-o",
            options,
            "-l",
            str(root / "postgres.log"),
            "-w",
            "-t",
            "120",
            "start",
            timeout=180,
        )
        if started.returncode:
            log = (root / "postgres.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"pg_ctl start failed: {started.stderr[-800:]} {log}")
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        pinned_to = subprocess.run(
            ["taskset", "-cp", str(postmaster)], capture_output=True, text=True
        ).stdout
        if not pinned_to.strip().endswith(cpus):
            raise RuntimeError(f"the postmaster is not on CPU {cpus}: {pinned_to}")
        cluster = Cluster(root, port, postmaster)
        import sqlalchemy as sa

        admin = sa.create_engine(
            cluster.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE ledger_bench")
        admin.dispose()
        yield cluster
    finally:
        stop(root)


def run(seconds: float, clients: list[int], workers: int, threads: int) -> dict[str, Any]:
    results: dict[str, Any] = {
        "workers": workers,
        "threads": threads,
        "seconds": seconds,
        "api_cpus": API_CPUS,
        "database_cpus": DATABASE_CPUS,
        "wrk_cpus": DATABASE_CPUS,
    }
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        servers = []
        try:
            on, off, key = start_pair(home, cluster.url, workers, threads, cpus=API_CPUS)
            servers += [on, off]
            floor = start_beside(
                FloorServer(home, cluster.url), home, workers, threads, {}, API_CPUS
            )
            servers.append(floor)
            script = lua_script(home, key, PREDICT, ROW)
            before = made_events(cluster.url)
            results["runs"] = alternate(
                {"floor": floor, "off": off, "on": on},
                script,
                clients,
                seconds,
                cluster.pids,
                DATABASE_CPUS,
            )
            results["made_events"] = made_events(cluster.url) - before
            results["on_ok_measured"] = sum(
                r["ok"] for r in results["runs"] if r["recording"] == "on"
            )
        finally:
            for server in servers:
                server.stop()
    return results


def floor_summary(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for n in sorted({r["clients"] for r in runs}):
        cpu = {
            label: [
                r["server_cpu_ms_per_request"]
                for r in runs
                if r["clients"] == n and r["recording"] == label
            ]
            for label in ("floor", "off")
        }
        lines.append(
            f"{n} clients: API CPU per request, not recording {statistics.median(cpu['off']):.3f} ms, "
            f"bare Falcon floor {statistics.median(cpu['floor']):.3f} ms (medians)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=8, help="per worker, as `ledger serve` defaults"
    )
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("two cores are needed: one for the API, one for PostgreSQL and wrk")

    def terminated(signum: int, frame: object) -> None:
        raise SystemExit(f"signal {signum}")  # so that the cluster's cleanup runs

    signal.signal(signal.SIGTERM, terminated)
    started = time.monotonic()
    results = run(args.seconds, args.clients, args.workers, args.threads)
    results["wall_s"] = time.monotonic() - started
    results["summary"] = summary(results["runs"]) + floor_summary(results["runs"])
    for line in results["summary"]:
        print(line, file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
