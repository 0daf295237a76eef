"""`ledger serve`: gunicorn with the Falcon app, plus projector and digests on one host."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from typing import Any

import click

from api.commands.common import settings_from
from ledger.database import is_postgres
from ledger.errors import InvalidSetting
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


def _with_options(settings: Settings, **options: Any) -> Settings:
    """The command's options over the settings' LEDGER_HOST, LEDGER_PORT, ... values."""
    try:
        return replace(settings, **{k: v for k, v in options.items() if v is not None})
    except InvalidSetting as error:
        raise click.BadParameter(str(error)) from None


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: LEDGER_HOST).")
@click.option("--port", type=int, default=None, help="Port (default: LEDGER_PORT).")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Worker processes (default: LEDGER_WORKERS, else one per core, at least 2).",
)
@click.option("--threads", type=int, default=None, help="Threads per worker (LEDGER_THREADS).")
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
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None,
    demo: bool,
    sidecars: bool | None,
) -> None:
    """Serve the API under gunicorn (the app is built in each worker, after the fork)."""
    from api.gunicorn_app import LedgerServer, prepare_database, prepare_metrics_dir, server_options
    from api.observability import configure_logging

    settings = _with_options(
        settings_from(ctx), host=host, port=port, workers=workers, threads=threads
    )
    prepare_metrics_dir(settings.home)  # before any metric object exists in any process
    configure_logging(settings.log_level)
    if demo:
        from api.demo import bootstrap, keys_path, print_keys

        print_keys(bootstrap(settings), keys_path(settings), settings.host, settings.port)
    prepare_database(settings)
    run_sidecars = sidecars if sidecars is not None else not is_postgres(settings.database_url)
    sidecar = start_sidecars(settings) if run_sidecars else None
    try:
        LedgerServer(
            settings,
            server_options(settings.host, settings.port, settings.workers, settings.threads),
        ).run()
    finally:
        stop(sidecar)


def register(group: click.Group) -> None:
    group.add_command(serve)
