"""Gunicorn, embedded: one option set shared by `ledger serve` and deploy/gunicorn.conf.py.

The Falcon app is built in each worker after the fork (no preload), so no database
connection, writer thread or metric file is ever shared between processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from ledger.database import is_postgres
from ledger.keyfiles import private_dir
from ledger.settings import Settings
from ledger.writer_process import WriterSupervisor


def default_workers() -> int:
    """One worker per core, at least two so that one slow request never stalls all."""
    return max(2, min(8, os.cpu_count() or 2))


def server_options(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int | None = None,
    threads: int = 8,
) -> dict[str, Any]:
    """Gunicorn settings: gthread workers with a read deadline, keep-alive off (see below)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers or default_workers(),
        # Threads let one process's group committer batch many callers' inserts; each
        # request must arrive within Settings.body_timeout_seconds (api/gunicorn_worker.py).
        "worker_class": "api.gunicorn_worker.BoundedThreadWorker",
        "threads": threads,
        # With keep-alive, gthread can pin every client connection to one worker and
        # halve throughput (measured with wrk); closing after each answer keeps them balanced.
        "keepalive": 0,
        "timeout": 60,
        "graceful_timeout": 15,
        "preload_app": False,
        "accesslog": None,  # every request is logged by api.observability, with its id
        "logger_class": "api.gunicorn_app.Logger",  # and so none by gunicorn (see there)
        "errorlog": "-",
        "logconfig_dict": logconfig(),
        "child_exit": child_exit,
        "when_ready": start_writer,
        "on_exit": stop_writer,
        "post_worker_init": leave_interrupts_to_master,
        "worker_int": quit_at_once,
        "proc_name": "ledger-api",
        # One shared default socket path would make two servers on a host collide.
        "control_socket_disable": True,
    }


class Logger(glogging.Logger):
    """Gunicorn's logger, without an access log.

    A logconfig_dict turns gunicorn's access log on whatever `accesslog` says: it then built
    every request's atoms (headers, environ, a formatted time) and a log record for a logger
    with no handler, about 60 µs of CPU per request timed alone. api.observability logs
    each request already, with its id."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


def logconfig() -> dict[str, Any]:
    """Gunicorn's own messages as the same JSON lines as ours."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "api.observability.json_formatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def prepare_metrics_dir(home: Path) -> Path:
    """A clean directory for multiprocess metrics, exported before any metric exists.

    PROMETHEUS_MULTIPROC_DIR stays an environment variable, not a setting: prometheus_client
    reads it itself in every worker, so the master exports it here before the fork.
    """
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or home / "metrics")
    shutil.rmtree(path, ignore_errors=True)
    private_dir(path)  # and the home above it, when this is the first thing made there
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def prepare_database(settings: Settings) -> None:
    """Build the app once in the master and close it, so every table exists before the fork.

    Workers that boot together would otherwise race to create the same tables, and
    PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent twin.
    """
    from api.app import create_app

    create_app(settings).services.close()


def child_exit(server: Any, worker: Any) -> None:
    """Fold a dead worker's live gauges away so /metrics does not count it twice."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def start_writer(server: Any) -> None:
    """Start the host's writer process before any worker, when the settings call for one.

    Workers then record through it (ledger/writer_process.py): one process batches every
    worker's inserts, and their request threads keep their GIL for requests.
    """
    settings = _settings_of(server)
    if settings.writer_process and settings.group_commit and is_postgres(settings.database_url):
        supervisor = WriterSupervisor(settings.database_url)
        supervisor.start()
        server.ledger_writer = supervisor


def stop_writer(server: Any) -> None:
    """The workers are gone: let the writer commit what it holds, then end it."""
    supervisor = getattr(server, "ledger_writer", None)
    if supervisor is not None:
        supervisor.stop()


def _settings_of(server: Any) -> Settings:
    # `ledger serve` passes its settings (command-line options included); plain gunicorn
    # with deploy/gunicorn.conf.py reads them from the environment, as its workers do.
    settings = getattr(server.app, "settings", None)
    return settings if isinstance(settings, Settings) else Settings.at_start()


def leave_interrupts_to_master(worker: Any) -> None:
    """A terminal's Ctrl-C reaches every process in its group: workers leave it to the master.

    The master answers SIGINT with SIGQUIT to each worker; a worker that also acted on the
    SIGINT itself would exit twice over, and a second exit inside the first can hang until
    the master's SIGKILL.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def quit_at_once(worker: Any) -> None:
    """SIGQUIT (the master's answer to Ctrl-C) is gunicorn's quick shutdown: exit now.

    Tearing down an interpreter that holds pandas and scikit-learn takes seconds on a busy
    host, and a thread that never ends holds the worker until the master's SIGKILL. Nothing
    is lost: an event is committed whole or not at all, and SIGTERM still drains requests.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class LedgerServer(BaseApplication):
    """Gunicorn with our options and create_app as the application."""

    def __init__(self, settings: Settings, options: dict[str, Any]):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from api.app import create_app
        from api.observability import configure_logging

        configure_logging(self.settings.log_level)
        return create_app(self.settings, other_servers=True)
