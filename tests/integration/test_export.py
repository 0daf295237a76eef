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
        name="churn",
        task="classification",
        schema={"features": [{"name": "x", "type": "number"}]},
        policy={"name": "manual"},
        positive_label=1,
        outcome_maturity_days=0,
        actor="test",
    )
    model_id = str(
        ledger.register_model(
            name="m",
            artifact_digest="ab" * 32,
            features=["x"],
            algorithm="sklearn.linear_model.LogisticRegression",
            task="classification",
            classes=[0, 1],
            training_run_id=None,
            provenance="declared",
            declared={},
            actor="test",
        )
    )
    ledger.add_model("churn", model_id, "test")
    predictions = [
        Prediction(
            deployment="churn",
            deployment_version=3,
            request_id=f"r{i}",
            body_digest=str(i),
            features={"x": i / 10},
            sealed=None,
            outputs={model_id: {"value": i % 2, "probabilities": {"0": 0.25, "1": 0.75}}},
            served_model=model_id,
            policy={"name": "manual"},
            leader=model_id,
            flags=[],
            scoring={"mode": "batch", "batch_id": "b", "row": i, "rows": 30},
            actor="key:abc",
        )
        for i in range(30)
    ]
    ledger.record_predictions(predictions)
    for p in predictions[:10]:
        ledger.record_outcome(p.id, actual=1, observed_at=None, actor="key:abc")
    return model_id


def _export(ledger: Ledger, fmt: str) -> bytes:
    request = ExportRequest(
        start_us=0, end_us=2**62, position=head_position(ledger.engine), format=fmt
    )
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
    assert all(
        '"outcome":""' in line
        for line in b"".join(
            write_export(PredictionExport(ledger, request, lambda _p: None).rows(), "jsonl")
        )
        .decode()
        .splitlines()
    )


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


def test_ledger_export_writes_a_file_and_a_manifest_that_verifies(ledger, tmp_path, monkeypatch):
    import hashlib
    import json
    import time
    from datetime import UTC, datetime, timedelta

    from click.testing import CliRunner

    from api.cli import main
    from ledger.notary import (
        Digest,
        create_signing_key,
        default_key_path,
        load_public_key,
        verify_database,
    )
    from ledger.notary.service import public_key_path
    from ledger.notary.signing import signature_valid

    _populate(ledger)
    create_signing_key(ledger, default_key_path(ledger.settings), actor="test")
    monkeypatch.setenv("LEDGER_HOME", str(ledger.settings.home))
    out = tmp_path / "out"

    def export(to: str):
        return CliRunner().invoke(
            main,
            [
                "--db",
                ledger.settings.database_url,
                "export",
                "--from",
                "2020-01-01",
                "--to",
                to,
                "--format",
                "jsonl",
                "--out",
                str(out),
            ],
        )

    refused = export("2099-01-01")
    assert refused.exit_code != 0 and "future" in refused.output

    end = datetime.now(UTC) + timedelta(milliseconds=200)
    time.sleep(0.3)  # the period must be closed before it can be exported
    result = export(end.isoformat())
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    [entry] = manifest["files"]
    content = (out / entry["name"]).read_bytes()
    assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    assert len(content.splitlines()) == 30

    digest = Digest.from_json(manifest["digest"])
    public = load_public_key(public_key_path(default_key_path(ledger.settings)))
    assert digest.position == manifest["position"] and signature_valid(digest, public)
    assert verify_database(ledger.engine, [digest], public).ok

    with ledger.engine.connect() as conn:
        topics = [t for (t,) in conn.exec_driver_sql("SELECT topic FROM ledger_events ORDER BY id")]
    assert topics[-1] == "ledger.domain.audits:Export.Recorded"


def test_the_export_endpoint_streams_the_same_bytes_its_manifest_names(ledger):
    import hashlib
    import time
    from datetime import UTC, datetime, timedelta

    from tests.integration.api_support import make_api

    _populate(ledger)
    api = make_api(ledger)
    end = (datetime.now(UTC) + timedelta(milliseconds=200)).isoformat()
    time.sleep(0.3)
    params = {"from": "2020-01-01", "to": end, "format": "csv"}
    body = api.call("GET", "/v1/exports/predictions", role="auditor", params=params)
    assert body.status_code == 200, body.text
    assert body.headers["content-type"].startswith("text/csv")
    manifest = api.call(
        "GET", "/v1/exports/predictions", role="auditor", params={**params, "manifest": "true"}
    )
    assert manifest.json["files"][0]["sha256"] == hashlib.sha256(body.content).hexdigest()
    assert (
        api.call("GET", "/v1/exports/predictions", role="predictor", params=params).status_code
        == 403
    )
    bad = api.call(
        "GET", "/v1/exports/predictions", role="auditor", params={**params, "format": "xml"}
    )
    assert bad.status_code == 400 and bad.json["code"] == "invalid_parameter"
