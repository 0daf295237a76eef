"""Compliance exports: pinned to a position, the same bytes every time and on every backend."""

from __future__ import annotations

import io
from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from ledger.application import Ledger
from ledger.clone import clone_ledger
from ledger.domain.predictions import Prediction
from ledger.timeline import head_position
from projections.export import ExportRequest, PredictionExport, digest_stream, write_export
from tests.conftest import drop_postgres_database, fresh_postgres_database


def _populate(ledger: Ledger) -> str:
    ledger.create_deployment(
        name="churn", task="classification", schema={"features": [{"name": "x", "type": "number"}]},
        policy={"name": "manual"}, positive_label=1, outcome_maturity_days=0, actor="test",
    )
    model_id = str(ledger.register_model(
        name="m", artifact_digest="ab" * 32, features=["x"], algorithm="sklearn.linear_model.LogisticRegression",
        task="classification", classes=[0, 1], training_run_id=None, provenance="declared", declared={},
        actor="test",
    ))
    ledger.add_model("churn", model_id, "test")
    predictions = [
        Prediction(
            deployment="churn", deployment_version=3, request_id=f"r{i}", body_digest=str(i),
            features={"x": i / 10}, sealed=None,
            outputs={model_id: {"value": i % 2, "probabilities": {"0": 0.25, "1": 0.75}}},
            served_model=model_id, policy={"name": "manual"}, leader=model_id, flags=[],
            scoring={"mode": "batch", "batch_id": "b", "row": i, "rows": 30}, actor="key:abc",
        )
        for i in range(30)
    ]
    ledger.record_predictions(predictions)
    for p in predictions[:10]:
        ledger.record_outcome(p.id, actual=1, observed_at=None, actor="key:abc")
    return model_id


def _export(ledger: Ledger, fmt: str) -> bytes:
    request = ExportRequest(start_us=0, end_us=2**62, position=head_position(ledger.engine), format=fmt)
    rows = PredictionExport(ledger, request, chain_hash=lambda _p: None).rows()
    return b"".join(write_export(rows, fmt))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_the_same_export_twice_gives_identical_bytes(ledger, fmt):
    _populate(ledger)
    first, second = _export(ledger, fmt), _export(ledger, fmt)
    assert first == second
    assert digest_stream(iter([first])) == digest_stream(iter([second]))


def test_an_export_holds_every_prediction_with_its_outcome_as_of_its_position(ledger):
    model_id = _populate(ledger)
    table = pq.read_table(io.BytesIO(_export(ledger, "parquet")))
    rows = table.to_pylist()
    assert len(rows) == 30
    assert [r["position"] for r in rows] == sorted(r["position"] for r in rows)
    assert sum(1 for r in rows if r["outcome"] == "1") == 10
    assert {r["served_model"] for r in rows} == {model_id}
    assert table.schema.field("recorded_at").type == "string"

    pinned = rows[-1]["position"]  # before any outcome was recorded
    request = ExportRequest(start_us=0, end_us=2**62, position=pinned, format="jsonl")
    assert all('"outcome":""' in line for line in
               b"".join(write_export(PredictionExport(ledger, request, lambda _p: None).rows(), "jsonl"))
               .decode().splitlines())


def test_sqlite_and_postgresql_give_the_same_bytes_for_the_same_ledger(settings, tmp_path):
    sqlite = Ledger(replace(settings, database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    url = fresh_postgres_database()
    postgres = Ledger(replace(settings, database_url=url))
    try:
        _populate(sqlite)
        clone_ledger(sqlite.engine, postgres.engine, head_position(sqlite.engine))
        for fmt in ("csv", "jsonl", "parquet"):
            assert _export(sqlite, fmt) == _export(postgres, fmt)
    finally:
        sqlite.close()
        postgres.close()
        drop_postgres_database(url)
