"""`ledger serve`: gunicorn with the Falcon app, plus projector and digests on one host."""

from __future__ import annotations

import subprocess
import sys

import click

from api.commands.common import settings_from
from ledger.database import is_postgres
from ledger.settings import Settings


def start_sidecars(settings: Settings) -> subprocess.Popen[bytes]:
    """One sidecar process (projector + digest writer) beside gunicorn's workers."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.sidecars",
            "--db",
            settings.database_url,
            "--digest-interval",
            str(settings.digest_interval_seconds),
        ]
    )


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Worker processes (default: one per core, at least 2).",
)
@click.option("--threads", type=int, default=8, show_default=True, help="Threads per worker.")
@click.option(
    "--demo", is_flag=True, help="Create demo deployments, models and keys on first start."
)
@click.option(
    "--sidecars/--no-sidecars",
    default=None,
    help="Run the projector and digest writer here (default: on SQLite only).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int | None,
    threads: int,
    demo: bool,
    sidecars: bool | None,
) -> None:
    """Serve the API under gunicorn (the app is built in each worker, after the fork)."""
    from api.gunicorn_app import LedgerServer, prepare_database, prepare_metrics_dir, server_options
    from api.observability import configure_logging

    settings = settings_from(ctx)
    prepare_metrics_dir(settings.home)  # before any metric object exists in any process
    configure_logging()
    if demo:
        from api.demo import bootstrap, keys_path, print_keys

        print_keys(bootstrap(settings), keys_path(settings), host, port)
    prepare_database(settings)
    run_sidecars = sidecars if sidecars is not None else not is_postgres(settings.database_url)
    sidecar = start_sidecars(settings) if run_sidecars else None
    try:
        LedgerServer(settings, server_options(host, port, workers, threads)).run()
    finally:
        stop(sidecar)


def register(group: click.Group) -> None:
    group.add_command(serve)
