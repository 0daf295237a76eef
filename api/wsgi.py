"""The WSGI entry point for gunicorn: `gunicorn -c deploy/gunicorn.conf.py api.wsgi:app`."""

from api.app import create_app
from api.observability import configure_logging
from ledger.settings import Settings

SETTINGS = Settings.at_start()  # once per worker, after the fork
configure_logging(SETTINGS.log_level)
app = create_app(SETTINGS, other_servers=True)
