"""Scenario 9: a pg_dump restored into a new database verifies against a digest issued
before the dump, records that it was restored, and continues above the restored positions."""

from __future__ import annotations

import json
import subprocess

import pytest
import sqlalchemy as sa

from ledger import notary
from ledger.application import Ledger
from ledger.settings import Settings
from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.e2e.server import ledger_cli
from tests.reliability.support import TIMEOUT, scaled

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(TIMEOUT)]
EVENTS = scaled(100, 5_000)
RESTORED = "ledger.domain.audits:Restore.Recorded"


def pg_args(url: str) -> list[str]:
    parsed = sa.engine.make_url(url)
    return [
        "-h",
        parsed.host or "127.0.0.1",
        "-p",
        str(parsed.port or 5432),
        "-U",
        parsed.username or "postgres",
        "-d",
        parsed.database or "",
    ]


@pytest.fixture
def databases():
    urls = [fresh_postgres_database(), fresh_postgres_database()]
    try:
        yield urls
    finally:
        for url in urls:
            drop_postgres_database(url)


def head(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT max(id) FROM ledger_events").scalar_one()


def test_a_restored_dump_verifies_records_the_restore_and_continues_above(databases, tmp_path):
    source_url, target_url = databases
    settings = Settings(home=tmp_path, database_url=source_url, group_commit=False)
    key_path = notary.default_key_path(settings)
    source = Ledger(settings)
    try:
        notary.create_signing_key(source, key_path, actor="test")
        for i in range(EVENTS):
            source.issue_api_key("auditor", actor="test", label=f"before-{i}")
        digest = notary.issue_digest(source.engine, key_path, tmp_path / "digests")
    finally:
        source.close()
    dump = tmp_path / "ledger.dump"
    subprocess.run(
        ["pg_dump", "-Fc", "-f", str(dump), *pg_args(source_url)], check=True, timeout=300
    )
    subprocess.run(
        ["pg_restore", "--no-owner", *pg_args(target_url), str(dump)], check=True, timeout=300
    )

    public_key = notary.load_public_key(key_path.with_suffix(".pub.pem"))
    target = Ledger(Settings(home=tmp_path, database_url=target_url, group_commit=False))
    try:
        restored_top = head(target.engine)
        report = notary.verify_database(target.engine, [digest], public_key)
        assert report.ok and report.digests[0].ok, report.render()

        recorded = subprocess.run(
            ledger_cli("--db", target_url, "restored", "--from-dump", dump.name),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert recorded.returncode == 0, recorded.stderr
        key_id, _ = target.issue_api_key("auditor", actor="test", label="after")
        with target.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, topic, state FROM ledger_events WHERE id > :p ORDER BY id"),
                {"p": restored_top},
            ).all()
        assert [r.topic for r in rows][0] == RESTORED and len(
            rows
        ) == 2  # above the restored positions
        restore = json.loads(bytes(rows[0].state))
        assert (restore["source"], restore["restored_position"]) == (dump.name, restored_top)
        assert digest.position == restored_top and restore["restored_head"] == digest.head_hash
        notary.advance(target.engine)
        assert notary.verify_database(target.engine, [digest], public_key).ok  # the chain goes on
    finally:
        target.close()
