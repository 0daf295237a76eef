"""Crypto-shredding on both backends: after forget and VACUUM no byte of the subject's data remains."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from ledger.privacy import KEYS_TABLE, trained_subjects_record

SCHEMA = {
    "features": [
        {"name": "customer_id", "type": "category", "personal": True},
        {"name": "full_name", "type": "category", "personal": True},
        {"name": "plan", "type": "category"},
        {"name": "tenure", "type": "number"},
    ],
    "subject_field": "customer_id",
}
SUBJECT = "Subject-Zebulon-7714"
SECRET_NAME = "Zebulon-Quixote-4471"
OTHER = "Subject-Ophelia-2208"
PLAIN_MARKER = "Plainplan-Marker-9912"  # not personal: the scan must find it (a positive control)


def make_deployment(ledger: Ledger, name: str = "churn") -> None:
    ledger.create_deployment(
        name=name,
        task="classification",
        schema=SCHEMA,
        policy={"name": "manual"},
        positive_label="yes",
        outcome_maturity_days=0,
        actor="test",
    )


def predict(
    ledger: Ledger, request_id: str, features: dict[str, Any], deployment: str = "churn"
) -> Prediction:
    """Build a prediction the way the serving path must: seal first, then record."""
    schema = ledger.deployment(deployment).schema
    plain, sealed = ledger.sealer.seal(
        schema, features, deployment=deployment, request_id=request_id
    )
    prediction = Prediction(
        deployment=deployment,
        deployment_version=1,
        request_id=request_id,
        body_digest=request_id,
        features=plain,
        sealed=sealed,
        outputs={"m1": {"value": "yes", "probabilities": None}},
        served_model="m1",
        policy={"name": "manual"},
        leader="m1",
        flags=[],
        scoring={"mode": "alone"},
        actor="key:test",
    )
    ledger.record_predictions([prediction])
    return prediction


def train_on(ledger: Ledger, subjects: list[str]) -> str:
    run_id = ledger.start_training(
        spec_name="churn",
        spec={},
        deployment="churn",
        dataset_ids={},
        features=["plan", "tenure"],
        target="churned",
        algorithm="sklearn.linear_model.LogisticRegression",
        params={},
        code_version={},
        trigger=None,
        actor="test",
    )
    model_id = ledger.finish_training(
        run_id,
        model={
            "name": "churn",
            "artifact_digest": "0" * 64,
            "features": ["plan", "tenure"],
            "algorithm": "lr",
            "task": "classification",
            "classes": ["no", "yes"],
            "actor": "test",
        },
        metrics={},
        artifact_digest="0" * 64,
        reference_profile={},
        trained_subjects=trained_subjects_record(ledger.sealer, subjects),
        actor="test",
    )
    return str(model_id)


def compact(ledger: Ledger) -> None:
    """Make deleted rows physically go: VACUUM (+ WAL truncate) or VACUUM FULL + CHECKPOINT."""
    engine = ledger.engine
    if engine.dialect.name == "sqlite":
        engine.dispose()
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        wait_for_older_transactions(conn)
        for table in sa.inspect(engine).get_table_names():
            conn.exec_driver_sql(f'VACUUM FULL "{table}"')
        conn.exec_driver_sql("CHECKPOINT")


def wait_for_older_transactions(conn: sa.Connection, timeout: float = 30.0) -> None:
    """VACUUM keeps a deleted row while any transaction in the cluster may still see it.

    Other sessions on this shared server (other tests, CREATE DATABASE) can hold the
    horizon back for a moment; wait until none is older than now.
    """
    now = conn.exec_driver_sql("SELECT txid_current()::text::xid").scalar()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        older = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
            "(age(backend_xmin) >= age(%(x)s::xid) OR age(backend_xid) >= age(%(x)s::xid))",
            {"x": now},
        ).scalar()
        if not older:
            return
        time.sleep(0.05)


def table_bytes(engine: sa.Engine) -> bytes:
    """Every column of every row of every table, as bytes (text columns as UTF-8)."""
    chunks = []
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            for row in conn.exec_driver_sql(f'SELECT * FROM "{table}"'):
                chunks.extend(_as_bytes(v) for v in row)
    return b"\x00".join(chunks)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode()


def file_bytes(engine: sa.Engine) -> bytes:
    """The database's files on disk: the SQLite file and its WAL, or PostgreSQL's base/<oid>/."""
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database)
        files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    else:
        with engine.connect() as conn:
            oid = conn.exec_driver_sql(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).scalar()
            data_dir = conn.exec_driver_sql("SHOW data_directory").scalar()
        files = [p for p in (Path(data_dir) / "base" / str(oid)).iterdir() if p.is_file()]
    return b"".join(p.read_bytes() for p in files)


def wrapped_key(engine: sa.Engine, subject_ref: str) -> bytes:
    with engine.connect() as conn:
        return bytes(
            conn.execute(
                sa.text(f"SELECT wrapped_key FROM {KEYS_TABLE} WHERE subject_ref = :s"),
                {"s": subject_ref},
            ).scalar_one()
        )


def count_predictions(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT count(*) FROM ledger_events WHERE topic = 'ledger.domain.predictions:Prediction.Made'"
        ).scalar_one()


def populate(ledger: Ledger) -> tuple[Prediction, Prediction, str]:
    make_deployment(ledger)
    mine = predict(
        ledger,
        "r-1",
        {"customer_id": SUBJECT, "full_name": SECRET_NAME, "plan": PLAIN_MARKER, "tenure": 12},
    )
    predict(
        ledger,
        "r-2",
        {"customer_id": SUBJECT, "full_name": SECRET_NAME, "plan": "basic", "tenure": 13},
    )
    theirs = predict(
        ledger, "r-3", {"customer_id": OTHER, "full_name": "Ophelia", "plan": "pro", "tenure": 2}
    )
    model_id = train_on(ledger, [SUBJECT, OTHER])
    return mine, theirs, model_id


def test_personal_values_never_reach_the_event_store_in_plaintext(ledger: Ledger) -> None:
    mine, _, _ = populate(ledger)
    stored = table_bytes(ledger.engine)
    assert PLAIN_MARKER.encode() in stored
    assert SECRET_NAME.encode() not in stored and SUBJECT.encode() not in stored
    assert ledger.sealer.unseal_for_display(ledger.prediction(mine.id))["full_name"] == SECRET_NAME


def test_after_forget_and_vacuum_no_byte_of_the_subject_remains(ledger: Ledger) -> None:
    mine, theirs, model_id = populate(ledger)
    ref = ledger.sealer.subject_ref(SUBJECT)
    key_bytes = wrapped_key(ledger.engine, ref)
    compact(ledger)
    assert key_bytes in file_bytes(ledger.engine)  # the scan sees keys while they exist
    predictions_before = count_predictions(ledger)

    result = ledger.forget_subject(SUBJECT, reason="GDPR art. 17 request #42", actor="key:admin")
    compact(ledger)

    assert result.models == [model_id] and result.deployments == ["churn"]
    stored, files = table_bytes(ledger.engine), file_bytes(ledger.engine)
    assert PLAIN_MARKER.encode() in stored and PLAIN_MARKER.encode() in files
    for needle in (SECRET_NAME.encode(), SUBJECT.encode(), key_bytes):
        assert needle not in stored and needle not in files
    assert ledger.sealer.unseal_for_display(ledger.prediction(mine.id))["full_name"] == "erased"
    assert ledger.sealer.unseal_for_display(ledger.prediction(theirs.id))["full_name"] == "Ophelia"
    assert count_predictions(ledger) == predictions_before


def test_the_chain_over_ciphertext_verifies_after_an_erasure(ledger: Ledger) -> None:
    from ledger.notary import advance, verify_database

    populate(ledger)
    advance(ledger.engine)
    ledger.forget_subject(SUBJECT, reason="request", actor="key:admin")
    compact(ledger)
    advance(ledger.engine)
    assert verify_database(ledger.engine).ok


def test_the_forget_event_holds_no_personal_data(ledger: Ledger) -> None:
    populate(ledger)
    ledger.forget_subject(SUBJECT, reason="request", actor="key:admin")
    with ledger.engine.connect() as conn:
        state = conn.exec_driver_sql(
            "SELECT state FROM ledger_events WHERE topic = 'ledger.domain.subjects:Subject.Forgotten'"
        ).scalar_one()
    assert SUBJECT.encode() not in bytes(state) and ledger.sealer.subject_ref(
        SUBJECT
    ).encode() in bytes(state)


def test_forgetting_twice_records_nothing_the_second_time(ledger: Ledger) -> None:
    populate(ledger)
    first = ledger.forget_subject(SUBJECT, reason="request", actor="key:admin")
    head = count_events(ledger)
    second = ledger.forget_subject(SUBJECT, reason="request again", actor="key:admin")
    assert not first.already_forgotten and second.already_forgotten
    assert count_events(ledger) == head


def test_an_unknown_subject_is_not_found(ledger: Ledger) -> None:
    from ledger.errors import NotFound

    populate(ledger)
    with pytest.raises(NotFound):
        ledger.forget_subject("nobody-ever-seen", reason="request", actor="key:admin")


def test_a_subject_only_in_training_data_is_forgotten_with_its_models(ledger: Ledger) -> None:
    make_deployment(ledger)
    model_id = train_on(ledger, ["only-trained-on"])
    result = ledger.forget_subject("only-trained-on", reason="request", actor="key:admin")
    assert result.models == [model_id] and result.deployments == []


def count_events(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM ledger_events").scalar_one()


def project_all(ledger: Ledger) -> None:
    from projections.registry import ALL
    from projections.runner import Runner

    for projection in ALL:
        Runner(ledger.engine, projection).catch_up()


def read_table_totals(engine: sa.Engine) -> dict[str, int]:
    """Rows of every read table, and the cubes' summed counts (a forget adds `erased` cells, not counts)."""
    totals = {}
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            if table.startswith("pj_") and not table.startswith("pj_cubes"):
                totals[table] = conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar_one()
            if table.startswith("pj_cubes"):
                totals[f"{table}.n"] = conn.exec_driver_sql(
                    f'SELECT sum(n) FROM "{table}"'
                ).scalar_one()
    return totals


def test_read_tables_hold_no_personal_plaintext_and_keep_their_totals(ledger: Ledger) -> None:
    mine, theirs, _ = populate(ledger)
    for prediction in (mine, theirs):
        ledger.record_outcome(prediction.id, "yes", None, actor="key:test")
    project_all(ledger)
    totals = read_table_totals(ledger.engine)
    assert any(name.startswith("pj_predictions") for name in totals)

    ledger.forget_subject(SUBJECT, reason="request", actor="key:admin")
    project_all(ledger)
    compact(ledger)

    assert read_table_totals(ledger.engine) == totals
    stored, files = table_bytes(ledger.engine), file_bytes(ledger.engine)
    assert PLAIN_MARKER.encode() in stored
    for needle in (SECRET_NAME.encode(), SUBJECT.encode()):
        assert needle not in stored and needle not in files
