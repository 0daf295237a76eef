"""Single-row predictions/s through gunicorn with recording on and off, loaded by wrk.

    .venv/bin/python -m bench.http_compare [--seconds 15] [--clients 16 64] [--workers 2] [--threads 8]
        [--profile DIR] [--env NAME=VALUE ...]

One PostgreSQL database (fsync on), two gunicorn servers on it with the same options: one
is `ledger serve` (the product, recording), the other serves bench/unrecorded_app.py (the
baseline: the product's app, same models, same validation and scoring, no recording). They are loaded one at a time, alternately, by wrk
(Debian's; a Lua script gives every request a fresh request_id, so every recorded
request appends one event). Server CPU per request comes from /proc (master + workers),
the steadier signal on a shared machine, beside PostgreSQL's (this database's backends and
the WAL writer), how busy the whole machine was, and the mean callers per group commit.
Prints a summary on stderr and one JSON document on stdout's last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import create_postgres_database, drop_postgres_database
from tests.e2e.server import EXAMPLE_ROW, REPO, Server

PREDICT = "/v1/deployments/churn/predictions"
ROW = EXAMPLE_ROW
TICKS = os.sysconf("SC_CLK_TCK")

LUA = r"""
-- thread_id is a global: setup() sets it in each thread's own Lua state (a local would shadow it)
counter, thread_id, next_thread = 0, 0, 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end
function init(args)
  RUN = args[1] or RUN  -- a fresh prefix per wrk run: request ids never repeat across runs
end
function request()
  counter = counter + 1
  local body = string.format('{"request_id":"%s-%d-%d","features":%s}', RUN, thread_id, counter, ROW)
  return wrk.format("POST", PATH, HEADERS, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


class FlaggedServer(Server):
    """A Server whose environment adds the given variables, whose log is its own, and whose
    processes (master and workers, which inherit the affinity) run on `cpus` when set."""

    extra_env: dict[str, str] = {}
    name: str = "server"
    cpus: str | None = None

    def command(self, *extra: str) -> list[str]:
        return pinned(self.cpus, self.served(*extra))

    def served(self, *extra: str) -> list[str]:
        return Server.command(self, *extra)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.extra_env}

    @property
    def log(self) -> Path:
        return self.home / f"{self.name}.log"


class UnrecordedServer(FlaggedServer):
    """The baseline: gunicorn with deploy/gunicorn.conf.py on bench.unrecorded_app's app."""

    name = "off"
    app = "bench.unrecorded_app:wsgi()"

    @property
    def env(self) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        return {**super().env, "PYTHONPATH": path}  # it starts in its home, not in the repository

    def served(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(REPO / "deploy" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            *extra,
            self.app,
        ]


class FloorServer(UnrecordedServer):
    """The HTTP floor: bench.floor_app (bare Falcon) under the same gunicorn options."""

    name = "floor"
    app = "bench.floor_app:wsgi()"


def pinned(cpus: str | None, command: list[str]) -> list[str]:
    """The command run on these CPUs only (taskset's list syntax), or as it is."""
    return ["taskset", "-c", cpus, *command] if cpus else command


def lua_script(directory: Path, key: str, path: str, row: dict[str, Any]) -> Path:
    headers = '{["Authorization"]="Bearer ' + key + '", ["Content-Type"]="application/json"}'
    prelude = (
        f'RUN = "{uuid.uuid4().hex[:12]}"\nPATH = "{path}"\nHEADERS = {headers}\n'
        f"ROW = [==[{json.dumps(row)}]==]\n"
    )
    script = directory / f"post-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(prelude + LUA)
    return script


def wrk(
    url: str, script: Path, clients: int, seconds: float, cpus: str | None = None
) -> dict[str, float]:
    """One wrk run (on `cpus` when set): requests/s, latency percentiles (ms), errors."""
    command = [
        "wrk",
        "-t",
        "2",
        "-c",
        str(clients),
        "-d",
        f"{seconds:.0f}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        uuid.uuid4().hex[:12],
    ]
    done = subprocess.run(
        pinned(cpus, command), capture_output=True, text=True, timeout=seconds + 60
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")]
    if not lines:
        raise RuntimeError(f"wrk gave no figures: {done.stdout[-500:]} {done.stderr[-500:]}")
    line = lines[0]
    raw = json.loads(line[len("WRKJSON ") :])
    ok = raw["requests"] - raw["status"]
    return {
        "requests_per_s": ok / (raw["duration_us"] / 1e6),
        "ok": ok,
        "errors": raw["status"] + raw["connect"] + raw["timeout"],
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
    }


def tree(pid: int) -> list[int]:
    """The process and its children (gunicorn master and workers)."""
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split()
    return [pid] + [p for c in children for p in tree(int(c))]


def is_writer_process(pid: int) -> bool:
    try:
        return b"ledger.writer_process" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def cpu_seconds(pids: list[int]) -> float:
    """CPU these processes used, and the children each has reaped (a backend or autovacuum
    worker that ends during a run still counts: its parent holds its time)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICKS


def rss_mib(pid: int) -> dict[str, float]:
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return {k: int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


def core_ticks() -> list[tuple[int, int]]:
    """(busy, total) CPU ticks of each core, from /proc/stat."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines()[1:]:
        if not line.startswith("cpu"):
            break
        fields = [int(x) for x in line.split()[1:]]
        out.append((sum(fields) - fields[3] - fields[4], sum(fields)))
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def postgres_pids(url: str) -> list[int]:
    """This database's backends and PostgreSQL's WAL writer: the database side of a prediction."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                int(p)
                for p in conn.exec_driver_sql(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "OR backend_type = 'walwriter'"
                ).scalars()
            ]
    finally:
        engine.dispose()


def measured(
    server: Server,
    script: Path,
    clients: int,
    seconds: float,
    database: Callable[[], list[int]],
    cpus: str | None = None,
) -> dict[str, Any]:
    """One wrk run; the server's and the database's CPU per answered request, from /proc.

    `database` lists the database's processes, before the run and again after it (a process
    started during the run counts whole); `cpus`, where wrk runs.
    """
    pids, database_pids = tree(server.process.pid), database()
    writer = [p for p in pids if is_writer_process(p)]
    cpu, db_cpu, (busy, total) = cpu_seconds(pids), cpu_seconds(database_pids), machine_ticks()
    writer_cpu = cpu_seconds(writer)
    cores = core_ticks()
    result: dict[str, Any] = {**wrk(server.url + PREDICT, script, clients, seconds, cpus)}
    ok = max(result["ok"], 1)
    result["server_cpu_ms_per_request"] = 1000 * (cpu_seconds(pids) - cpu) / ok
    # Of which the writer process's (ledger/writer_process.py): the rest is the workers' own.
    result["writer_cpu_ms_per_request"] = 1000 * (cpu_seconds(writer) - writer_cpu) / ok
    # Pooled and writer connections live on; on a shared cluster a backend that ends during the
    # run takes its time with it (its parent, the postmaster, is not listed there).
    result["postgres_cpu_ms_per_request"] = 1000 * (cpu_seconds(database()) - db_cpu) / ok
    busy2, total2 = machine_ticks()
    result["machine_busy_share"] = (busy2 - busy) / max(total2 - total, 1)
    result["core_busy_share"] = [
        (b2 - b1) / max(t2 - t1, 1) for (b1, t1), (b2, t2) in zip(cores, core_ticks(), strict=True)
    ]
    return result


def alternate(
    servers: dict[str, Server],
    script: Path,
    clients: list[int],
    seconds: float,
    database: Callable[[], list[int]],
    cpus: str | None = None,
    rounds: int = 2,
) -> list[dict[str, Any]]:
    """Every server loaded in turn, `rounds` times per client count, after a warm-up of each.

    Alternating spreads what else the machine does over every server alike.
    """
    # Warm: runtimes, schemas, key caches, connections in every worker and thread. Too short
    # a warm-up left the first measured run paying start-up costs (seconds at p99).
    for _ in range(2):
        for server in servers.values():
            wrk(server.url + PREDICT, script, max(clients), 4, cpus)
    return [
        {
            "recording": label,
            "clients": n,
            **measured(server, script, n, seconds, database, cpus),
        }
        for n in clients
        for _ in range(rounds)
        for label, server in servers.items()
    ]


def profile(
    server: Server, seconds: float, script: Path, clients: int, out: Path, gil: bool = False
) -> str | None:
    """py-spy on one worker while wrk loads the server: the collapsed stacks file.

    With `gil`, only the thread holding the GIL is sampled: where the worker's Python CPU goes.
    """
    spy = shutil.which("py-spy") or str(Path(os.sys.executable).with_name("py-spy"))
    worker = tree(server.process.pid)[-1]
    out.parent.mkdir(parents=True, exist_ok=True)
    recorder = subprocess.Popen(
        [
            spy,
            "record",
            "-r",
            "200",
            "-d",
            f"{seconds:.0f}",
            "-f",
            "raw",
            "-o",
            str(out),
            "-p",
            str(worker),
            "--nonblocking",
            *(["--gil"] if gil else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wrk(server.url + PREDICT, script, clients, seconds)
    _, err = recorder.communicate(timeout=60)
    return str(out) if out.exists() else f"py-spy failed: {err.strip()[-300:]}"


def callers_per_commit(server: Server, keys: dict[str, str]) -> float | None:
    """Mean callers per group commit over the whole run, from the recording server's /metrics."""
    import urllib.request

    request = urllib.request.Request(
        server.url + "/metrics", headers={"Authorization": f"Bearer {keys['admin']}"}
    )
    try:
        text = urllib.request.urlopen(request, timeout=30).read().decode()
    except OSError:
        return None
    values = {
        name: float(value)
        for name, value in (
            line.split()[:2]
            for line in text.splitlines()
            if line.startswith("ledger_group_commit_batch_callers_") and not line.startswith("#")
        )
        if not name.endswith("_bucket")
    }
    count = values.get("ledger_group_commit_batch_callers_count")
    return values.get("ledger_group_commit_batch_callers_sum", 0) / count if count else None


def made_events(url: str) -> int:
    import sqlalchemy as sa

    from ledger import log
    from ledger.domain.predictions import Prediction

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return log.count(conn, [Prediction.Made])
    finally:
        engine.dispose()


def start_pair(
    home: Path,
    url: str,
    workers: int,
    threads: int,
    env: dict[str, str] | None = None,
    cpus: str | None = None,
) -> tuple[Server, Server, str]:
    """The recording server (which creates the demo) and the unrecorded baseline, on one database and home.

    One home: API keys and the privacy master key live there; each keeps its own metrics directory.
    """
    on = FlaggedServer(home, url)
    on.name = "on"
    start_beside(on, home, workers, threads, env, cpus, "--demo")
    try:
        key = json.loads((home / "demo-keys.json").read_text())["predictor"]
        off = start_beside(UnrecordedServer(home, url), home, workers, threads, env, cpus)
    except BaseException:  # the caller never sees `on`: stop it here
        on.stop()
        raise
    return on, off, key


def start_beside(
    server: FlaggedServer,
    home: Path,
    workers: int,
    threads: int,
    env: dict[str, str] | None,
    cpus: str | None,
    *extra: str,
) -> FlaggedServer:
    """Start one of the compared servers with the options all of them share."""
    server.cpus = cpus
    server.extra_env = {
        **(env or {}),
        "PROMETHEUS_MULTIPROC_DIR": str(home / f"metrics-{server.name}"),
    }
    server.start(*extra, "--workers", str(workers), "--threads", str(threads), timeout=600)
    return server


def run(
    seconds: float,
    clients: list[int],
    workers: int,
    threads: int,
    profile_dir: Path | None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    url = create_postgres_database("ledger_bench_http")
    results: dict[str, Any] = {
        "workers": workers,
        "threads": threads,
        "seconds": seconds,
        "env": env or {},
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        on = off = None
        try:
            on, off, key = start_pair(home, url, workers, threads, env)
            script = lua_script(home, key, PREDICT, ROW)
            results["made_before"] = made_events(url)
            results["runs"] = alternate(
                {"off": off, "on": on}, script, clients, seconds, lambda: postgres_pids(url)
            )
            results["worker_rss_mib"] = {
                label: [rss_mib(p) for p in tree(s.process.pid)[1:]]
                for label, s in (("on", on), ("off", off))
            }
            if profile_dir:
                results["profiles"] = {
                    f"{label}{suffix}": profile(
                        s,
                        seconds,
                        script,
                        max(clients),
                        profile_dir / f"{label}{suffix}.txt",
                        gil=bool(suffix),
                    )
                    for label, s in (("on", on), ("off", off))
                    for suffix in ("", "-gil")
                }
            results["callers_per_commit"] = callers_per_commit(
                on, json.loads((home / "demo-keys.json").read_text())
            )
            results["made_events"] = made_events(
                url
            )  # >= the "on" runs' ok answers: no request was a retry
            results["on_ok_measured"] = sum(
                r["ok"] for r in results["runs"] if r["recording"] == "on"
            )
        finally:
            for server in (on, off):
                if server is not None:
                    server.stop()
            drop_postgres_database(url)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=8, help="per worker, as `ledger serve` defaults"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="write py-spy collapsed stacks here"
    )
    parser.add_argument(
        "--env",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for both servers (e.g. LEDGER_GROUP_COMMIT=0)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    env = dict(pair.split("=", 1) for pair in args.env)
    results = run(args.seconds, args.clients, args.workers, args.threads, args.profile, env)
    results["wall_s"] = time.monotonic() - started
    results["summary"] = summary(results["runs"])
    results["summary"].append(f"callers per group commit: {results.get('callers_per_commit')}")
    for line in results["summary"]:
        print(line, file=sys.stderr)
    print(json.dumps(results))


def summary(runs: list[dict[str, Any]]) -> list[str]:
    """One line per client count: on/off medians of req/s, p50, p99, CPU ms/req and the ratio."""

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    lines = []
    for n in sorted({r["clients"] for r in runs}):
        pick = {
            label: [r for r in runs if r["clients"] == n and r["recording"] == label]
            for label in ("on", "off")
        }
        figures = {
            label: {
                k: median([r[k] for r in rs])
                for k in (
                    "requests_per_s",
                    "p50_ms",
                    "p99_ms",
                    "server_cpu_ms_per_request",
                    "postgres_cpu_ms_per_request",
                    "machine_busy_share",
                )
            }
            for label, rs in pick.items()
        }
        on, off = figures["on"], figures["off"]
        lines.append(
            f"{n} clients: on {on['requests_per_s']:.0f}/s p50 {on['p50_ms']:.0f} p99 {on['p99_ms']:.0f} ms "
            f"cpu {on['server_cpu_ms_per_request']:.2f}+pg {on['postgres_cpu_ms_per_request']:.2f} ms busy "
            f"{on['machine_busy_share']:.2f} | off {off['requests_per_s']:.0f}/s p50 {off['p50_ms']:.0f} "
            f"p99 {off['p99_ms']:.0f} ms cpu {off['server_cpu_ms_per_request']:.2f}+pg "
            f"{off['postgres_cpu_ms_per_request']:.2f} ms busy {off['machine_busy_share']:.2f} | ratio "
            f"{on['requests_per_s'] / off['requests_per_s']:.2f}x p99 {on['p99_ms'] / off['p99_ms']:.2f}x"
        )
    return lines


if __name__ == "__main__":
    main()
