"""One large ledger, built once, for the figures that need N events (default 1M) on PostgreSQL.

    .venv/bin/python -m bench.big_ledger [--events 1000000]

Builds the ledger of bench.rebuild (predictions by three models, outcomes, corrections,
30 days), then in the same run: raw read vs each projection's rebuild (bench.rebuild.report),
as_of vs now (bench.as_of's reads), provenance lookups (GET /v1/predictions/{id}, in-process,
auditor key) p50/p99, and the peak RSS of `ledger project --rebuild predictions` and
`ledger export` as child processes (os.wait4). Prints one JSON document on stdout's last line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.as_of import now_and_as_of_ms, reads
from bench.common import create_postgres_database, drop_postgres_database
from bench.rebuild import build_ledger, report
from ledger import log
from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from ledger.settings import Settings
from projections import events as ev
from projections.registry import ALL
from projections.runner import Runner
from tests.integration.api_support import make_api


def child(command: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Wall seconds, peak RSS (MiB) and exit status of one child process."""
    started = time.perf_counter()
    # Through /usr/bin/time: a child forked from this big process inherits its RSS high-water mark.
    process = subprocess.Popen(
        ["/usr/bin/time", "-f", "MAXRSS_KB %M", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a timeout kills the command too, not only /usr/bin/time
    )
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.2)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    peak = [int(line.split()[1]) for line in error.splitlines() if line.startswith("MAXRSS_KB ")]
    return {
        "wall_s": time.perf_counter() - started,
        "peak_rss_mib": peak[-1] / 1024 if peak else None,
        "exit": os.waitstatus_to_exitcode(status),
        "stderr_tail": error[-400:] if status else "",
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from api.cli import main; main()", *args]


def provenance_latency(ledger: Ledger, lookups: int) -> dict[str, float]:
    api = make_api(ledger)
    headers = {"Authorization": f"Bearer {api.keys['auditor']}"}
    with ledger.engine.connect() as conn:
        chosen = [
            str(r[0])
            for r in conn.exec_driver_sql(
                f"SELECT originator_id FROM {log.EVENTS.name} TABLESAMPLE BERNOULLI (5) REPEATABLE (1) "
                "WHERE topic = %(t)s LIMIT %(n)s",
                {"t": log.topic(Prediction.Made), "n": lookups + 20},
            )
        ]
    times = []
    for k, pid in enumerate(chosen):
        started = time.perf_counter()
        answer = api.client.simulate_get(f"/v1/predictions/{pid}", headers=headers)
        if k >= 20:  # the first ones warm caches and connections
            times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")
    ordered = sorted(times)
    return {
        "lookups": len(times),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
        "max_ms": ordered[-1],
    }


def as_of_figures(ledger: Ledger, head: int, repeat: int) -> list[dict[str, Any]]:
    out = []
    for name, read in reads(ledger.engine).items():
        for cut in (
            None,
            head // 2,
            head - 50,
        ):  # warm: the first read of each compiles its statements
            read(cut)
        now, middle, recent = now_and_as_of_ms(
            read, head, repeat
        )  # in turn: load changes fall on all three
        out.append(
            {
                "read": name,
                "now_ms": now,
                "as_of_middle_ms": middle,
                "as_of_recent_ms": recent,
                "worst_ratio": max(middle, recent) / now,
            }
        )
    return out


def run(events: int, lookups: int, repeat: int, only: str = "all") -> dict[str, Any]:
    url = create_postgres_database("ledger_bench_big")
    result: dict[str, Any] = {"events_requested": events}
    with tempfile.TemporaryDirectory() as home:
        ledger = Ledger(Settings(home=Path(home), database_url=url, group_commit=False))
        env = {**os.environ, "LEDGER_HOME": home, "LEDGER_DATABASE_URL": url}
        try:
            started = time.perf_counter()
            build_ledger(
                ledger, events, days=0
            )  # real times: an export covers a closed period up to now
            result["build_s"] = time.perf_counter() - started
            if (
                only == "provenance"
            ):  # iterate on the lookup without the rebuild, as_of and child parts
                with ledger.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
                result["provenance"] = provenance_latency(ledger, lookups)
                return result
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                report(
                    ledger, result["build_s"]
                )  # raw read vs every projection rebuilt beside its tables
            result["rebuild_report"] = printed.getvalue()
            for cls in ALL:
                Runner(ledger.engine, cls).catch_up()
            with ledger.engine.begin() as conn:
                conn.exec_driver_sql(
                    "ANALYZE"
                )  # what autovacuum does after a while (rebuilt tables included)
            with ledger.engine.connect() as conn:
                head = ev.head(conn)
            result["events"] = head
            result["as_of"] = as_of_figures(ledger, head, repeat)
            result["provenance"] = provenance_latency(ledger, lookups)
            result["rebuild_child"] = child(cli("project", "--rebuild", "predictions"), env, 1800)
            subprocess.run(cli("signing-key", "init"), env=env, capture_output=True, timeout=120)
            until = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
            time.sleep(1)
            result["export_child"] = child(
                cli(
                    "export",
                    "--from",
                    "2000-01-01",
                    "--to",
                    until,
                    "--format",
                    "jsonl",
                    "--out",
                    str(Path(home) / "exports"),
                ),
                env,
                900,
            )
        finally:
            ledger.close()
            drop_postgres_database(url)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--only",
        choices=["all", "provenance"],
        default="all",
        help="provenance: build, then only the provenance lookups",
    )
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.lookups, args.repeat, args.only)))


if __name__ == "__main__":
    main()
