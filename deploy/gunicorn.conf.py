"""`gunicorn -c deploy/gunicorn.conf.py api.wsgi:app`: the options `ledger serve` uses.

Worker class: gthread with a read deadline per request (api/gunicorn_worker.py) and
keep-alive off (api/gunicorn_app.py explains why). Set
LEDGER_HOST, LEDGER_PORT, LEDGER_WORKERS and LEDGER_THREADS to change the defaults;
the database (LEDGER_DATABASE_URL) and the read deadline (LEDGER_BODY_TIMEOUT_SECONDS)
come from the environment as everywhere else.
"""

import os

from api.gunicorn_app import on_starting, prepare_metrics_dir, server_options  # noqa: F401 - a hook
from ledger.settings import Settings

_workers = os.environ.get("LEDGER_WORKERS")
globals().update(server_options(
    host=os.environ.get("LEDGER_HOST", "127.0.0.1"),
    port=int(os.environ.get("LEDGER_PORT", "8000")),
    workers=int(_workers) if _workers else None,
    threads=int(os.environ.get("LEDGER_THREADS", "8")),
))
# Before any worker exists, so every worker writes its metrics where /metrics reads them.
prepare_metrics_dir(Settings.from_env().home)
