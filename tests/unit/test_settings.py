"""One settings object: typed, read from a given environment once, documented from its declaration."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.errors import InvalidSetting
from ledger.settings import DOC_PATH, Settings, declared, markdown_table, with_table

SOURCES = ("ledger", "projections", "trainers", "policies", "serving", "api")
# The only environment reads left outside ledger/settings.py (docs/CONFIGURATION.md says why).
ALLOWED_READS = {
    "api/gunicorn_app.py": 3,  # PROMETHEUS_MULTIPROC_DIR, exported for prometheus_client
    "api/observability.py": 1,  # PROMETHEUS_MULTIPROC_DIR, where /metrics reads every worker
    "ledger/writer_process.py": 4,  # LEDGER_WRITER_SOCKET, from the master to its workers
    "trainers/io.py": 1,  # the variable a training spec names for its warehouse URL
}


def test_the_docs_table_is_the_declaration():
    assert DOC_PATH.read_text() == with_table(DOC_PATH.read_text()), (
        "docs/CONFIGURATION.md differs from ledger/settings.py: "
        "run `python -m ledger.settings --markdown`"
    )


def test_every_field_has_its_own_variable_and_a_meaning():
    names = [spec.metadata["env"] for spec in declared()]
    assert len(names) == len(set(names)) and all(n.startswith("LEDGER_") for n in names)
    assert all(spec.metadata["doc"] for spec in declared())
    assert len(markdown_table().splitlines()) == len(names) + 2


def test_no_setting_turns_the_recording_of_predictions_off():
    assert not [s.name for s in declared() if "record" in s.name or "RECORD" in s.metadata["env"]]


def test_values_are_parsed_by_type_and_defaults_derive_from_home(tmp_path: Path):
    settings = Settings.from_env(
        {
            "LEDGER_HOME": str(tmp_path),
            "LEDGER_GROUP_COMMIT": "off",
            "LEDGER_RATE_LIMIT_PER_SECOND": "2.5",
            "LEDGER_PORT": "9001",
            "LEDGER_WORKERS": "",  # empty: the default
        }
    )
    assert settings.group_commit is False and settings.rate_limit_per_second == 2.5
    assert settings.port == 9001 and settings.workers == 0
    assert settings.database_url == f"sqlite:///{tmp_path / 'ledger.db'}"
    assert settings.secrets_dir == tmp_path / "secrets"
    assert settings.digests_dir == tmp_path / "digests"


def test_overrides_win_over_the_environment():
    settings = Settings.from_env({"LEDGER_DATABASE_URL": "sqlite:///a.db"}, database_url="x://y")
    assert settings.database_url == "x://y"
    assert Settings.from_env({}, database_url=None).database_url == "sqlite:///var/ledger.db"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "LEDGER_RATE_LIMIT_PER_SECOND",
            "abc",
            "LEDGER_RATE_LIMIT_PER_SECOND='abc' is not a number",
        ),
        ("LEDGER_MAX_BATCH_ROWS", "1e3", "LEDGER_MAX_BATCH_ROWS='1e3' is not an integer"),
        ("LEDGER_GROUP_COMMIT", "maybe", "LEDGER_GROUP_COMMIT='maybe' is not a boolean"),
        ("LEDGER_PORT", "70000", "LEDGER_PORT=70000: must be from 1 to 65535"),
        ("LEDGER_AUTH_CACHE_SECONDS", "-1", "LEDGER_AUTH_CACHE_SECONDS=-1.0: must be at least 0"),
        ("LEDGER_LOG_LEVEL", "LOUD", "LEDGER_LOG_LEVEL='LOUD': must be one of"),
        ("LEDGER_MASTER_KEY", "not-hex", "LEDGER_MASTER_KEY=(hidden): must be 64 hex"),
    ],
)
def test_a_malformed_value_is_one_error_naming_the_variable(variable, value, message):
    with pytest.raises(InvalidSetting) as caught:
        Settings.from_env({variable: value})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_malformed_value_stops_the_command_line_with_one_line(monkeypatch):
    from api.cli import main

    monkeypatch.setenv("LEDGER_RATE_LIMIT_PER_SECOND", "abc")
    result = CliRunner().invoke(main, ["state"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "Error: LEDGER_RATE_LIMIT_PER_SECOND='abc' is not a number"
    ]


def test_secrets_stay_out_of_repr_and_errors():
    pepper = b"hunter2".hex()
    settings = Settings(pepper=pepper, api_key="pl_x_hunter2", replay_key="hunter2")
    assert "hunter2" not in repr(settings) and pepper not in repr(settings)
    with pytest.raises(InvalidSetting) as caught:
        Settings.from_env({"LEDGER_MASTER_KEY": "hunter2"})
    assert "hunter2" not in str(caught.value)


def test_a_checked_value_is_refused_however_the_object_is_built():
    with pytest.raises(InvalidSetting, match="LEDGER_THREADS=0"):
        replace(Settings(), threads=0)


def test_no_module_reads_the_environment_beside_the_settings():
    root = Path(__file__).resolve().parents[2]
    found = {}
    for package in SOURCES:
        for path in (root / package).rglob("*.py"):
            reads = len(re.findall(r"os\.environ|os\.getenv|envvar=", path.read_text()))
            name = path.relative_to(root).as_posix()
            if reads and name != "ledger/settings.py":
                found[name] = reads
    assert found == ALLOWED_READS


def test_replay_takes_its_key_from_the_option_or_the_settings(monkeypatch):
    from api.cli import main

    monkeypatch.delenv("LEDGER_REPLAY_KEY", raising=False)
    result = CliRunner().invoke(main, ["replay", "--target", "http://127.0.0.1:1"])
    assert result.exit_code == 2 and "--key or LEDGER_REPLAY_KEY" in result.output
