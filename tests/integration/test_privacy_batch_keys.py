"""Batches of new subjects: keys made in one insert, digests without going back to the store."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ledger.database import create_engine
from ledger.privacy import (
    DatabaseKeyStore,
    Forgotten,
    KeyCache,
    LocalMasterKey,
    Sealer,
    subject_ref,
)

SCHEMA = {
    "features": [
        {"name": "customer", "type": "category", "personal": True},
        {"name": "x", "type": "number"},
    ],
    "subject_field": "customer",
}


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def store(engine: sa.Engine, master: bytes, ttl: float = 60.0) -> DatabaseKeyStore:
    keys = DatabaseKeyStore(engine, LocalMasterKey(master), KeyCache(ttl_seconds=ttl))
    keys.create_table()
    return keys


def statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    return seen


def test_new_subjects_of_a_batch_get_their_keys_in_one_insert(engine: sa.Engine) -> None:
    master = secrets.token_bytes(32)
    keys = store(engine, master)
    pairs = [(f"{i:064x}", "churn") for i in range(300)]
    seen = statements(engine)
    made = keys.get_or_create_many(pairs)
    inserts = [s for s in seen if s.lstrip().upper().startswith("INSERT")]
    assert len(made) == 300 and len(inserts) == 1
    assert len(keys.subjects_in("churn")) == 300
    assert store(engine, master, ttl=0).get(*pairs[7]) == made[pairs[7]]  # durable, opens elsewhere


def test_a_key_another_process_made_first_is_the_one_used(engine: sa.Engine) -> None:
    master = secrets.token_bytes(32)
    first, second = store(engine, master), store(engine, master)
    theirs = first.get_or_create("a" * 64, "churn")
    # The second store has not seen it: its batch insert meets the existing row and takes it.
    reads = iter([{}])  # its first read came before the other process inserted
    select = second._select
    second._select = lambda pairs: next(reads, None) or select(pairs)  # type: ignore[method-assign]
    mine = second.get_or_create_many([("a" * 64, "churn"), ("b" * 64, "churn")])
    assert mine[("a" * 64, "churn")] == theirs
    assert second.get("b" * 64, "churn") == mine[("b" * 64, "churn")]


def test_a_batch_digests_without_reading_keys_again_even_when_the_cache_expired(
    engine: sa.Engine,
) -> None:
    sealer = Sealer(store(engine, secrets.token_bytes(32), ttl=0.0), b"pepper")
    rows = [{"customer": f"c-{i % 50}", "x": float(i)} for i in range(200)]
    sealed = sealer.seal_many(
        SCHEMA, rows, deployment="churn", request_ids=[f"b#{i}" for i in range(200)]
    )
    seen = statements(engine)
    digests = [
        sealer.body_digest(row, record) for row, (_, record) in zip(rows, sealed, strict=True)
    ]
    assert seen == [] and all(d.startswith("k1:") for d in digests)
    # The same digest when the key comes from the store (the record's held key was taken).
    assert sealer.body_digest(rows[3], sealed[3][1]) == digests[3]


def test_a_destroyed_subject_leaves_nothing_held_for_its_digests(engine: sa.Engine) -> None:
    sealer = Sealer(store(engine, secrets.token_bytes(32)), b"pepper")
    row = {"customer": "c-1", "x": 1.0}
    _, record = sealer.seal(SCHEMA, row, deployment="churn", request_id="r")
    assert sealer.destroy(sealer.subject_ref("c-1"), "churn") == 1
    with pytest.raises(Forgotten):
        sealer.body_digest(row, record)


def test_refs_in_a_batch_are_the_refs_of_single_rows(engine: sa.Engine) -> None:
    sealer = Sealer(store(engine, secrets.token_bytes(32)), b"pepper")
    rows = [{"customer": c, "x": 1.0} for c in ("c-1", "c-2", "c-1")]
    sealed = sealer.seal_many(SCHEMA, rows, deployment="churn", request_ids=["a", "b", "c"])
    assert [r["subject_ref"] for _, r in sealed] == [
        subject_ref(b"pepper", c) for c in ("c-1", "c-2", "c-1")
    ]
    assert sealer.subject_ref(7) == subject_ref(b"pepper", "7")
