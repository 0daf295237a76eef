"""The demo's keys: issued once, saved owner-only, printed again on every restart."""

from __future__ import annotations

import stat

from api.demo import ensure_keys, keys_path, print_keys


def test_demo_keys_are_saved_once_and_reused(ledger, settings):
    first = ensure_keys(ledger, settings)
    assert set(first) == {"admin", "predictor", "auditor"}
    assert all(ledger.authenticate(key).role == role for role, key in first.items())
    assert stat.S_IMODE(keys_path(settings).stat().st_mode) == 0o600
    assert ensure_keys(ledger, settings) == first


def test_revoked_demo_keys_are_replaced(ledger, settings):
    first = ensure_keys(ledger, settings)
    ledger.revoke_api_key(first["admin"].split("_")[1], reason="test", actor="test")
    second = ensure_keys(ledger, settings)
    assert second["admin"] != first["admin"] and ledger.authenticate(second["admin"])


def test_the_keys_are_printed_with_where_to_start(ledger, settings, capsys):
    print_keys(ensure_keys(ledger, settings), keys_path(settings), "127.0.0.1", 8000)
    out = capsys.readouterr().out
    assert "predictor" in out and "http://127.0.0.1:8000/docs" in out
