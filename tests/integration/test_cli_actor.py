"""The command line records only actors it authenticated: a checked key's id, or the OS user."""

from __future__ import annotations

import getpass

import pytest
from click.testing import CliRunner

from api.cli import main
from ledger import ids, notary


@pytest.fixture
def cli(settings, monkeypatch):
    """Run `ledger` against the test database with the test ledger's secrets."""
    monkeypatch.setenv("LEDGER_HOME", str(settings.home))
    monkeypatch.delenv("LEDGER_API_KEY", raising=False)

    def run(*args, key=None):
        if key is not None:
            monkeypatch.setenv("LEDGER_API_KEY", key)
        return CliRunner().invoke(main, ["--db", settings.database_url, *args])

    return run


def event_count(ledger):
    return len(list(notary.iter_stored_events(ledger.engine)))


def issued_by(ledger, result):
    key_id = result.stderr.split("key id ")[1].split()[0]
    return ledger.repository.get(ids.api_key_id(key_id)).issued_by


def test_a_made_up_key_records_nothing(ledger, cli):
    ledger.issue_api_key("admin", actor="test")
    before = event_count(ledger)
    result = cli("keys", "create", "--role", "auditor", key="pl_0123456789ab_made-up-secret")
    assert result.exit_code != 0
    assert result.output.strip().count("\n") == 0 and "LEDGER_API_KEY" in result.output
    assert event_count(ledger) == before


def test_a_revoked_key_records_nothing(ledger, cli):
    key_id, key = ledger.issue_api_key("admin", actor="test")
    ledger.revoke_api_key(key_id, reason="left", actor="test")
    before = event_count(ledger)
    assert cli("keys", "create", "--role", "auditor", key=key).exit_code != 0
    assert event_count(ledger) == before


def test_a_real_key_records_under_its_key_id(ledger, cli):
    key_id, key = ledger.issue_api_key("admin", actor="test")
    result = cli("keys", "create", "--role", "auditor", key=key)
    assert result.exit_code == 0, result.output
    assert issued_by(ledger, result) == f"key:{key_id}"


def test_without_a_key_the_actor_is_the_os_user(ledger, cli):
    result = cli("keys", "create", "--role", "auditor")
    assert result.exit_code == 0, result.output
    assert issued_by(ledger, result) == f"os-user:{getpass.getuser()}"


def test_signing_key_init_with_a_made_up_key_records_nothing(ledger, cli):
    before = event_count(ledger)
    result = cli("signing-key", "init", key="pl_0123456789ab_made-up-secret")
    assert result.exit_code != 0 and "LEDGER_API_KEY" in result.output
    assert event_count(ledger) == before
