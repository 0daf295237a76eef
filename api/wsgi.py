"""The WSGI entry point for gunicorn: `gunicorn -c deploy/gunicorn.conf.py api.wsgi:app`."""

from api.app import create_app
from api.observability import configure_logging

configure_logging()
app = create_app()
