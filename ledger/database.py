"""Engines for the ledger's database, and which backend one speaks to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ledger.errors import InvalidSetting
from ledger.keyfiles import create_private_file


def is_postgres(url_or_engine: Any) -> bool:
    """Whether a URL, engine or connection speaks to PostgreSQL."""
    name = url_or_engine.dialect.name if hasattr(url_or_engine, "dialect") else str(url_or_engine)
    return name.startswith("postgres")


def create_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine configured for the ledger: WAL and a long busy timeout on SQLite."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            # SQLite gives its -wal and -shm files the mode of the database file.
            create_private_file(Path(path).absolute())
        kwargs.setdefault("connect_args", {"timeout": 60, "check_same_thread": False})
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 8)
    kwargs.setdefault("max_overflow", 16)
    try:
        return sa.create_engine(url, **kwargs)
    except ImportError as error:  # the URL names a driver this installation lacks
        raise InvalidSetting(
            f"the database URL names a driver that is not installed ({error.name}): "
            "use postgresql+psycopg2://user@host/name or sqlite:///path"
        ) from None
