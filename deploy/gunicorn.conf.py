"""`gunicorn -c deploy/gunicorn.conf.py api.wsgi:app`: the options `ledger serve` uses.

Worker class: gthread with a read deadline per request (api/gunicorn_worker.py) and
keep-alive off (api/gunicorn_app.py explains why). LEDGER_HOST, LEDGER_PORT, LEDGER_WORKERS,
LEDGER_THREADS, LEDGER_BODY_TIMEOUT_SECONDS and every other variable are read once here, by
ledger.settings (docs/CONFIGURATION.md); each worker reads the same environment at its start.
"""

from api.gunicorn_app import prepare_database, prepare_metrics_dir, server_options
from ledger.settings import Settings

SETTINGS = Settings.at_start()
globals().update(server_options(SETTINGS.host, SETTINGS.port, SETTINGS.workers, SETTINGS.threads))
# Before any worker exists, so every worker writes its metrics where /metrics reads them.
prepare_metrics_dir(SETTINGS.home)


def on_starting(server: object) -> None:
    """Gunicorn hook: the tables, before any worker boots."""
    prepare_database(SETTINGS)
