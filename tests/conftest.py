"""Backends for every storage test: SQLite always, PostgreSQL on this machine.

Without PostgreSQL the PostgreSQL half is skipped and the run says so; with CI=true a
missing PostgreSQL is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "LEDGER_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
# Databases the tests create are named <prefix><12 hex>: a shared server can tell them apart.
PG_DB_PREFIX = os.environ.get("LEDGER_TEST_DB_PREFIX", "ledger_test_")
IN_CI = os.environ.get("CI", "").lower() == "true"
_pg_state: dict[str, object] = {}


def _pg_available() -> bool:
    if "ok" not in _pg_state:
        try:
            engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            engine.dispose()
            _pg_state["ok"] = True
        except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
            _pg_state["ok"] = False
            _pg_state["error"] = str(error).splitlines()[0]
    return bool(_pg_state["ok"])


def require_postgres() -> None:
    if _pg_available():
        return
    if IN_CI:
        pytest.fail(
            f"CI=true and PostgreSQL is not reachable at {PG_ADMIN_URL}: {_pg_state['error']}"
        )
    _pg_state["skipped"] = True
    pytest.skip("PostgreSQL is not reachable: the PostgreSQL half is skipped")


def fresh_postgres_database() -> str:
    """A new, empty database; the caller drops it with drop_postgres_database."""
    require_postgres()
    name = f"{PG_DB_PREFIX}{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty ledger database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    url = fresh_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=database_url)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    app = Ledger(settings)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def parallel_ledger(settings: Settings, tmp_path: Path, database_url: str) -> Iterator[Ledger]:
    """A second, empty ledger on the same backend: a clone's target, a production-parallel one."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'parallel.db'}"
    else:
        url = fresh_postgres_database()
    app = Ledger(replace(settings, database_url=url))
    try:
        yield app
    finally:
        app.close()
        if not database_url.startswith("sqlite"):
            drop_postgres_database(url)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001
    if _pg_state.get("skipped"):
        terminalreporter.write_line(
            "NOTE: PostgreSQL was not reachable; the PostgreSQL half of the suite was SKIPPED.",
            yellow=True,
            bold=True,
        )
