"""The server options `ledger serve` and deploy/gunicorn.conf.py share."""

from __future__ import annotations

import os

from gunicorn.workers.gthread import ThreadWorker

from api.gunicorn_app import LedgerServer, Logger, prepare_metrics_dir, server_options
from api.sidecars import ledger_command
from ledger.settings import Settings


def test_workers_are_gthread_with_keep_alive_off_and_the_app_built_after_the_fork():
    options = server_options("127.0.0.1", 8123, workers=3, threads=5)
    assert (
        options["bind"] == "127.0.0.1:8123" and options["workers"] == 3 and options["threads"] == 5
    )
    assert options["worker_class"] == "api.gunicorn_worker.BoundedThreadWorker"
    assert options["keepalive"] == 0
    assert options["preload_app"] is False


def test_every_option_is_one_gunicorn_knows(tmp_path):
    server = LedgerServer(Settings(home=tmp_path), server_options())
    assert issubclass(server.cfg.worker_class, ThreadWorker) and server.cfg.keepalive == 0


def test_gunicorn_builds_no_access_log_line(tmp_path):
    server = LedgerServer(Settings(home=tmp_path), server_options())
    assert server.cfg.logger_class is Logger
    # gunicorn's own Logger would read the response and environ here (its logconfig_dict
    # turns the access log on); this one touches neither
    assert Logger(server.cfg).access(None, None, None, None) is None


def test_the_metrics_directory_is_emptied_and_exported(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    stale = tmp_path / "metrics" / "counter_1.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    path = prepare_metrics_dir(tmp_path)
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(path) and not stale.exists()
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")


def test_the_projector_runs_the_public_cli_verb():
    argv = ledger_command("sqlite:///x.db", "project", "--follow")
    assert argv[-4:] == ["--db", "sqlite:///x.db", "project", "--follow"]
