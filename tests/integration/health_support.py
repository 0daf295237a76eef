"""A churn deployment with a model trained on the demo generator, built once per backend.

Training and storing a model (and its IsolationForest) costs seconds; each test gets a
copy of a template database instead: a file copy on SQLite, CREATE DATABASE ... TEMPLATE
on PostgreSQL. The copies share the template's home (its secrets).
"""

from __future__ import annotations

import atexit
import math
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.settings import Settings
from tests.conftest import (
    PG_ADMIN_URL,
    PG_DB_PREFIX,
    drop_postgres_database,
    fresh_postgres_database,
    require_postgres,
)
from trainers import demo_data
from trainers.demo import DEMO_FEATURES, demo_specs

NAMES = [f["name"] for f in DEMO_FEATURES]


def demo_rows(n: int, seed: int, drift: bool) -> list[dict]:
    """Rows of the demo generator as JSON-like dicts (NaN becomes None)."""
    frame = demo_data.generate(n, seed=seed, drift=drift)[NAMES].astype(object)
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def build_churn(settings: Settings) -> None:
    from api.demo import create_deployment

    ledger = Ledger(replace(settings, group_commit=False))
    try:
        spec = next(s for s in demo_specs(rows=1500) if s["name"] == "churn-logistic")
        create_deployment(ledger, "churn", [spec])
    finally:
        ledger.close()


class Templates:
    """One trained template per backend, copied for each test."""

    def __init__(self, home: Path):
        self.home, self.built, self.pg_template = home, set(), None

    def copy(self, backend: str, tmp_path: Path) -> str:
        if backend == "sqlite":
            template = self.home / "template.db"
            if "sqlite" not in self.built:
                build_churn(Settings(home=self.home, database_url=f"sqlite:///{template}"))
                self.built.add("sqlite")
            shutil.copy(template, tmp_path / "ledger.db")
            return f"sqlite:///{tmp_path / 'ledger.db'}"
        require_postgres()
        if self.pg_template is None:
            self.pg_template = fresh_postgres_database()
            build_churn(Settings(home=self.home, database_url=self.pg_template))
        name = f"{PG_DB_PREFIX}{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(
                f'CREATE DATABASE "{name}" TEMPLATE "{self.pg_template.rsplit("/", 1)[1]}"'
            )
        engine.dispose()
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


_templates: list[Templates] = []  # one per session, shared by every module that uses `churn`


def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    if not _templates:
        _templates.append(Templates(tmp_path_factory.mktemp("churn-template")))
        atexit.register(_drop_template)
    return _templates[0]


def _drop_template() -> None:
    if _templates and _templates[0].pg_template:
        drop_postgres_database(_templates[0].pg_template)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def churn(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> Iterator[Ledger]:
    """A ledger (each backend) holding the churn deployment and its trained model."""
    shared = templates(tmp_path_factory)
    url = shared.copy(request.param, tmp_path)
    ledger = Ledger(Settings(home=shared.home, database_url=url))
    try:
        yield ledger
    finally:
        ledger.close()
        if request.param == "postgres":
            drop_postgres_database(url)
