"""`ledger serve`: gunicorn with the Falcon app, plus projector and digests on one host."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from dataclasses import replace
from typing import Any

import click

from api.commands.common import settings_from
from ledger.database import is_postgres
from ledger.errors import InvalidSetting
from ledger.settings import Settings


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, before any key is printed or worker started."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise click.ClickException(
                f"port {port} on {host} is already in use: pick another with "
                f"`ledger serve --port {port + 1}` (or `make run PORT={port + 1}`, or LEDGER_PORT)"
            ) from None


def start_sidecars(settings: Settings) -> subprocess.Popen[bytes]:
    """One sidecar process (projector + digest writer) beside gunicorn's workers.

    In its own session, so a Ctrl-C at the terminal reaches only `ledger serve`, which then
    stops the sidecars itself (SIGTERM): one orderly shutdown, no KeyboardInterrupt in each.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.sidecars",
            "--db",
            settings.database_url,
            "--digest-interval",
            str(settings.digest_interval_seconds),
        ],
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """Ask the sidecars to stop, and wait for them (they stop their children first)."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
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
    from api.gunicorn_app import LedgerServer, prepare_metrics_dir, server_options
    from api.observability import configure_logging

    settings = _with_options(
        settings_from(ctx), host=host, port=port, workers=workers, threads=threads
    )
    check_port_free(settings.host, settings.port)
    prepare_metrics_dir(settings.home)  # before any metric object exists in any process
    configure_logging(settings.log_level)
    try:
        _prepare(settings, demo)
    except KeyboardInterrupt:  # Ctrl-C before gunicorn answers it: stop, quietly
        ctx.exit(130)
    run_sidecars = sidecars if sidecars is not None else not is_postgres(settings.database_url)
    sidecar = start_sidecars(settings) if run_sidecars else None
    master = os.getpid()
    try:
        LedgerServer(
            settings,
            server_options(settings.host, settings.port, settings.workers, settings.threads),
        ).run()
    finally:
        if os.getpid() == master:  # a worker leaves through here too, after the fork
            stop(sidecar)


def _prepare(settings: Settings, demo: bool) -> None:
    """The demo's deployments and keys (first start), then every table, before the fork."""
    from api.gunicorn_app import prepare_database

    if demo:
        from api.demo import bootstrap, keys_path, print_keys

        print_keys(bootstrap(settings), keys_path(settings), settings.host, settings.port)
    prepare_database(settings)


def register(group: click.Group) -> None:
    group.add_command(serve)
