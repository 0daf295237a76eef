"""A rotated signing key certifies nothing after its retirement, on both backends.

Rotation records the old key's retirement as an event with a position; from there on a
digest signed by it fails verification, pinned or not, and no signer links to or signs
with it. Its private half leaves the disk unless the operator keeps it encrypted.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from api.cli import main
from ledger import notary
from ledger.notary.retired import KeyRetired, retirement_position
from ledger.notary.signing import key_id_for


def record(ledger, n):
    for i in range(n):
        ledger.issue_api_key("auditor", actor="test", label=f"k{i}")


@pytest.fixture
def rotated(ledger, settings, monkeypatch):
    """A digest by the first key, a rotation, more events; and an attacker's copy of the old key."""
    monkeypatch.setenv("LEDGER_HOME", str(settings.home))
    key_path = notary.default_key_path(settings)
    notary.create_signing_key(ledger, key_path, actor="test")
    record(ledger, 3)
    before = notary.issue_digest(ledger.engine, key_path, settings.digests_dir)
    stolen = key_path.read_bytes()
    old_id, new_id = notary.rotate_signing_key(ledger, key_path, actor="test")
    record(ledger, 3)
    notary.advance(ledger.engine)
    return key_path, before, stolen, old_id, new_id


def load_key(pem):
    return serialization.load_pem_private_key(pem, password=None)


def pinned_keys(key_path):
    """What the docs tell an auditor to pin: the current public key and the retired ones."""
    files = [key_path.with_suffix(".pub.pem"), *key_path.parent.glob("*.retired-*.pub.pem")]
    return files, [notary.load_public_key(f) for f in files]


def forge_later_head(ledger, stolen):
    """The holder of the retired key signs the current head, after the retirement."""
    head = notary.notary_head(ledger.engine)
    return notary.sign_digest(load_key(stolen), head.position, head.chain_hash, head.recorded_at)


def test_rotation_leaves_only_the_retired_key_s_public_half(ledger, rotated):
    key_path, _, stolen, old_id, _ = rotated
    old_public = load_key(stolen).public_key()
    retired_at = retirement_position(ledger.engine, old_id)
    names = {p.name for p in key_path.parent.glob("signing-key*")}
    assert names == {
        "signing-key.pem",
        "signing-key.pub.pem",
        f"signing-key.{old_id}.retired-{retired_at}.pub.pem",
    }
    for path in key_path.parent.iterdir():
        if path.is_file() and b"PRIVATE KEY" in path.read_bytes():
            assert key_id_for(load_key(path.read_bytes()).public_key()) != old_id, path
    retired_file = key_path.parent / f"signing-key.{old_id}.retired-{retired_at}.pub.pem"
    assert key_id_for(notary.load_public_key(retired_file)) == key_id_for(old_public)


def test_the_retirement_is_the_rotated_event_s_position(ledger, rotated):
    _, before, _, old_id, _ = rotated
    topics = {e.position: e.topic for e in notary.iter_stored_events(ledger.engine)}
    at = retirement_position(ledger.engine, old_id)
    assert topics[at] == "ledger.domain.access:SigningKey.Rotated" and at > before.position


def test_a_retired_key_cannot_sign_a_later_head_pinned_or_not(ledger, rotated):
    key_path, before, stolen, old_id, _ = rotated
    forged = forge_later_head(ledger, stolen)
    assert forged.key_id == old_id
    _, keys = pinned_keys(key_path)
    for pinned in (keys, None):
        report = notary.verify_database(ledger.engine, [before, forged], pinned)
        assert not report.ok and report.counts == {"digest_key_retired": 1}, report.render()
        assert [d.ok for d in report.digests] == [True, False]


def test_the_cli_says_so_with_both_keys_pinned(ledger, settings, rotated, tmp_path):
    key_path, _, stolen, old_id, _ = rotated
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(forge_later_head(ledger, stolen).to_json()))
    files, _ = pinned_keys(key_path)
    pins = [arg for f in files for arg in ("--pubkey", str(f))]
    result = CliRunner().invoke(
        main, ["--db", settings.database_url, "verify", "--digest", str(forged_file), *pins]
    )
    assert result.exit_code == 1, result.output
    assert "digest signed by a retired key" in result.output and old_id in result.output


def test_old_digests_by_the_retired_key_still_verify_and_link(ledger, settings, rotated):
    key_path, before, _, _, new_id = rotated
    after = notary.issue_digest(ledger.engine, key_path, settings.digests_dir)
    assert after.key_id == new_id  # linked to `before`, signed by the retired key
    _, keys = pinned_keys(key_path)
    for pinned in (keys, None):
        assert notary.verify_database(ledger.engine, [before, after], pinned).ok


def test_no_signer_links_to_a_planted_digest_by_the_retired_key(ledger, settings, rotated):
    key_path, _, stolen, _, _ = rotated
    notary.write_digest_file(forge_later_head(ledger, stolen), settings.digests_dir)
    record(ledger, 1)
    with pytest.raises(notary.TamperSuspected, match="retired at position"):
        notary.issue_digest(ledger.engine, key_path, settings.digests_dir)


def test_a_restored_retired_key_signs_nothing(ledger, rotated, tmp_path):
    _, before, stolen, _, _ = rotated
    restored = tmp_path / "backup" / "signing-key.pem"
    restored.parent.mkdir()
    restored.write_bytes(stolen)
    with pytest.raises(KeyRetired, match="retired at position"):
        notary.issue_digest(ledger.engine, restored, None, before, write=False)
    exported = notary.issue_digest(  # a head before the retirement, as an export asks
        ledger.engine, restored, None, before, write=False, position=before.position
    )
    assert notary.verify_database(ledger.engine, [exported]).ok


def test_the_retired_key_is_kept_only_encrypted_and_only_when_asked(ledger, settings, rotated):
    key_path, _, _, _, new_id = rotated
    current = key_path.read_bytes()
    result = CliRunner().invoke(
        main,
        ["--db", settings.database_url, "signing-key", "rotate", "--keep-retired"],
        input="correct horse\ncorrect horse\n",
    )
    assert result.exit_code == 0, result.output
    (kept,) = key_path.parent.glob(f"signing-key.{new_id}.retired-*.encrypted.pem")
    assert kept.stat().st_mode & 0o777 == 0o600
    with pytest.raises(TypeError):  # not readable without the passphrase
        serialization.load_pem_private_key(kept.read_bytes(), password=None)
    unlocked = serialization.load_pem_private_key(kept.read_bytes(), password=b"correct horse")
    assert key_id_for(unlocked.public_key()) == key_id_for(load_key(current).public_key())


def test_a_rotation_removes_plain_private_keys_an_older_rotation_left(ledger, settings, rotated):
    key_path, before, stolen, old_id, _ = rotated
    for path in key_path.parent.glob("*.retired-*.pub.pem"):
        path.unlink()  # as an older version left it: the private half beside the key
    legacy = key_path.with_name(f"signing-key.{old_id}.retired.pem")
    legacy.write_bytes(stolen)
    after = notary.issue_digest(ledger.engine, key_path, settings.digests_dir)  # still links
    notary.rotate_signing_key(ledger, key_path, actor="test")
    assert not legacy.exists()
    at = retirement_position(ledger.engine, old_id)
    assert key_path.with_name(f"signing-key.{old_id}.retired-{at}.pub.pem").exists()
    _, keys = pinned_keys(key_path)
    assert notary.verify_database(ledger.engine, [before, after], keys).ok


def test_the_old_private_key_is_overwritten_not_only_unlinked(ledger, settings, tmp_path):
    key_path = notary.default_key_path(settings)
    notary.create_signing_key(ledger, key_path, actor="test")
    other_name = tmp_path / "same-file"  # another name for the same bytes on disk
    other_name.hardlink_to(key_path)
    size = other_name.stat().st_size
    notary.rotate_signing_key(ledger, key_path, actor="test")
    assert other_name.read_bytes() == b"\0" * size
