"""A superuser rewrites an event and recomputes the stored chain after it: nothing signs that.

The chain table alone is consistent again, so only the head signed before the rewrite
tells. Every signing path (the CLI with and without --no-write and --previous, the HTTP
endpoint, the digest sidecar, an export's digest) must refuse, and no digest of the forged
head may exist afterwards. Then what `ledger verify` says about such a ledger: exactly
what it compared, and an exit status for whether everything asked for held.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api import sidecars
from api.cli import main
from ledger import notary
from ledger.notary.chain import hash_event
from ledger.notary.report import UNPROVEN_LINE
from ledger.notary.store import CHAIN_TABLE, NOTARY_TABLE
from tests.integration.api_support import make_api
from tests.integration.test_tamper import flip_byte, unguard

SIGNED, MORE, FORGED_AT = 12, 6, 5


def record(ledger, n):
    for i in range(n):
        ledger.issue_api_key("auditor", actor="test", label=f"k{i}")


@pytest.fixture
def signed(ledger, settings, tmp_path, monkeypatch):
    """A ledger with a digest in its digest directory and an auditor's copy of it, then more events."""
    monkeypatch.setenv("LEDGER_HOME", str(settings.home))
    key_path = notary.default_key_path(settings)
    notary.create_signing_key(ledger, key_path, actor="test")
    record(ledger, SIGNED - 1)
    digest = notary.issue_digest(ledger.engine, key_path, settings.digests_dir)
    kept = tmp_path / "kept-digest.json"
    kept.write_text(json.dumps(digest.to_json()))
    record(ledger, MORE)
    notary.advance(ledger.engine)
    return ledger, key_path, digest, kept


def forge(engine, position):
    """The superuser's rewrite: change an event, recompute every stored chain hash from it on."""
    unguard(engine)
    flip_byte(engine, position)
    rows = list(notary.iter_chain_rows(engine, 0, position - 1))
    previous = rows[-1][2] if rows else notary.GENESIS
    with engine.begin() as conn:
        for event in notary.iter_stored_events(engine, position):
            content, previous = hash_event(previous, event)
            conn.execute(
                sa.text(
                    f"UPDATE {CHAIN_TABLE} SET content_hash = :c, chain_hash = :h WHERE position = :p"
                ),
                {"c": content, "h": previous, "p": event.position},
            )
        conn.execute(
            sa.text(f"UPDATE {NOTARY_TABLE} SET head_hash = :h WHERE id = 1"), {"h": previous}
        )
    return previous


def digest_files(settings):
    return sorted(settings.digests_dir.glob("digest-*.json"))


def cli(settings, *args, home=None, monkeypatch=None):
    if home is not None:
        monkeypatch.setenv("LEDGER_HOME", str(home))
    return CliRunner().invoke(main, ["--db", settings.database_url, *args])


def assert_refused(result, status, words):
    """One line, the exit status asked for, no traceback, and no digest printed."""
    assert result.exit_code == status, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and '"signature"' not in result.output
    assert len(result.output.strip().splitlines()) == 1 and words in result.output, result.output


def test_no_signing_path_signs_a_forged_chain(signed, settings, monkeypatch, tmp_path):
    ledger, key_path, before, kept = signed
    forged_head = forge(ledger.engine, FORGED_AT)
    assert notary.verify_database(ledger.engine).ok  # the chain table alone is consistent again
    refusal = "refusing to sign"

    assert_refused(cli(settings, "digest"), 1, refusal)
    assert_refused(cli(settings, "digest", "--no-write"), 1, refusal)
    assert_refused(cli(settings, "digest", "--no-write", "--previous", str(kept)), 1, refusal)
    # A signer without the digest directory (another host): needs --previous, then refuses.
    elsewhere = ["--key-file", str(key_path)]
    away = tmp_path / "elsewhere"
    lost = cli(settings, "digest", "--no-write", *elsewhere, home=away, monkeypatch=monkeypatch)
    assert_refused(lost, 2, "give --previous FILE")
    with_previous = cli(settings, "digest", "--no-write", *elsewhere, "--previous", str(kept))
    assert_refused(with_previous, 1, refusal)
    monkeypatch.setenv("LEDGER_HOME", str(settings.home))

    answer = make_api(ledger).call("GET", "/v1/ledger/digest", role="auditor")
    assert answer.status_code == 409 and answer.json["code"] == "tamper_suspected", answer.json

    writer, sidecar_key = sidecars.digest_writer(settings, 300)
    assert sidecar_key == key_path
    sidecars.write_digest(writer, sidecar_key)  # logs the refusal, raises nothing
    writer.engine.dispose()

    for position in (FORGED_AT - 2, SIGNED + 2):  # an export's digest, below and above the rewrite
        with pytest.raises(notary.TamperSuspected):
            notary.issue_digest(ledger.engine, key_path, settings.digests_dir, position=position)

    assert len(digest_files(settings)) == 1
    assert notary.load_digest(digest_files(settings)[0]) == before
    assert forged_head.hex() not in "".join(p.read_text() for p in settings.digests_dir.iterdir())


def test_a_chained_event_changed_after_the_last_digest_is_refused(signed, settings):
    ledger, key_path, _, _ = signed
    unguard(ledger.engine)
    flip_byte(ledger.engine, SIGNED + 3)  # past the signed head, chain rows left as they were
    with pytest.raises(notary.TamperSuspected, match=f"position {SIGNED + MORE}"):
        notary.issue_digest(ledger.engine, key_path, settings.digests_dir)


def test_a_digest_planted_in_the_directory_vouches_for_nothing(signed, settings):
    """The attacker also writes a 'digest' of the forged head: it carries no valid signature."""
    ledger, key_path, before, _ = signed
    forged_head = forge(ledger.engine, FORGED_AT)
    position = notary.notary_head(ledger.engine)[0]
    planted = dataclasses.replace(before, position=position, head_hash=forged_head.hex())
    notary.write_digest_file(planted, settings.digests_dir)
    with pytest.raises(notary.TamperSuspected, match="not signed by this signer's key"):
        notary.issue_digest(ledger.engine, key_path, settings.digests_dir)


def test_the_digest_writer_remembers_what_it_signed_when_the_directory_is_emptied(signed, settings):
    ledger, key_path, _, _ = signed
    writer = notary.DigestWriter(ledger.engine, key_path, settings.digests_dir)
    assert writer.write_once().position == SIGNED + MORE
    forge(ledger.engine, FORGED_AT)
    for path in digest_files(settings):  # the attacker removes the record too
        path.unlink()
    record(ledger, 1)
    with pytest.raises(notary.TamperSuspected):
        writer.write_once()
    assert digest_files(settings) == []


def test_after_a_rotation_the_old_key_s_digest_is_still_linked_to(signed, settings):
    ledger, key_path, before, _ = signed
    notary.rotate_signing_key(ledger, key_path, actor="test")
    after = notary.issue_digest(ledger.engine, key_path, settings.digests_dir)
    assert after.key_id != before.key_id and after.position > before.position


def test_an_intact_chain_is_signed_by_every_path(signed, settings, monkeypatch, tmp_path):
    ledger, key_path, before, kept = signed
    printed = cli(settings, "digest", "--no-write", "--previous", str(kept))
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["position"] == SIGNED + MORE
    assert len(digest_files(settings)) == 1  # --no-write wrote nothing
    away = cli(
        settings,
        "digest",
        "--no-write",
        "--key-file",
        str(key_path),
        "--previous",
        str(kept),
        home=tmp_path / "elsewhere",
        monkeypatch=monkeypatch,
    )
    assert away.exit_code == 0, away.output
    monkeypatch.setenv("LEDGER_HOME", str(settings.home))
    answer = make_api(ledger).call("GET", "/v1/ledger/digest", role="auditor")
    assert answer.status_code == 200 and answer.json["position"] > SIGNED
    export = notary.issue_digest(
        ledger.engine, key_path, settings.digests_dir, position=FORGED_AT
    )  # below the last digest: rehashed up to it
    pinned = notary.load_public_key(key_path.with_suffix(".pub.pem"))
    assert notary.verify_database(ledger.engine, [before, export], pinned).ok


def serve_stream(engine):
    """The auditor API's raw event stream, served from this database."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            body = "".join(json.dumps(e) + "\n" for e in notary.iter_raw_events(engine))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/v1/ledger/events"


def last_line(result):
    return result.stdout.strip().splitlines()[-1]


def test_verify_from_url_says_what_it_compared(signed, settings, monkeypatch, tmp_path):
    ledger, key_path, _, kept = signed
    forge(ledger.engine, FORGED_AT)
    pub = str(key_path.with_suffix(".pub.pem"))
    server, url = serve_stream(ledger.engine)
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "auditor"))  # no digest directory here
    try:
        bare = cli(settings, "verify", "--from-url", url)
        chain_only = cli(settings, "verify", "--from-url", url, "--chain-only")
        unpinned = cli(settings, "verify", "--from-url", url, "--digest", str(kept))
        pinned = cli(settings, "verify", "--from-url", url, "--digest", str(kept), "--pubkey", pub)
        as_json = cli(settings, "verify", "--from-url", url, "--json")
    finally:
        server.shutdown()
    assert bare.exit_code == 3 and last_line(bare) == UNPROVEN_LINE, bare.output
    assert not any(line.startswith("OK") for line in bare.stdout.splitlines()), bare.output
    assert chain_only.exit_code == 0, chain_only.output
    assert "chain-only check, as asked" in last_line(chain_only), chain_only.output
    assert "OK" not in chain_only.stdout
    assert pinned.exit_code == 1 and last_line(pinned).startswith("TAMPERED"), pinned.output
    assert "checked with pinned public keys" in last_line(pinned)
    assert unpinned.exit_code == 1 and "keys the ledger itself records" in last_line(unpinned)
    report = json.loads(as_json.stdout)
    assert as_json.exit_code == 3 and (report["verdict"], report["ok"]) == ("unproven", False)


def test_verify_from_the_database_says_what_it_compared(signed, settings, monkeypatch, tmp_path):
    ledger, key_path, _, kept = signed
    pub = str(key_path.with_suffix(".pub.pem"))
    table_only = cli(settings, "verify", home=tmp_path / "auditor", monkeypatch=monkeypatch)
    assert table_only.exit_code == 0, table_only.output
    assert last_line(table_only).startswith("OK: compared with the notary's chain table only")
    assert "NOT with any signed digest" in last_line(table_only)
    proven = cli(settings, "verify", "--digest", str(kept), "--pubkey", pub)
    assert proven.exit_code == 0, proven.output
    assert last_line(proven) == (
        "OK: compared with the notary's chain table and the signed digest at position "
        f"{SIGNED}, checked with pinned public keys"
    )
    forge(ledger.engine, FORGED_AT)
    caught = cli(settings, "verify", "--digest", str(kept), "--pubkey", pub)
    assert caught.exit_code == 1 and last_line(caught).startswith(
        f"TAMPERED (first problem at position {SIGNED})"
    )


def test_verify_without_a_notary_table_or_digest_proves_nothing(
    ledger, settings, monkeypatch, tmp_path
):
    record(ledger, 3)
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "auditor"))
    result = cli(settings, "verify")
    assert result.exit_code == 3 and last_line(result) == UNPROVEN_LINE, result.output
    assert cli(settings, "verify", "--chain-only").exit_code == 0


def test_the_verify_endpoint_names_what_it_compared(signed, settings):
    ledger, _, _, _ = signed
    answer = make_api(ledger).call("GET", "/v1/ledger/verify", role="auditor")
    assert answer.status_code == 200, answer.json
    report = answer.json["report"]
    assert answer.json["ok"] and report["verdict"] == "ok"
    assert report["proved"] == (
        "OK: compared with the notary's chain table and the signed digest at position "
        f"{SIGNED}, checked with the keys the ledger itself records (no pinned key: "
        "give --pubkey FILE)"
    )
