"""Scenario 4, the part tests/integration/test_tamper.py does not cover: `ledger verify
--from-url URL --pubkey FILE` against a real server, with no database credentials.

Every attack and both backends are in test_tamper.py (database and wire format). Here the
stream comes over HTTP from gunicorn, and the attacker also forges a signing key of their
own, records it in the ledger and signs the rewritten head with it: only the pinned public
key stops that, so the verifier must refuse a key it was not told to trust.
"""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from ledger import notary
from ledger.application import Ledger
from ledger.settings import Settings
from tests.integration.test_tamper import _head_at, flip_byte, rewrite_chain_from, unguard
from tests.reliability.support import TIMEOUT, served

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("tamper-http")
    url = f"sqlite:///{home / 'ledger.db'}"
    server, keys = served(home, url, "--no-sidecars")
    pinned = home / "pinned.pub.pem"  # what the auditor kept from the key ceremony
    shutil.copy(
        notary.default_key_path(Settings(home=home, database_url=url)).with_suffix(".pub.pem"),
        pinned,
    )
    digest = server.call("GET", "/v1/ledger/digest", key=keys["auditor"])
    assert digest.status == 200, digest.body
    (home / "digest.json").write_bytes(digest.body)
    try:
        yield server, keys, pinned, home / "digest.json"
    finally:
        server.stop()


def verify(server, keys, digest, pinned):  # noqa: ANN001
    return server.cli(
        "verify",
        "--from-url",
        f"{server.url}/v1/ledger/events?limit=5",
        "--digest",
        str(digest),
        "--pubkey",
        str(pinned),
        env={"LEDGER_API_KEY": keys["auditor"], "LEDGER_DATABASE_URL": "sqlite:////nonexistent"},
    )


def test_the_stream_verifies_then_a_flipped_byte_is_refused_from_the_stream_alone(world):
    server, keys, pinned, digest = world
    clean = verify(server, keys, digest, pinned)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    engine = sa.create_engine(server.database_url)
    unguard(engine)
    flip_byte(engine, _first_not_a_key(engine))  # the keys' events must stay readable to log in
    tampered = verify(server, keys, digest, pinned)
    # The stream carries events, not the notary's chain rows: the signed head brackets the change
    # (1..head); the database verifier names the exact position (test_tamper.py).
    assert tampered.returncode == 1 and "digest_mismatch" in tampered.stdout, (
        tampered.stdout + tampered.stderr
    )
    engine.dispose()


def test_a_rewritten_chain_signed_by_a_key_the_attacker_recorded_is_refused_by_the_pinned_key(
    world,
):
    server, keys, pinned, _ = world
    engine = sa.create_engine(server.database_url)
    attacker_home = server.home / "attacker"
    attacker = Ledger(
        Settings(home=attacker_home, database_url=server.database_url, group_commit=False)
    )
    try:
        forged_key = attacker_home / "signing-key.pem"
        notary.create_signing_key(
            attacker, forged_key, actor="key:admin"
        )  # recorded like a rotation
        unguard(engine)  # again: the attacker's Ledger re-installed the triggers on start
        rewrite_chain_from(
            engine, 3
        )  # from before the first test's flip: the whole log is re-chained
        private = notary.service.load_private_key(forged_key)
        forged = notary.sign_digest(private, *_head_at(engine, _top(engine)))
        forged_file = notary.write_digest_file(forged, attacker_home / "digests")
    finally:
        attacker.close()
        engine.dispose()
    unpinned = server.cli(
        "verify",
        "--from-url",
        f"{server.url}/v1/ledger/events",
        "--digest",
        str(forged_file),
        env={"LEDGER_API_KEY": keys["auditor"], "LEDGER_DATABASE_URL": "sqlite:////nonexistent"},
    )
    refused = verify(server, keys, forged_file, pinned)
    print("\nwithout a pinned key:", unpinned.returncode, unpinned.stdout[-300:])
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "key" in refused.stdout.lower()


def _top(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT max(id) FROM ledger_events").scalar_one()


def _first_not_a_key(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT min(id) FROM ledger_events WHERE topic NOT LIKE '%:ApiKey.%'"
        ).scalar_one()
