"""`ledger forget SUBJECT --reason`: the erasure from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import main
from ledger.application import Ledger
from tests.integration.test_privacy_erasure import (
    SECRET_NAME,
    SUBJECT,
    compact,
    file_bytes,
    populate,
)


def forget(database_url: str, *args: str) -> object:
    return CliRunner().invoke(main, ["--db", database_url, "forget", *args])


def test_forget_from_the_command_line_erases_and_names_the_models(
    ledger: Ledger, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    _, _, model_id = populate(ledger)

    done = forget(database_url, SUBJECT, "--reason", "GDPR request 42")
    again = forget(database_url, SUBJECT, "--reason", "GDPR request 42")
    unknown = forget(database_url, "nobody", "--reason", "x")

    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert answer["status"] == "forgotten" and answer["models"] == [model_id]
    assert json.loads(again.stdout)["status"] == "already_forgotten"
    assert unknown.exit_code != 0 and "no subject with this id" in unknown.output
    compact(ledger)
    assert SECRET_NAME.encode() not in file_bytes(ledger.engine)


def test_forget_needs_a_reason(database_url: str) -> None:
    assert forget(database_url, SUBJECT).exit_code == 2


def test_retention_from_the_command_line_refuses_the_floor_and_records_an_override(
    ledger: Ledger, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    populate(ledger)
    run = CliRunner()

    refused = run.invoke(main, ["--db", database_url, "retention", "set", "churn", "--days", "30"])
    allowed = run.invoke(
        main,
        [
            "--db",
            database_url,
            "retention",
            "set",
            "churn",
            "--days",
            "30",
            "--override-reason",
            "DPIA 7",
        ],
    )
    applied = run.invoke(main, ["--db", database_url, "retention", "run"])

    assert refused.exit_code == 1 and "legal floor" in refused.output
    assert allowed.exit_code == 0 and json.loads(allowed.stdout)["override"]["reason"] == "DPIA 7"
    assert applied.exit_code == 0 and json.loads(applied.stdout)["forgotten"] == {"churn": []}
