"""The provenance read path: one query per prediction, caches only of what cannot change."""

from __future__ import annotations

from uuid import UUID

from ledger.notary.store import advance, iter_chain_rows
from ledger.read_cache import ReadCache, read_prediction
from tests.integration.api_support import ROW, deployment_with_models, make_api, predict


def test_a_lookup_is_the_repository_aggregate_with_its_position_and_chain(ledger) -> None:
    api = make_api(ledger)
    deployment_with_models(api)
    pid = predict(api, {"features": ROW, "request_id": "r-1"}).json["prediction_id"]
    api.call("POST", "/v1/outcomes", role="predictor", json={"prediction_id": pid, "actual": "no"})
    now = ledger.prediction(pid)
    record = read_prediction(ledger.engine, ledger.mapper, now.id)
    assert record is not None and record.prediction.__dict__ == now.__dict__
    assert record.chain_hash is None  # no notary yet: pending
    before = read_prediction(ledger.engine, ledger.mapper, now.id, record.position)
    assert (
        before is not None and before.prediction.outcomes == [] and before.prediction.version == 1
    )
    assert read_prediction(ledger.engine, ledger.mapper, now.id, record.position - 1) is None
    advance(ledger.engine)
    chained = api.call("GET", f"/v1/predictions/{pid}", role="auditor").json["chain"]
    [(_, _, expected)] = list(iter_chain_rows(ledger.engine, record.position, record.position))
    assert chained == {"status": "chained", "hash": expected.hex()}


def test_a_running_training_run_is_read_again_until_it_is_final(ledger) -> None:
    run_id = ledger.start_training(
        spec_name="s",
        spec={},
        deployment="d",
        dataset_ids={},
        features=["a"],
        target="y",
        algorithm="lr",
        params={},
        code_version={},
        trigger=None,
        actor="test",
    )
    assert ledger.training_run(run_id).status == "running"
    ledger.fail_training(run_id, error="boom", actor="test")
    assert ledger.training_run(run_id).status == "failed"
    assert ledger.training_run(run_id) is ledger.training_run(run_id)  # final: cached


def test_the_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = ReadCache(max_entries=2)
    for key in ("a", "b"):
        cache.get(key, lambda key=key: key.upper())
    cache.get("a", lambda: "never")  # a hit refreshes "a"
    cache.get("c", lambda: "C")
    assert cache.get("a", lambda: "again") == "A"
    assert cache.get("b", lambda: "reloaded") == "reloaded"


def test_a_lookup_survives_its_pooled_connection_being_killed(ledger) -> None:
    api = make_api(ledger)
    deployment_with_models(api)
    pid = UUID(predict(api, {"features": ROW, "request_id": "r-1"}).json["prediction_id"])
    assert (
        read_prediction(ledger.engine, ledger.mapper, pid) is not None
    )  # pools an unpinged connection
    if ledger.engine.dialect.name != "postgresql":
        return  # SQLite has no server to lose
    with ledger.engine.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    again = read_prediction(ledger.engine, ledger.mapper, pid)
    assert again is not None and again.prediction.id == pid
