"""Writes on the primary, auditor reads on a streaming hot standby, against reads on the primary.

    .venv/bin/python -m bench.standby [--seconds 15] [--writers 16] [--readers 8] [--keep]

As root, it makes a fresh standby with deploy/standby.sh (port 5433) and drops it after
the run (--keep leaves it running): a standby left behind replays every later write on
this machine and takes CPU from the other benchmarks.

One database on the primary (fsync on), replicated to the standby. Two `ledger serve`
processes on it: one reads its projections on the primary (the baseline), one with
LEDGER_READ_DATABASE_URL on the standby (api/replica.py: each read first takes the
projection's position on the primary and waits for the standby to replay it). A projector
(`ledger project --follow`) runs on the primary all along. Each run loads one server with
two wrks at once: single-row predictions (predictor key) and auditor reads
(performance by slice and the prediction index, alternately). Per run: both loads'
req/s and latency, each PostgreSQL cluster's CPU per second, the standby's replay lag
(pg_stat_replication) and where the reads ran (/metrics). Prints JSON on its last line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import create_postgres_database, drop_postgres_database
from bench.http_compare import LUA, PREDICT, ROW, FlaggedServer, cpu_seconds, lua_script, tree, wrk
from tests.e2e.server import ledger_cli

READS = (
    "/v1/performance?deployment=churn&slice=region",
    "/v1/predictions?deployment=churn&limit=20",
)
GET_LUA = r"""
counter = 0
function request()
  counter = counter + 1
  return wrk.format("GET", PATHS[(counter % #PATHS) + 1], HEADERS)
end
""" + LUA[LUA.index("function done") :]  # the same WRKJSON summary line as the predictions load


def read_script(directory: Path, key: str) -> Path:
    paths = "{" + ", ".join(f'"{p}"' for p in READS) + "}"
    script = directory / f"get-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(
        f'PATHS = {paths}\nHEADERS = {{["Authorization"]="Bearer {key}"}}\n' + GET_LUA
    )
    return script


def standby_url(primary_url: str, port: int) -> str:
    url = sa.engine.make_url(primary_url)
    return url.set(port=port).render_as_string(hide_password=False)


def fresh_standby(port: int) -> None:
    """A new standby of the local primary (an old one may have lost the WAL it needed)."""
    drop_standby()
    subprocess.run(
        ["sh", str(Path(__file__).resolve().parents[1] / "deploy" / "standby.sh"), str(port)],
        check=True,
        capture_output=True,
        timeout=600,
    )


def drop_standby() -> None:
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        version, name, *_ = line.split()
        if name == "standby":
            subprocess.run(["pg_dropcluster", "--stop", version, name], check=True, timeout=120)


def require_standby(port: int) -> None:
    engine = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres")
    try:
        with engine.connect() as conn:
            if not conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar_one():
                raise SystemExit(f"127.0.0.1:{port} is not a standby")
    except sa.exc.OperationalError as error:
        raise SystemExit(
            f"no standby on 127.0.0.1:{port} ({error.orig}); run `sudo sh deploy/standby.sh`"
        ) from None
    finally:
        engine.dispose()


def cluster_pids(port: int) -> list[int]:
    """The postmaster of the cluster on `port` and its children (backends, walsender, startup)."""
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            pid = (
                Path(f"/var/lib/postgresql/{version}/{name}/postmaster.pid").read_text().split()[0]
            )
            return tree(int(pid))
    return []


class LagSampler(threading.Thread):
    """The standby's replay lag (seconds, from the primary's pg_stat_replication), sampled."""

    def __init__(self, primary_url: str):
        super().__init__(daemon=True)
        self.engine = sa.create_engine(primary_url)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self.stop.wait(0.5):
                lag = conn.exec_driver_sql(
                    "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0) FROM pg_stat_replication"
                ).scalar()
                conn.rollback()
                self.samples.append(float(lag or 0))
        self.engine.dispose()


def reads_served(server: FlaggedServer, admin: str) -> dict[str, float]:
    answer = server.call("GET", "/metrics", headers={"Authorization": f"Bearer {admin}"})
    counts: dict[str, float] = {}
    for line in answer.body.decode().splitlines():
        if line.startswith("ledger_projection_reads_total{"):
            label = line.split('served_by="', 1)[1].split('"', 1)[0]
            counts[label] = counts.get(label, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def one_run(
    server: FlaggedServer,
    scripts: tuple[Path, Path],
    clients: tuple[int, int],
    seconds: float,
    primary_url: str,
    ports: tuple[int, int],
    admin: str,
) -> dict[str, Any]:
    """Both loads at once on one server; CPU of each cluster; lag; where the reads ran."""
    pids = {
        "primary": cluster_pids(ports[0]),
        "standby": cluster_pids(ports[1]),
        "api": tree(server.process.pid),
    }
    before = {name: cpu_seconds(p) for name, p in pids.items()}
    served_before = reads_served(server, admin)
    sampler = LagSampler(primary_url)
    sampler.start()
    results: dict[str, Any] = {}
    reader = threading.Thread(
        target=lambda: results.update(
            reads=wrk(server.url + READS[0], scripts[1], clients[1], seconds)
        )
    )
    started = time.perf_counter()
    reader.start()
    results["writes"] = wrk(server.url + PREDICT, scripts[0], clients[0], seconds)
    reader.join()
    elapsed = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    served_after = reads_served(server, admin)
    results["cpu_per_s"] = {
        name: (cpu_seconds(p) - before[name]) / elapsed for name, p in pids.items()
    }
    results["lag_s"] = {
        "max": max(sampler.samples, default=0.0),
        "mean": sum(sampler.samples) / max(len(sampler.samples), 1),
    }
    results["reads_served_by"] = {
        k: served_after.get(k, 0) - served_before.get(k, 0) for k in served_after
    }
    return results


def run(seconds: float, writers: int, readers: int, port: int, keep: bool) -> dict[str, Any]:
    fresh_standby(port)
    try:
        require_standby(port)
        return measure(seconds, writers, readers, port)
    finally:
        if not keep:
            drop_standby()


def measure(seconds: float, writers: int, readers: int, port: int) -> dict[str, Any]:
    url = create_postgres_database("ledger_bench_standby")
    replica = standby_url(url, port)
    out: dict[str, Any] = {"seconds": seconds, "writers": writers, "readers": readers, "runs": []}
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        servers: list[FlaggedServer] = []
        projector = None
        try:
            primary = FlaggedServer(home, url)
            primary.name, primary.extra_env = (
                "reads-on-primary",
                {"PROMETHEUS_MULTIPROC_DIR": str(home / "m1")},
            )
            servers.append(primary.start("--demo", timeout=600))
            standby = FlaggedServer(home, url)
            standby.name = "reads-on-standby"
            standby.extra_env = {
                "LEDGER_READ_DATABASE_URL": replica,
                "PROMETHEUS_MULTIPROC_DIR": str(home / "m2"),
            }
            servers.append(standby.start(timeout=300))
            with (home / "projector.log").open("wb") as log:
                projector = subprocess.Popen(
                    ledger_cli("project", "--follow"),
                    cwd=home,
                    env=primary.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            keys = json.loads((home / "demo-keys.json").read_text())
            scripts = (
                lua_script(home, keys["predictor"], PREDICT, ROW),
                read_script(home, keys["auditor"]),
            )
            for server in servers:  # warm: runtimes, key caches, both engines' pools
                one_run(server, scripts, (4, 2), 3, url, (5432, port), keys["admin"])
            for label, server in (("primary", primary), ("standby", standby)) * 2:
                out["runs"].append(
                    {
                        "reads_on": label,
                        **one_run(
                            server,
                            scripts,
                            (writers, readers),
                            seconds,
                            url,
                            (5432, port),
                            keys["admin"],
                        ),
                    }
                )
        finally:
            if projector is not None:
                projector.terminate()
                projector.wait(timeout=30)
            for server in servers:
                server.stop()
            drop_postgres_database(url)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--standby-port", type=int, default=5433)
    parser.add_argument("--keep", action="store_true", help="leave the standby running afterwards")
    args = parser.parse_args()
    result = run(args.seconds, args.writers, args.readers, args.standby_port, args.keep)
    for r in result["runs"]:
        w, rd = r["writes"], r["reads"]
        print(
            f"reads on {r['reads_on']:8} writes {w['requests_per_s']:6.0f}/s p99 {w['p99_ms']:6.1f} ms | "
            f"reads {rd['requests_per_s']:6.0f}/s p50 {rd['p50_ms']:6.1f} p99 {rd['p99_ms']:6.1f} ms | "
            f"CPU/s primary {r['cpu_per_s']['primary']:.2f} standby {r['cpu_per_s']['standby']:.2f} "
            f"api {r['cpu_per_s']['api']:.2f} | lag max {r['lag_s']['max'] * 1000:.1f} ms | "
            f"served {r['reads_served_by']}"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
