"""The notary on both backends: the chain, digests, keys, the CLI and the wire format."""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from click.testing import CliRunner

from api.cli import main
from ledger import notary
from ledger.database import is_postgres
from ledger.errors import AlreadyExists
from ledger.notary.chain import GENESIS, hash_event


def record(ledger, n):
    for i in range(n):
        ledger.issue_api_key("auditor", actor="test", label=f"k{i}")


def chain_from_scratch(engine):
    previous, rows = GENESIS, []
    for event in notary.iter_stored_events(engine):
        content, previous = hash_event(previous, event)
        rows.append((event.position, content, previous))
    return rows


def test_the_chain_advances_incrementally_and_equals_a_fresh_computation(ledger):
    for batch in (3, 1, 7):
        record(ledger, batch)
        assert notary.advance(ledger.engine, page=2) == batch_total(ledger.engine)
    assert list(notary.iter_chain_rows(ledger.engine)) == chain_from_scratch(ledger.engine)
    position, head, _ = notary.notary_head(ledger.engine)
    assert (position, head) == (11, chain_from_scratch(ledger.engine)[-1][2])


def batch_total(engine):
    return notary.store.last_position(engine)


def test_gaps_in_positions_are_chained(ledger):
    record(ledger, 2)
    if is_postgres(ledger.engine):  # a failed insert burns sequence values
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql("SELECT nextval(pg_get_serial_sequence('ledger_events', 'id'))")
    record(ledger, 2)
    notary.advance(ledger.engine)
    report = notary.verify_database(ledger.engine)
    assert report.ok, report.render()
    assert [r[0] for r in notary.iter_chain_rows(ledger.engine)] == [
        e.position for e in notary.iter_stored_events(ledger.engine)
    ]


def test_concurrent_notaries_chain_each_event_once(ledger):
    record(ledger, 40)
    errors = []

    def run():
        try:
            notary.advance(ledger.engine, page=3)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert list(notary.iter_chain_rows(ledger.engine)) == chain_from_scratch(ledger.engine)


@pytest.fixture
def key_path(ledger, tmp_path):
    path = tmp_path / "secrets" / "signing-key.pem"
    notary.create_signing_key(ledger, path, actor="test")
    return path


def test_a_signing_key_is_created_once_with_its_public_half_recorded(ledger, key_path):
    assert key_path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(AlreadyExists):
        notary.create_signing_key(ledger, key_path, actor="test")
    topics = [e.topic for e in notary.iter_stored_events(ledger.engine)]
    assert topics == ["ledger.domain.access:SigningKey.Created"]


def test_a_digest_verifies_and_any_edit_to_it_does_not(ledger, key_path, tmp_path):
    record(ledger, 5)
    digest = notary.issue_digest(ledger.engine, key_path, tmp_path / "digests")
    pinned = notary.load_public_key(key_path.with_suffix(".pub.pem"))
    assert notary.load_digest(notary.latest_digest_file(tmp_path / "digests")) == digest
    assert notary.verify_database(ledger.engine, [digest], pinned).ok
    assert notary.verify_database(ledger.engine, [digest]).ok  # the key recorded in the ledger
    for field, value in (
        ("position", 3),
        ("head_hash", "0" * 64),
        ("issued_at", "2020-01-01T00:00:00+00:00"),
    ):
        forged = dataclasses.replace(digest, **{field: value})
        report = notary.verify_database(ledger.engine, [forged], pinned)
        assert report.counts == {"digest_signature": 1}, field


def test_a_digest_beyond_the_events_is_not_covered(ledger, key_path):
    record(ledger, 3)
    digest = notary.issue_digest(ledger.engine, key_path, key_path.parent / "digests")
    events = list(notary.iter_stored_events(ledger.engine))[:-1]  # a stream cut short
    report = notary.verify_events(
        events, None, digest, notary.load_public_key(key_path.with_suffix(".pub.pem"))
    )
    assert report.counts == {"digest_not_covered": 1}


def test_a_digest_from_an_unrecorded_key_is_refused(ledger, key_path, tmp_path):
    other = tmp_path / "other" / "signing-key.pem"
    notary.service._write_key_pair(notary.service.Ed25519PrivateKey.generate(), other)
    digest = notary.issue_digest(ledger.engine, other, other.parent / "digests")
    assert notary.verify_database(ledger.engine, [digest]).counts == {"digest_key": 1}


def test_after_rotation_both_keys_verify_their_digests(ledger, key_path):
    before = notary.issue_digest(ledger.engine, key_path, key_path.parent / "digests")
    old_id, new_id = notary.rotate_signing_key(ledger, key_path, actor="test")
    after = notary.issue_digest(ledger.engine, key_path, key_path.parent / "digests")
    assert (before.key_id, after.key_id) == (old_id, new_id)
    assert notary.verify_database(ledger.engine, [before, after]).ok


def test_the_digest_writer_writes_only_when_the_head_moved(ledger, key_path, tmp_path):
    writer = notary.DigestWriter(
        ledger.engine, key_path, tmp_path / "digests", interval_seconds=0.01
    )
    assert writer.write_once() is not None
    assert writer.write_once() is None
    record(ledger, 1)
    assert writer.write_once().position == 2
    assert len(list((tmp_path / "digests").glob("digest-*.json"))) == 2


def test_the_wire_format_round_trips_exactly(ledger):
    record(ledger, 3)
    for event in notary.iter_stored_events(ledger.engine):
        wire = json.loads(json.dumps(notary.raw_event_to_json(event)))
        assert notary.raw_event_from_json(wire) == tuple(
            bytes(f) if isinstance(f, memoryview) else f for f in event
        )
    assert list(notary.iter_raw_events(ledger.engine, 2, 2))[0]["position"] == 2


def test_the_cli_signs_digests_and_verifies(ledger, settings, monkeypatch, tmp_path):
    record(ledger, 4)
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    runner = CliRunner()
    db = ["--db", settings.database_url]
    assert runner.invoke(main, [*db, "signing-key", "init"]).exit_code == 0
    issued = runner.invoke(main, [*db, "digest"])
    assert issued.exit_code == 0 and json.loads(issued.stdout)["position"] == 5
    pub = str(tmp_path / "secrets" / "signing-key.pub.pem")
    verified = runner.invoke(main, [*db, "verify", "--pubkey", pub])
    assert verified.exit_code == 0 and verified.stdout.startswith("OK"), verified.output


def test_verify_from_url_follows_the_next_cursor_with_the_bearer_key(ledger, key_path):
    record(ledger, 6)
    digest = notary.issue_digest(ledger.engine, key_path, key_path.parent / "digests")
    pages = {"/events?from=0": (1, 4, "/events?from=4"), "/events?from=4": (4, 99, None)}
    seen_auth = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            seen_auth.append(self.headers.get("Authorization"))
            lo, hi, nxt = pages[self.path]
            body = "".join(
                json.dumps(e) + "\n" for e in notary.iter_raw_events(ledger.engine, lo, hi - 1)
            )
            if nxt:
                body += json.dumps({"next": f"http://127.0.0.1:{server.server_port}{nxt}"}) + "\n"
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/events?from=0"
        report = notary.verify_events(
            notary.iter_events_from_url(url, "pl_abc_secret"),
            None,
            digest,
            notary.load_public_key(key_path.with_suffix(".pub.pem")),
        )
    finally:
        server.shutdown()
    assert report.ok and report.events == 7, report.render()
    assert seen_auth == ["Bearer pl_abc_secret"] * 2


def test_binary_states_are_chained_byte_for_byte(ledger):
    import uuid

    from eventsourcing.persistence import StoredEvent

    record(ledger, 2)
    states = [b"\x00\xff not text", "caf\u00e9 \u2603".encode(), b"{}"]
    ledger.recorder_.insert_now([StoredEvent(uuid.uuid4(), 1, "test:Binary", s) for s in states])
    notary.advance(ledger.engine)
    assert [e.state for e in notary.iter_stored_events(ledger.engine)][2:] == states
    assert list(notary.iter_chain_rows(ledger.engine)) == chain_from_scratch(ledger.engine)
    assert notary.verify_database(ledger.engine).ok


def test_the_cli_exit_status_tells_tampering_from_bad_input(ledger, settings, tmp_path):
    record(ledger, 3)
    notary.advance(ledger.engine)
    with ledger.engine.begin() as conn:  # an attacker cuts the tail off
        if is_postgres(ledger.engine):
            conn.exec_driver_sql("ALTER TABLE ledger_events DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER ledger_events_no_delete")
        conn.exec_driver_sql("DELETE FROM ledger_events WHERE id = 3")
    runner = CliRunner()
    db = ["--db", settings.database_url]
    tampered = runner.invoke(main, [*db, "verify"])
    assert (
        tampered.exit_code == 1 and "FIRST PROBLEM at position 3: event removed" in tampered.stdout
    )
    bad_digest = tmp_path / "bad.json"
    bad_digest.write_text('{"position": -1}')
    refused = runner.invoke(main, [*db, "verify", "--digest", str(bad_digest)])
    assert refused.exit_code == 2 and "no 'head_hash' field" in refused.output


def test_a_malformed_or_reordered_stream_is_refused_not_trusted(ledger):
    record(ledger, 3)
    events = [notary.raw_event_to_json(e) for e in notary.iter_stored_events(ledger.engine)]
    huge = {**events[1], "recorded_at": 2**64}
    assert notary.verify_events([events[0], huge, events[2]]).first_problem.kind == "malformed"
    assert notary.verify_events([events[0], {"position": "2"}]).first_problem.kind == "malformed"
    backwards = notary.verify_events([events[0], events[2], events[1]])
    assert (backwards.first_problem.kind, backwards.events) == ("out_of_order", 2)


def test_verify_from_url_refuses_a_next_page_on_another_host(monkeypatch):
    from ledger.errors import InvalidCommand

    def a_page_pointing_elsewhere(url, api_key, timeout):
        yield from ()
        return "http://evil.example/steal-the-key"

    monkeypatch.setattr(notary.remote, "_read_page", a_page_pointing_elsewhere)
    with pytest.raises(InvalidCommand, match="not on"):
        list(notary.iter_events_from_url("http://127.0.0.1:1/events", api_key="k"))
