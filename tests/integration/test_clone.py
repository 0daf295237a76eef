"""A clone holds exactly the events up to its instant, and continues above them."""

from __future__ import annotations

import pytest

from ledger.application import Ledger
from ledger.clone import clone_ledger
from ledger.errors import Conflict


def _deployment(ledger: Ledger, name: str) -> None:
    ledger.create_deployment(
        name=name,
        task="classification",
        schema={"features": [{"name": "x", "type": "number"}]},
        policy={"name": "manual"},
        positive_label=1,
        outcome_maturity_days=0,
        actor="test",
    )


@pytest.fixture
def target(parallel_ledger):
    return parallel_ledger


def _rows(ledger: Ledger) -> list[tuple]:
    with ledger.engine.connect() as conn:
        return [
            (r.id, str(r.topic), bytes(r.state), r.recorded_at, r.originator_version)
            for r in conn.exec_driver_sql(
                "SELECT id, topic, state, recorded_at, originator_version FROM ledger_events ORDER BY id"
            )
        ]


def test_clone_copies_events_up_to_a_position_unchanged_and_continues_above(ledger, target):
    _deployment(ledger, "a")
    digest = ledger.artifacts.put(b"model-bytes")
    ledger.register_model(
        name="m",
        artifact_digest=digest,
        features=["x"],
        algorithm="t",
        task="classification",
        classes=[0, 1],
        training_run_id=None,
        provenance="declared",
        declared={},
        actor="test",
    )
    cut = _rows(ledger)[-1][0]
    _deployment(ledger, "b")

    report = clone_ledger(ledger.engine, target.engine, cut)

    assert report.events == 2 and report.artifacts == 1
    assert _rows(target) == _rows(ledger)[:2]
    assert target.artifacts.get(digest) == b"model-bytes"
    _deployment(target, "c")
    after = _rows(target)[-1]
    assert after[0] > cut and after[3] >= _rows(ledger)[1][3]
    assert target.deployment("a").name == "a"


def test_clone_refuses_a_target_that_holds_events(ledger, target):
    _deployment(ledger, "a")
    _deployment(target, "z")
    with pytest.raises(Conflict):
        clone_ledger(ledger.engine, target.engine, 10)


def test_a_clone_verifies_and_its_chain_head_equals_production_at_that_position(ledger, target):
    from ledger.notary import advance, iter_chain_rows, notary_head, verify_database

    for name in ("a", "b", "c"):
        _deployment(ledger, name)
    cut = _rows(ledger)[1][0]
    clone_ledger(ledger.engine, target.engine, cut)

    advance(ledger.engine)
    advance(target.engine)
    [(_, _, production_hash)] = list(iter_chain_rows(ledger.engine, cut, cut))
    position, clone_hash, _ = notary_head(target.engine)
    assert (position, clone_hash) == (cut, production_hash)
    assert verify_database(target.engine).ok


def test_a_clone_holds_every_artifact_its_events_name_and_serves_with_flags(ledger, target):
    import sqlalchemy as sa

    from ledger.artifacts import artifacts_table
    from policies.quality_windows import reference_for
    from tests.integration.api_support import make_api
    from tests.integration.test_api_trained_models import ROW, deploy

    deploy(make_api(ledger), "churn_classifier.yaml", "classification")
    with ledger.engine.connect() as conn:
        stored = set(conn.execute(sa.select(artifacts_table.c.digest)).scalars())
    assert len(stored) == 3  # the model, its outlier detector, its explanation background

    report = clone_ledger(ledger.engine, target.engine, _rows(ledger)[-1][0])

    assert report.artifacts == 3
    for digest in stored:
        assert target.artifacts.get(digest) == ledger.artifacts.get(digest)
    reference = reference_for(target, target.deployment("churn"))
    assert reference is not None and reference.scorer is not None  # the detector loads
    made = make_api(target).call(
        "POST",
        "/v1/deployments/churn/predictions",
        role="predictor",
        json={"features": {**ROW, "region": "atlantis"}, "request_id": "r-1"},
    )
    assert made.status_code == 201, made.text
    assert "unseen_category:region" in made.json["flags"]
