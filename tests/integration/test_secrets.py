"""Server secrets: one hex pepper, a derived key per use, API keys issued before still valid."""

from __future__ import annotations

import hashlib
import hmac
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.application import Ledger
from ledger.domain.access import ApiKey
from ledger.errors import InvalidSetting
from ledger.key_digests import KeyDigests
from ledger.keyfiles import derived_key, pepper
from ledger.notary import sign_digest, write_digest_file
from ledger.privacy.sealing import subject_ref
from ledger.settings import Settings

OLD_TEXT_PEPPER = "s3cret pepper text"


def _issue_untagged(ledger: Ledger, secret: bytes, key_id: str = "0123456789ab") -> str:
    """A key as issued before digests carried a scheme tag: HMAC under the pepper itself."""
    key = f"pl_{key_id}_legacy-secret"
    digest = hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()
    record = ApiKey.issue(
        key_id=key_id, role="auditor", secret_digest=digest, expires_at=None, label="", actor="t"
    )
    ledger.save(record)
    return key


def test_a_key_issued_before_the_scheme_tag_still_authenticates(ledger):
    old_key = _issue_untagged(ledger, pepper(ledger.settings.secrets_dir))
    assert ledger.authenticate(old_key) is not None
    assert ledger.authenticate(old_key + "x") is None
    _, new_key = ledger.issue_api_key("auditor", actor="t")
    record = ledger.authenticate(new_key)
    assert record is not None and record.secret_digest.startswith("v2:")


def test_a_raw_text_pepper_set_again_as_hex_keeps_its_keys_and_subject_refs(settings):
    old = OLD_TEXT_PEPPER.encode()
    with closing(Ledger(replace(settings, pepper=old.hex()))) as ledger:
        old_key = _issue_untagged(ledger, old)
        assert ledger.authenticate(old_key) is not None
        assert ledger.sealer.subject_ref("alice") == subject_ref(old, "alice")


def test_the_pepper_file_and_the_variable_are_the_same_encoding(settings):
    with closing(Ledger(settings)) as ledger:
        file_pepper = pepper(settings.secrets_dir)
        _, key = ledger.issue_api_key("auditor", actor="t")
        ref = ledger.sealer.subject_ref("alice")
    file_text = (settings.secrets_dir / "pepper").read_text()
    environ = {"LEDGER_HOME": str(settings.home), "LEDGER_PEPPER": file_text}
    configured = Settings.from_env(environ, database_url=settings.database_url)
    assert pepper(configured.secrets_dir, configured.pepper) == file_pepper
    with closing(Ledger(configured)) as ledger:
        assert ledger.authenticate(key) is not None
        assert ledger.sealer.subject_ref("alice") == ref


def test_a_pepper_that_is_not_hex_is_refused_naming_the_variable():
    with pytest.raises(InvalidSetting) as refused:
        Settings.from_env({"LEDGER_PEPPER": OLD_TEXT_PEPPER})
    message = str(refused.value)
    assert message.startswith("LEDGER_PEPPER=") and "hex" in message
    assert OLD_TEXT_PEPPER not in message and "\n" not in message


def test_api_key_digests_use_a_key_of_their_own():
    secret = bytes(range(32))
    assert derived_key(secret, "api-key-v2") != derived_key(secret, "subject-ref-v2")
    assert derived_key(secret, "api-key-v2") != secret
    digests = KeyDigests(secret)
    untagged = hmac.new(secret, b"pl_k_s", hashlib.sha256).hexdigest()
    assert digests.digest("pl_k_s") != "v2:" + untagged
    assert digests.matches(untagged, "pl_k_s") and digests.matches(
        digests.digest("pl_k_s"), "pl_k_s"
    )


def test_the_home_its_database_and_its_secrets_are_private_to_their_owner(tmp_path):
    home = tmp_path / "fresh" / "home"
    settings = Settings(home=home)
    with closing(Ledger(settings)) as ledger:
        ledger.issue_api_key("auditor", actor="t")
        ledger.sealer.keys.get_or_create(ledger.sealer.subject_ref("alice"), "d")
        for file in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):  # while open
            assert _mode(home / file) == 0o600, file
    key = Ed25519PrivateKey.generate()
    digest = write_digest_file(sign_digest(key, 1, bytes(32), None), settings.digests_dir)
    for directory in (home, home.parent, settings.secrets_dir, settings.digests_dir):
        assert _mode(directory) == 0o700, directory
    assert _mode(digest) == 0o600
    for secret in ("pepper", "master.key"):
        assert _mode(settings.secrets_dir / secret) == 0o600, secret


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
