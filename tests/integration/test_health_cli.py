"""The health verbs of the command line, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
from click.testing import CliRunner

from api.cli import main
from ledger import timeline
from tests.integration import health_support
from tests.integration.health_support import demo_rows

churn = health_support.churn  # the fixture


def ledger_cli(url: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_declare_report_and_a_health_pass_flag_a_short_and_an_empty_hour(database_url, monkeypatch):
    assert "1000 per 3600 s" in ledger_cli(
        database_url, "feeds", "declare", "transactions", "--expected", "1000"
    )
    ledger_cli(database_url, "feeds", "report", "transactions", "300")
    later = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    refused = CliRunner().invoke(main, ["--db", database_url, "health-pass", "--now", f"{later}"])
    assert refused.exit_code != 0 and "--now" in refused.output and "future" in refused.output
    assert "Traceback" not in refused.output

    two_hours_on = timeline.now_micros() + 2 * 3600 * 10**6  # as if two hours had passed
    monkeypatch.setattr(timeline, "now_micros", lambda: two_hours_on)
    result = json.loads(ledger_cli(database_url, "health-pass", "--now", later.isoformat()))

    assert [(p["received"], p["flags"]) for p in result["closed_periods"]] == [
        (300, ["short"]),
        (0, ["none"]),
    ]


def test_quality_check_of_a_drifted_csv_names_the_drifted_features(churn, tmp_path):
    path = tmp_path / "batch.csv"
    pd.DataFrame(demo_rows(200, seed=8, drift=True)).to_csv(path, index=False)

    result = json.loads(
        ledger_cli(churn.settings.database_url, "quality-check", str(path), "--deployment", "churn")
    )

    assert result["rows"] == 200
    assert {"drift_psi:income", "unseen_categories:region"} <= set(result["failing"])


def test_quality_check_counts_bad_rows_and_bad_input_is_one_line(churn, tmp_path):
    rows = demo_rows(4, seed=9, drift=False)
    rows[1]["tenure_months"] = "seven"
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(rows))
    url = churn.settings.database_url

    result = json.loads(ledger_cli(url, "quality-check", str(path), "--deployment", "churn"))

    assert result["bad_rows"] == 1 and "schema" in result["failing"]
    assert result["row_errors"] == ["row 1: tenure_months: Not a valid integer."]
    (tmp_path / "broken.json").write_text("[{")
    (tmp_path / "object.json").write_text('{"rows": 1}')
    for name, deployment in (("broken", "churn"), ("object", "churn"), ("batch", "nope")):
        refused = CliRunner().invoke(
            main,
            [
                "--db",
                url,
                "quality-check",
                str(tmp_path / f"{name}.json"),
                "--deployment",
                deployment,
            ],
        )
        assert refused.exit_code == 1 and refused.exception is not None
        assert "Traceback" not in refused.output and len(refused.output.splitlines()) == 1, (
            refused.output
        )
