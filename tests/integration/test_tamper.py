"""An attacker with database access edits the event table; the verifier catches and locates it.

Each attack runs on SQLite and PostgreSQL, and the same verdict must come from the
JSON-lines wire format (no database), so the auditor API path proves the same things.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from ledger import notary
from ledger.database import is_postgres
from ledger.notary.store import NOTARY_TABLE

EVENTS = 24


@pytest.fixture
def signed(ledger, tmp_path):
    """A ledger of EVENTS events, chained, with a digest of its head signed before any attack."""
    key_path = tmp_path / "secrets" / "signing-key.pem"
    notary.create_signing_key(ledger, key_path, actor="test")
    for i in range(EVENTS - 1):
        ledger.issue_api_key("auditor", actor="test", label=f"k{i}")
    digest = notary.issue_digest(ledger.engine, key_path, tmp_path / "digests")
    assert digest.position == last_position(ledger.engine)
    return ledger.engine, digest, notary.load_public_key(key_path.with_suffix(".pub.pem"))


def last_position(engine):
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT max(id) FROM ledger_events").scalar_one()


def unguard(engine):
    """What an attacker does first: switch the append-only triggers off."""
    with engine.begin() as conn:
        if is_postgres(engine):
            conn.exec_driver_sql("ALTER TABLE ledger_events DISABLE TRIGGER USER")
            conn.exec_driver_sql("ALTER TABLE ledger_chain DISABLE TRIGGER USER")
        else:
            for name in (
                "ledger_events_no_update",
                "ledger_events_no_delete",
                "ledger_chain_no_update",
                "ledger_chain_no_delete",
            ):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")


def row(conn, position):
    return conn.execute(
        sa.text(
            "SELECT originator_id, originator_version, topic, state, recorded_at FROM ledger_events WHERE id = :p"
        ),
        {"p": position},
    ).one()


def put(conn, position, values):
    conn.execute(
        sa.text(
            "UPDATE ledger_events SET originator_id = :o, originator_version = :v, topic = :t, state = :s, "
            "recorded_at = :r WHERE id = :p"
        ),
        {
            "o": values[0],
            "v": values[1],
            "t": values[2],
            "s": bytes(values[3]),
            "r": values[4],
            "p": position,
        },
    )


def flip_byte(engine, p):
    with engine.begin() as conn:
        values = list(row(conn, p))
        state = bytearray(values[3])
        state[len(state) // 2] ^= 0x01
        values[3] = bytes(state)
        put(conn, p, values)


def shift_recorded_at(engine, p):
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE ledger_events SET recorded_at = recorded_at + 1 WHERE id = :p"),
            {"p": p},
        )


def delete(engine, p):
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger_events WHERE id = :p"), {"p": p})


def truncate(engine, p):
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger_events WHERE id >= :p"), {"p": p})


def swap(engine, p, q):
    with engine.begin() as conn:
        first, second = row(conn, p), row(conn, q)
        conn.execute(
            sa.text("UPDATE ledger_events SET originator_version = -1 WHERE id = :q"), {"q": q}
        )
        put(conn, p, second)
        put(conn, q, first)


def insert_forged(engine, p):
    """Renumber the tail up by one and put a forged event at p (no gap left behind)."""
    with engine.begin() as conn:
        top = conn.exec_driver_sql("SELECT max(id) FROM ledger_events").scalar_one()
        for position in range(top, p - 1, -1):
            conn.execute(
                sa.text("UPDATE ledger_events SET id = id + 1 WHERE id = :p"), {"p": position}
            )
        template = row(conn, p + 1)
        forged_id = uuid.uuid4()
        originator = str(forged_id) if is_postgres(engine) else forged_id.bytes
        conn.execute(
            sa.text(
                "INSERT INTO ledger_events (id, originator_id, originator_version, topic, state, recorded_at) "
                "VALUES (:p, :o, 1, :t, :s, :r)"
            ),
            {"p": p, "o": originator, "t": template[2], "s": b'{"forged":true}', "r": template[4]},
        )


def rewrite_chain_from(engine, p):
    """The thorough attacker: change an event, then recompute the notary's chain from it on."""
    flip_byte(engine, p)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger_chain WHERE position >= :p"), {"p": p})
        head = conn.execute(
            sa.text("SELECT chain_hash, position FROM ledger_chain WHERE position = :q"),
            {"q": p - 1},
        ).one()
        conn.execute(
            sa.text(f"UPDATE {NOTARY_TABLE} SET position = :q, head_hash = :h WHERE id = 1"),
            {"q": head[1], "h": bytes(head[0])},
        )
    notary.advance(engine)


def both_ways(engine, digest, key):
    """Verify from the database and from the wire format; the verdicts must agree."""
    from_db = notary.verify_database(engine, [digest], key)
    lines = [json.dumps(notary.raw_event_to_json(e)) for e in notary.iter_stored_events(engine)]
    chain = list(notary.iter_chain_rows(engine))
    from_wire = notary.verify_events((json.loads(line) for line in lines), chain, digest, key)
    assert from_wire.to_dict() == from_db.to_dict()
    return from_db


def first(report):
    return (report.first_problem.position, report.first_problem.kind)


def test_an_untouched_ledger_verifies(signed):
    engine, digest, key = signed
    report = both_ways(engine, digest, key)
    assert report.ok, report.render()
    assert report.events == EVENTS and report.digests[0].ok


@pytest.mark.parametrize(
    ("attack", "expected_kind"),
    [
        (flip_byte, "changed"),
        (shift_recorded_at, "changed"),
        (delete, "removed"),
        (truncate, "removed"),
        (insert_forged, "inserted"),
    ],
)
def test_a_single_edit_is_caught_at_its_position(signed, attack, expected_kind):
    engine, digest, key = signed
    unguard(engine)
    attack(engine, 9)
    report = both_ways(engine, digest, key)
    assert not report.ok
    assert first(report) == (9, expected_kind), report.render()
    assert not report.digests[0].ok  # the signed head no longer matches either


def test_swapped_events_are_named_as_reordered(signed):
    engine, digest, key = signed
    unguard(engine)
    swap(engine, 7, 15)
    report = both_ways(engine, digest, key)
    assert first(report) == (7, "reordered")
    assert {(p.position, p.kind) for p in report.problems} >= {(7, "reordered"), (15, "reordered")}


def test_a_recomputed_chain_is_caught_only_by_a_digest_issued_before(signed):
    engine, digest, key = signed
    unguard(engine)
    rewrite_chain_from(engine, 11)
    assert notary.verify_database(engine).ok  # the chain table alone is now consistent
    report = both_ways(engine, digest, key)
    assert first(report) == (digest.position, "digest_mismatch"), report.render()


def test_an_earlier_digest_brackets_the_change(signed, tmp_path):
    engine, late, key = signed
    early = notary.sign_digest(
        notary.service.load_private_key(tmp_path / "secrets" / "signing-key.pem"),
        *_head_at(engine, 8),
    )
    unguard(engine)
    rewrite_chain_from(engine, 11)
    report = notary.verify_database(engine, [early, late], key)
    assert [d.ok for d in report.digests] == [True, False]
    assert "positions 9..24" in report.digests[1].detail


def _head_at(engine, position):
    rows = {r[0]: r for r in notary.iter_chain_rows(engine)}
    recorded_at = next(e.recorded_at for e in notary.iter_stored_events(engine, position, position))
    return position, rows[position][2], recorded_at


def test_without_chain_rows_the_wire_stream_is_still_refused_by_the_digest(signed):
    engine, digest, key = signed
    unguard(engine)
    flip_byte(engine, 5)
    events = (notary.raw_event_to_json(e) for e in notary.iter_stored_events(engine))
    report = notary.verify_events(events, None, digest, key)
    assert not report.ok and report.counts == {"digest_mismatch": 1}


def test_a_malformed_chain_row_is_reported_at_its_position(signed):
    engine, digest, key = signed
    unguard(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE ledger_chain SET content_hash = :h WHERE position = 6"),
            {"h": b"\x01" * 31},
        )
    report = notary.verify_database(engine, [digest], key)
    assert first(report) == (6, "changed") and report.digests[0].ok


def test_the_notary_refuses_to_sign_a_rewritten_chain(signed, tmp_path):
    engine, _, _ = signed
    unguard(engine)
    rewrite_chain_from(engine, 11)
    with pytest.raises(notary.TamperSuspected, match="position 24"):
        notary.issue_digest(engine, tmp_path / "secrets" / "signing-key.pem", tmp_path / "digests")


@pytest.mark.parametrize(
    "state",
    [b"{not json", b'{"role": 5}'],
    ids=["no longer JSON", "no longer its class's fields"],
)
def test_a_request_that_reads_an_altered_event_is_told_so_by_name(signed, ledger, state):
    """The key's own record was edited: its holder gets a 500 that names the damage and the
    command that locates it, not an anonymous internal error; other keys are unaffected."""
    from falcon import testing

    from api.app import create_app

    _record, intact = ledger.issue_api_key("auditor", actor="test", label="intact")
    _record, damaged = ledger.issue_api_key("auditor", actor="test", label="damaged")
    unguard(ledger.engine)
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE ledger_events SET state = :state WHERE id = :position"),
            {"state": state, "position": last_position(ledger.engine)},
        )
    client = testing.TestClient(create_app(ledger.settings, ledger))
    answer = client.simulate_get(
        "/v1/ledger/events", headers={"Authorization": f"Bearer {damaged}"}
    )
    assert answer.status_code == 500, answer.text
    assert answer.json["code"] == "event_unreadable"
    assert "ledger verify" in answer.json["detail"]
    ok = client.simulate_get("/v1/ledger/events", headers={"Authorization": f"Bearer {intact}"})
    assert ok.status_code == 200, ok.text
