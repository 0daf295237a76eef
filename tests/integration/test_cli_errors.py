"""Every verb of `ledger`, given bad input, ends with one line saying what to fix: no traceback."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from api.cli import main

FUTURE = "2099-01-01T00:00:00Z"
NO_DB = ["--db", "nosuchdriver://x"]  # a later --db wins over the one every case starts with


def cases(tmp: Path) -> dict[str, list[list[str]]]:
    """Bad invocations per verb path (a missing file, a malformed or future instant, ...)."""
    (tmp / "bad.yaml").write_text("rules: [\n")
    (tmp / "rows.csv").write_text("a,b\n1,2\n")
    (tmp / "timed.csv").write_text("event_time,a\n2024-01-01T00:00:00Z,1\n")
    (tmp / "a-file").write_text("")
    missing = str(tmp / "missing")
    other_db = f"sqlite:///{tmp / 'other.db'}"
    return {
        "autopilot": [
            ["autopilot", "--config", missing],
            ["autopilot", "--config", str(tmp / "bad.yaml")],
            ["autopilot", "--deployment", "nope"],
        ],
        "clone": [
            ["clone", "--as-of", FUTURE, "--to", other_db],
            ["clone", "--as-of", "pos:1", "--to", "nosuchdriver://x"],
        ],
        "compare": [
            ["compare", "--candidate", "nosuchdriver://x"],
            ["compare", "--candidate", other_db, "--since", "yesterday"],
        ],
        "digest": [["digest", "--key-file", missing]],
        "export": [
            ["export", "--from", "2020-01-01", "--to", FUTURE, "--out", str(tmp / "out")],
            ["export", "--from", "soon", "--to", "2020-01-02", "--out", str(tmp / "out")],
        ],
        "feeds declare": [
            ["feeds", "declare", "tx", "--expected", "-3"],
            ["feeds", "declare", "tx", "--expected", "3", "--period", "soon"],
        ],
        "feeds report": [
            ["feeds", "report", "nope", "3"],
            ["feeds", "report", "nope", "many"],
        ],
        "forget": [["forget", "nobody", "--reason", "erasure request 1"]],
        "health-pass": [["health-pass", "--now", FUTURE], ["health-pass", "--now", "noon"]],
        "keys create": [
            ["keys", "create", "--role", "wizard"],
            ["keys", "create", "--role", "admin", "--expires", "someday"],
        ],
        "keys revoke": [["keys", "revoke", "nope"]],
        "notary advance": [[*NO_DB, "notary", "advance"]],
        "project": [["project", "--rebuild", "nope"], ["project"]],
        "quality-check": [
            ["quality-check", missing, "--deployment", "churn"],
            ["quality-check", str(tmp / "rows.csv"), "--deployment", "nope"],
        ],
        "replay": [
            ["replay", "--target", "not a url", "--key", "k"],
            ["replay", "--target", "http://127.0.0.1:1", "--key", "k", "--from", FUTURE],
            ["replay", "--target", "http://127.0.0.1:1", "--key", "k", "--label", "y"],
            [
                *["replay", "--target", "http://127.0.0.1:1", "--key", "k"],
                *["--file", str(tmp / "timed.csv"), "--deployment", "churn", "--label", "y"],
            ],
        ],
        "explain": [
            ["explain", "not-an-id"],
            ["explain", "00000000-0000-0000-0000-000000000000"],
            ["explain", "00000000-0000-0000-0000-000000000000", "--as-of", FUTURE],
        ],
        "reproduce": [
            ["reproduce", "not-an-id"],
            ["reproduce", "00000000-0000-0000-0000-000000000000"],
        ],
        "restored": [[*NO_DB, "restored", "--from-dump", "backup-1"]],
        "retention run": [[*NO_DB, "retention", "run"]],
        "retention set": [["retention", "set", "nope", "--days", "400"]],
        "serve": [["serve", "--port", "99999"]],
        "master-key rotate": [[*NO_DB, "master-key", "rotate"]],
        "signing-key init": [["signing-key", "init", "--key-file", str(tmp / "a-file" / "k.pem")]],
        "signing-key rotate": [["signing-key", "rotate", "--key-file", missing]],
        "state": [["state", "--as-of", FUTURE], [*NO_DB, "state"]],
        "train": [["train", missing], ["train", str(tmp / "bad.yaml")]],
        "verify": [
            ["verify", "--from-url", "http://127.0.0.1:1"],
            ["verify", "--digest", missing],
        ],
    }


def verb_paths() -> set[str]:
    """Every verb `ledger --help` lists, and each subcommand of a verb that is a group."""
    ctx = click.Context(main)
    paths = set()
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        if isinstance(command, click.Group):
            paths |= {f"{name} {sub}" for sub in command.commands}
        else:
            paths.add(name)
    return paths


def test_every_verb_has_bad_input_cases(tmp_path: Path) -> None:
    assert verb_paths() == set(cases(tmp_path))


def test_bad_input_ends_in_one_line_and_a_failing_status(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    for path, invocations in cases(tmp_path).items():
        for args in invocations:
            result = runner.invoke(main, ["--db", database_url, *args])
            said = f"ledger {' '.join(args)} ->\n{result.output}"
            assert result.exit_code != 0, said
            assert result.exception is None or isinstance(result.exception, SystemExit), said
            assert "Traceback" not in result.output, said
            errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1 and result.output.rstrip().endswith(errors[0]), said
            assert "unexpected" not in errors[0], f"{path}: {said}"


def test_an_unexpected_error_is_one_line_and_its_traceback_needs_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.commands.state as state

    def broken(*_: object, **__: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    monkeypatch.setattr(state, "_state", broken)
    plain = CliRunner().invoke(main, ["state"])
    assert plain.exit_code == 70 and "Traceback" not in plain.output
    assert plain.output.strip() == (
        "Error: unexpected ZeroDivisionError: a bug (run `ledger --debug ...` for the traceback)"
    )

    debug = CliRunner().invoke(main, ["--debug", "state"])
    assert isinstance(debug.exception, ZeroDivisionError)
    monkeypatch.setenv("LEDGER_DEBUG", "1")
    assert isinstance(CliRunner().invoke(main, ["state"]).exception, ZeroDivisionError)
