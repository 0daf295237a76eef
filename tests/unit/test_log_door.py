"""Above the ledger nothing names the event table or a topic: every read goes through ledger.log.

tests/ is left out: the storage contract and tamper tests inspect and damage the table
on purpose. bench/ is in: its timings must measure the paths the product takes.
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

from ledger import log
from ledger.lean_insert import EVENTS_TABLE

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = ("projections", "trainers", "policies", "serving", "api", "bench")
FILES = sorted(p for package in OUTSIDE for p in (ROOT / package).rglob("*.py"))


def offences(source: str) -> list[str]:
    """The table's name, its constant, or a topic string, wherever a module spells one."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        text = token.string
        if token.type == tokenize.NAME and text == "EVENTS_TABLE":
            found.append(f"line {token.start[0]}: EVENTS_TABLE")
        elif token.type == tokenize.STRING and (EVENTS_TABLE in text or "ledger.domain." in text):
            found.append(f"line {token.start[0]}: {text[:60]}")
    return found


def test_the_scan_finds_what_it_forbids() -> None:
    assert len(FILES) > 100
    assert offences('MADE = "ledger.domain.predictions:Prediction.Made"\n')
    assert offences('sql = f"SELECT state FROM ledger_events WHERE id = {i}"\n')
    assert offences("from ledger.storage import EVENTS_TABLE\n")
    assert not offences(
        "from ledger.domain.predictions import Prediction\nlog.topic(Prediction.Made)\n"
    )
    assert log.EVENTS.name == EVENTS_TABLE


def test_no_module_outside_the_ledger_names_the_log() -> None:
    found = {
        str(path.relative_to(ROOT)): offences(path.read_text(encoding="utf-8")) for path in FILES
    }
    assert not {k: v for k, v in found.items() if v}, "read the event log through ledger.log"
