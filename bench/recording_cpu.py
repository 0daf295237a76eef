"""API CPU per prediction: not recorded, recorded by a writer thread, by the writer process.

    .venv/bin/python -m bench.recording_cpu [--n 3000] [--threads 16] [--rounds 3]

In one process (a worker, without HTTP), `--threads` threads each call the product's
`serving.predict.predict` on PostgreSQL with fresh request ids; the baseline calls the same
`score_request` and answers without recording. The three modes run in turn, `--rounds`
times, on one database. Per prediction: this process's CPU (all its threads, the writer
thread included when there is one) and the writer process's (from /proc), and their
difference from the baseline: what recording costs the API process, the figure that a
shared, busy machine distorts least. Prints one JSON document on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import create_postgres_database, drop_postgres_database, process_cpu
from ledger.application import Ledger
from ledger.settings import Settings
from ledger.writer_process import WriterSupervisor
from serving.predict import predict, score_request, unrecorded_answer
from tests.integration.api_support import ROW, deployment_with_models, make_api

TICKS = os.sysconf("SC_CLK_TCK")
MODES = ("off", "thread", "process")


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def load(serving: Any, mode: str, n: int, threads: int, prefix: str) -> float:
    """n predictions from `threads` threads; wall seconds."""

    def worker(t: int) -> None:
        for i in range(t, n, threads):
            body = {"features": ROW, "request_id": f"{prefix}-{i}"}
            if mode == "off":
                unrecorded_answer(score_request(serving, "churn", body))
            else:
                predict(serving, "churn", body, "key:bench")

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for p in pool:
        p.start()
    for p in pool:
        p.join()
    return time.perf_counter() - started


def run(n: int, threads: int, rounds: int) -> dict[str, Any]:
    url = create_postgres_database("ledger_bench_recording_cpu")
    supervisor = None
    try:
        with tempfile.TemporaryDirectory() as home:
            ledger = Ledger(Settings(home=Path(home), database_url=url))
            api = make_api(ledger)
            deployment_with_models(api)
            serving = api.client.app.services.serving
            supervisor = WriterSupervisor(url)
            supervisor.start()
            recorder = ledger.recorder_
            samples: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
            for r in range(rounds + 1):  # round 0 warms every mode
                for mode in MODES if r % 2 else reversed(MODES):
                    recorder.close_writer()
                    if mode == "process":
                        recorder.enable_writer_process(supervisor.path)
                    else:
                        recorder.enable_group_commit(
                            max_events=ledger.settings.group_commit_max_events
                        )
                    writer_pid = supervisor.pid or 0
                    cpu, writer_cpu = process_cpu(), proc_cpu(writer_pid)
                    wall = load(serving, mode, n, threads, f"r{r}-{mode}")
                    if r:
                        samples[mode].append(
                            {
                                "api_cpu_us": 1e6 * (process_cpu() - cpu) / n,
                                "writer_process_cpu_us": 1e6
                                * (proc_cpu(writer_pid) - writer_cpu)
                                / n,
                                "per_s": n / wall,
                            }
                        )
            recorder.close_writer()
            ledger.close()
    finally:
        if supervisor is not None:
            supervisor.stop()
        drop_postgres_database(url)
    result: dict[str, Any] = {"n": n, "threads": threads, "rounds": rounds, "samples": samples}
    medians = {
        mode: {k: statistics.median(s[k] for s in samples[mode]) for k in samples[mode][0]}
        for mode in MODES
    }
    result["median"] = medians
    off = medians["off"]["api_cpu_us"]
    result["recording_api_cpu_us"] = {m: medians[m]["api_cpu_us"] - off for m in MODES[1:]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = run(args.n, args.threads, args.rounds)
    for mode, m in result["median"].items():
        print(
            f"{mode:8s} API CPU {m['api_cpu_us']:7.0f} µs/prediction, writer process "
            f"{m['writer_process_cpu_us']:5.0f} µs, {m['per_s']:6.0f}/s",
            file=sys.stderr,
        )
    for mode, extra in result["recording_api_cpu_us"].items():
        print(f"recording costs the API process ({mode} writer): {extra:.0f} µs", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
