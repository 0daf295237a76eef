"""Sealing personal fields: what leaves the plaintext, what opens, what reads as erased."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger import ids
from ledger.database import create_engine
from ledger.errors import InvalidCommand, StorageUnavailable
from ledger.privacy import (
    ERASED,
    DatabaseKeyStore,
    Forgotten,
    KeyCache,
    LocalMasterKey,
    MasterKeyMismatch,
    Sealer,
    subject_ref,
    trained_subjects_record,
)

SCHEMA = {
    "features": [
        {"name": "email", "type": "category", "personal": True},
        {"name": "age", "type": "integer", "personal": True},
        {"name": "plan", "type": "category"},
    ],
    "subject_field": "email",
}
ROW = {"email": "zebulon@example.org", "age": 44, "plan": "pro"}


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return create_engine(f"sqlite:///{tmp_path / 'keys.db'}")


def make_sealer(engine: sa.Engine, master: bytes | None = None) -> Sealer:
    store = DatabaseKeyStore(engine, LocalMasterKey(master or secrets.token_bytes(32)), KeyCache())
    store.create_table()
    return Sealer(store, b"pepper")


def seal(sealer: Sealer, row: dict, request_id: str = "r-1") -> tuple[dict, dict | None]:
    return sealer.seal(SCHEMA, row, deployment="churn", request_id=request_id)


def test_personal_fields_and_the_subject_leave_the_plaintext(engine: sa.Engine) -> None:
    plain, sealed = seal(make_sealer(engine), ROW)
    assert plain == {"plan": "pro"}
    assert sealed is not None and sealed["fields"] == ["email", "age"]
    assert "zebulon" not in str(sealed)


def test_a_sealed_record_opens_to_the_values_it_hid(engine: sa.Engine) -> None:
    sealer = make_sealer(engine)
    _, sealed = seal(sealer, ROW)
    assert sealer.unseal(sealed) == {"email": "zebulon@example.org", "age": 44}


def test_a_destroyed_key_reads_as_erased(engine: sa.Engine) -> None:
    sealer = make_sealer(engine)
    plain, sealed = seal(sealer, ROW)
    assert sealer.keys.destroy(sealer.subject_ref(ROW["email"])) == 1
    assert sealer.unseal(sealed) is ERASED
    shown = sealer.display(plain, sealed, ids.prediction_id("churn", "r-1"))
    assert shown == {"plan": "pro", "email": "erased", "age": "erased"}


def test_a_deployment_without_personal_features_is_left_alone(engine: sa.Engine) -> None:
    schema = {"features": [{"name": "plan", "type": "category"}]}
    assert make_sealer(engine).seal(schema, {"plan": "pro"}, deployment="d", request_id="r") == (
        {"plan": "pro"},
        None,
    )


def test_personal_values_without_a_subject_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(InvalidCommand, match="need a subject"):
        seal(make_sealer(engine), {"email": None, "age": 44, "plan": "pro"})


def test_a_row_without_any_personal_value_needs_no_subject(engine: sa.Engine) -> None:
    row = {"email": None, "age": None, "plan": "pro"}
    assert seal(make_sealer(engine), row) == (row, None)


def test_a_sealed_record_moved_to_another_prediction_does_not_open(engine: sa.Engine) -> None:
    sealer = make_sealer(engine)
    plain, sealed = seal(sealer, ROW, "r-1")
    with pytest.raises(MasterKeyMismatch):
        sealer.display(plain, sealed, ids.prediction_id("churn", "r-2"))


def test_tampered_ciphertext_is_an_error_not_an_erasure(engine: sa.Engine) -> None:
    sealer = make_sealer(engine)
    _, sealed = seal(sealer, ROW)
    tampered = {**sealed, "ciphertext": sealed["ciphertext"][:-4] + "AAA="}
    with pytest.raises(MasterKeyMismatch):
        sealer.unseal(tampered)


def test_another_master_key_is_a_configuration_error_not_an_erasure(engine: sa.Engine) -> None:
    _, sealed = seal(make_sealer(engine), ROW)
    with pytest.raises(MasterKeyMismatch, match="another master key"):
        make_sealer(engine).unseal(sealed)


def test_subject_refs_are_keyed_hashes_that_never_contain_the_id() -> None:
    ref = subject_ref(b"pepper", "zebulon@example.org")
    assert ref == subject_ref(b"pepper", "zebulon@example.org") and len(ref) == 64
    assert ref != subject_ref(b"other pepper", "zebulon@example.org")
    assert "zebulon" not in ref


def test_each_deployment_seals_a_subject_under_its_own_key(engine: sa.Engine) -> None:
    sealer = make_sealer(engine)
    sealer.seal(SCHEMA, ROW, deployment="a", request_id="r")
    sealer.seal(SCHEMA, ROW, deployment="b", request_id="r")
    assert sealer.keys.scopes(sealer.subject_ref(ROW["email"])) == ["a", "b"]


def test_a_batch_creates_each_subjects_key_once(engine: sa.Engine) -> None:
    sealer = make_sealer(engine)
    rows = [{**ROW, "email": f"s{i % 10}@example.org"} for i in range(100)]
    sealed = sealer.seal_many(
        SCHEMA, rows, deployment="churn", request_ids=[f"b#{i}" for i in range(100)]
    )
    assert len(sealer.keys.subjects_in("churn")) == 10
    assert sealer.unseal(sealed[42][1]) == {"email": "s2@example.org", "age": 44}


def test_the_key_cache_is_bounded_and_forgets_on_expiry() -> None:
    cache = KeyCache(max_keys=2, ttl_seconds=60)
    for name in ("a", "b", "c"):
        cache.put((name, ""), b"k")
    assert cache.get(("a", "")) is None and cache.get(("c", "")) == b"k"
    expiring = KeyCache(ttl_seconds=0.0)
    expiring.put(("a", ""), b"k")
    assert expiring.get(("a", "")) is None


def test_a_key_store_that_cannot_write_refuses_with_storage_unavailable(tmp_path: Path) -> None:
    sealer = make_sealer(create_engine(f"sqlite:///{tmp_path / 'k.db'}"))
    sealer.keys.engine = create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    with pytest.raises(StorageUnavailable):
        seal(sealer, ROW)


def test_training_records_refs_not_ids(engine: sa.Engine) -> None:
    record = trained_subjects_record(make_sealer(engine), ["zebulon@example.org", "x", None, "x"])
    assert record["count"] == 2 and "zebulon" not in str(record)


def test_sealing_a_row_with_a_cached_key_takes_microseconds(engine: sa.Engine) -> None:
    sealer = make_sealer(engine)
    seal(sealer, ROW)
    n = 2000
    started = time.perf_counter()
    for i in range(n):
        seal(sealer, ROW, f"r-{i}")
    per_seal_us = (time.perf_counter() - started) / n * 1e6
    print(f"seal: {per_seal_us:.1f} µs a row")
    assert per_seal_us < 500  # generous: a noisy 2-core box measured ~30-40 µs


def test_personal_values_hash_apart_from_subject_refs(engine: sa.Engine) -> None:
    sealer = make_sealer(engine)
    assert sealer.value_hash("email", "a@b.c") != sealer.subject_ref("a@b.c")
    assert sealer.value_hash("email", "a@b.c") != sealer.value_hash("login", "a@b.c")


def test_a_subjects_ready_cipher_serves_only_its_key_and_only_as_long_as_the_key_cache(
    engine: sa.Engine,
) -> None:
    sealer = make_sealer(engine)
    ref = sealer.subject_ref(ROW["email"])
    cache = sealer._ciphers
    first = cache.get(ref, "churn", b"k" * 32, deadline=1.0)
    assert cache.get(ref, "churn", b"k" * 32, deadline=2.0) is first and first.deadline == 2.0
    assert cache.get(ref, "churn", b"n" * 32, deadline=2.0) is not first  # a re-created key misses
    _, sealed = seal(sealer, ROW)
    assert sealer.destroy(ref) == 1 and not [p for p in cache._ready if p[0] == ref]
    cache.max_age = 0.0
    again = cache.get(ref, "churn", b"k" * 32, deadline=1.0)
    assert cache.get(ref, "churn", b"k" * 32, deadline=1.0) is not again  # expired at once
    assert sealer.unseal(sealed) is ERASED


def test_a_batchs_body_digests_are_each_rows_body_digest(engine: sa.Engine) -> None:
    sealer = make_sealer(engine)
    rows = [
        {**ROW, "email": [f"s{i % 3}@example.org", None][i % 4 == 3], "age": [44, None][i % 4 == 3]}
        for i in range(12)
    ]
    request_ids = [f"b#{i}" for i in range(12)]
    records = [
        r for _, r in sealer.seal_many(SCHEMA, rows, deployment="churn", request_ids=request_ids)
    ]
    assert [r is None for r in records] == [i % 4 == 3 for i in range(12)]
    held = sealer.body_digests(rows, records)  # the keys this sealer holds for the batch
    assert held == [sealer.body_digest(row, r) for row, r in zip(rows, records, strict=True)]
    records = [
        r for _, r in sealer.seal_many(SCHEMA, rows, deployment="churn", request_ids=request_ids)
    ]
    assert [sealer.body_digest(row, r) for row, r in zip(rows, records, strict=True)] == held
    assert sealer.body_digests(rows, records) == held  # taken already: from the key store
    assert len(set(held)) == 4 and all(
        d.startswith("k1:") for d, r in zip(held, records, strict=True) if r
    )
    sealer.destroy(sealer.subject_ref("s1@example.org"))
    with pytest.raises(Forgotten):
        sealer.body_digests(rows, records)
