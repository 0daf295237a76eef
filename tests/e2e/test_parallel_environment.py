"""The production-parallel environment as a whole, over real HTTP and the real CLI.

Clone a ledger with a trained model up to an instant, serve the clone, replay a labelled CSV
into it, and compare: only the replayed predictions count, not the history both share.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ledger.application import Ledger
from ledger.settings import Settings
from ledger.timeline import iso, now_micros
from policies.health import run_health_pass
from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.e2e.server import EXAMPLE_ROW, REPO, Server
from tests.integration.api_support import make_api
from trainers.record import train_and_record
from trainers.schema import deployment_for

pytestmark = pytest.mark.slow
SPEC = REPO / "examples" / "specs" / "churn_classifier.yaml"
ROW = EXAMPLE_ROW
REPLAYED = 6


def production(home: Path, url: str) -> tuple[str, str, int]:
    """A trained deployment with history before and after the clone's instant; the key and T."""
    ledger = Ledger(Settings(home=home, database_url=url, group_commit=False))
    try:
        spec = yaml.safe_load(SPEC.read_text())
        spec["source"] = {**spec["source"], "rows": 400}
        ledger.create_deployment(
            **{**deployment_for(spec, name="churn", outcome_maturity_days=0), "actor": "e2e"}
        )
        train_and_record(ledger, spec, actor="e2e", deployment="churn")
        api = make_api(ledger)

        def predict(request_id: str) -> None:
            body = {"features": ROW, "request_id": request_id}
            made = api.call("POST", "/v1/deployments/churn/predictions", "predictor", json=body)
            assert made.status_code == 201, made.text

        for i in range(3):
            predict(f"shared-{i}")  # history the clone shares
        time.sleep(0.01)
        instant = iso(now_micros())
        time.sleep(0.01)
        for i in range(2):
            predict(f"after-{i}")  # production's own, past the clone's instant
        return api.keys["predictor"], instant, 2
    finally:
        ledger.close()


def labelled_csv(path: Path) -> Path:
    rows = [
        {
            **ROW,
            "customer_id": f"c-{i}",
            "monthly_charges": 50.0 + 5 * i,
            "event_time": f"2026-11-02T10:00:{i:02d}Z",
            "churned": i % 2,
            "known_at": f"2026-11-02T10:00:{i + 2:02d}Z",
        }
        for i in range(REPLAYED)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def urls(request: pytest.FixtureRequest, tmp_path: Path):
    """Production's database and the clone's, empty, on one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'prod.db'}", f"sqlite:///{tmp_path / 'clone.db'}"
        return
    made = [fresh_postgres_database(), fresh_postgres_database()]
    try:
        yield tuple(made)
    finally:
        for url in made:
            drop_postgres_database(url)


def test_clone_serve_replay_and_compare_count_only_the_replayed_predictions(
    tmp_path: Path, urls: tuple[str, str]
):
    started = time.monotonic()
    prod_url, clone_url = urls
    key, instant, production_only = production(tmp_path, prod_url)
    server = Server(tmp_path, clone_url)  # the same home: the same master key unseals

    cloned = server.cli("--db", prod_url, "clone", "--as-of", instant, "--to", clone_url)
    assert cloned.returncode == 0, cloned.stderr
    assert "and 3 artifacts" in cloned.stdout  # model, outlier detector, background
    server.start()
    try:
        replayed = server.cli(
            *["--db", prod_url, "replay", "--target", server.url, "--key", key],
            *["--file", str(labelled_csv(tmp_path / "rows.csv")), "--deployment", "churn"],
            *["--label", "churned", "--label-time-column", "known_at", "--speed", "10"],
        )
        assert replayed.returncode == 0, replayed.stderr + server.log_tail()
        stats = json.loads(replayed.stdout.splitlines()[-1])
        assert stats["sent"] == 2 * REPLAYED and stats["statuses"] == {"201": 2 * REPLAYED}

        body = {"features": {**ROW, "region": "atlantis"}, "request_id": "flagged"}
        made = server.call("POST", "/v1/deployments/churn/predictions", body, key=key)
        assert made.status == 201 and "unseen_category:region" in made.json["flags"]
    finally:
        server.stop()
    clone = Ledger(Settings(home=tmp_path, database_url=clone_url, group_commit=False))
    try:
        checks = run_health_pass(clone, flush=True)["quality_checks"]  # loads the detector
        assert checks and checks[0]["deployment"] == "churn"
    finally:
        clone.close()
    assert "no artifact with digest" not in server.log.read_text()

    compared = server.cli("--db", prod_url, "compare", "--candidate", clone_url, "--since", instant)
    assert compared.returncode == 0, compared.stderr
    report = json.loads(compared.stdout)
    assert report["compared"] == 0 and report["only_baseline"] == production_only
    assert report["only_candidate"] == REPLAYED + 1  # the replayed rows and the flagged one
    [(name, metrics)] = report["model_metrics"].items()  # the replayed labels, on the clone
    assert name.startswith("candidate:") and metrics["count"] == REPLAYED
    assert time.monotonic() - started < 60
