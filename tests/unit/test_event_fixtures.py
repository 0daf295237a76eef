"""Stored events of every type, serialised once, must keep loading into their classes.

tests/fixtures/events/ holds one JSON file per event class and class_version, written by
the application's own mapper. A new event class (or a new class_version) fails here until
its fixture exists; write missing ones with

    LEDGER_WRITE_EVENT_FIXTURES=1 .venv/bin/pytest -q tests/unit/test_event_fixtures.py

and commit them. Never edit or delete an old fixture: when a payload changes, bump
`class_version`, add `upcast_vN_vN+1`, and the old file proves old events still load.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import pkgutil
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import StoredEvent

import ledger.domain
from ledger.application import Ledger
from ledger.settings import Settings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
WRITE = os.environ.get("LEDGER_WRITE_EVENT_FIXTURES") == "1"
EXAMPLES = {"str": "example", "int": 7, "float": 0.25, "bool": True, "Any": "any"}


def event_classes() -> list[type]:
    """Every event class declared in ledger/domain (not the ones eventsourcing makes implicitly)."""
    found = []
    for info in pkgutil.iter_modules(ledger.domain.__path__):
        module = importlib.import_module(f"ledger.domain.{info.name}")
        for aggregate in vars(module).values():
            if not (
                inspect.isclass(aggregate)
                and issubclass(aggregate, Aggregate)
                and aggregate.__module__ == module.__name__
            ):
                continue
            source = inspect.getsource(aggregate)
            for name, cls in vars(aggregate).items():
                declared = re.search(rf"^\s+class {name}\(", source, re.MULTILINE)
                if inspect.isclass(cls) and issubclass(cls, CanMutateAggregate) and declared:
                    found.append(cls)
    return found


def fixture_name(cls: type) -> str:
    module = cls.__module__.rsplit(".", 1)[1]
    return f"{module}.{cls.__qualname__}.v{getattr(cls, 'class_version', 1)}.json"


def example(annotation: str) -> Any:
    """A plausible value for a field's annotation (optional fields get their non-None type)."""
    annotation = annotation.replace(" | None", "").replace("None | ", "").strip()
    if annotation.startswith("dict"):
        return {"key": "value", "number": 1.5}
    if annotation.startswith("list"):
        return ["item"]
    return EXAMPLES.get(annotation, "example")


def build(cls: type) -> Any:
    """An instance of the event class with example values in every field."""
    values: dict[str, Any] = {
        "originator_id": uuid.UUID(int=1),
        "originator_version": 1,
        "timestamp": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    }
    for field in dataclasses.fields(cls):
        if field.name == "originator_topic":
            values[field.name] = f"{cls.__module__}:{cls.__qualname__.rsplit('.', 1)[0]}"
        elif field.name not in values:
            values[field.name] = example(str(field.type))
    return cls(**values)


@pytest.fixture(scope="module")
def mapper(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("fixtures")
    app = Ledger(
        Settings(home=home, database_url=f"sqlite:///{home / 'ledger.db'}", group_commit=False)
    )
    yield app.mapper
    app.close()


def write_fixture(mapper, cls: type) -> None:  # noqa: ANN001
    stored = mapper.to_stored_event(build(cls))
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / fixture_name(cls)).write_text(
        json.dumps(
            {
                "topic": stored.topic,
                "originator_id": str(stored.originator_id),
                "originator_version": stored.originator_version,
                "state": stored.state.decode("utf-8"),
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )


def load_fixture(mapper, path: Path) -> Any:  # noqa: ANN001
    data = json.loads(path.read_text())
    return mapper.to_domain_event(
        StoredEvent(
            originator_id=uuid.UUID(data["originator_id"]),
            originator_version=data["originator_version"],
            topic=data["topic"],
            state=data["state"].encode("utf-8"),
        )
    )


def test_every_event_class_has_a_fixture_of_its_current_version(mapper):
    classes = event_classes()
    assert len(classes) >= 20, "event discovery found too little: is ledger/domain importable?"
    missing = [fixture_name(c) for c in classes if not (FIXTURES / fixture_name(c)).exists()]
    if WRITE:
        for cls in classes:
            if fixture_name(cls) in missing:
                write_fixture(mapper, cls)
        missing = []
    assert not missing, (
        f"no stored fixture for {', '.join(missing)}: run LEDGER_WRITE_EVENT_FIXTURES=1 "
        ".venv/bin/pytest -q tests/unit/test_event_fixtures.py and commit tests/fixtures/events/"
    )


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_every_stored_fixture_still_loads_into_its_class(mapper, path):
    event = load_fixture(mapper, path)
    cls = type(event)
    assert path.name.startswith(f"{cls.__module__.rsplit('.', 1)[1]}.{cls.__qualname__}.v")
    missing = {f.name for f in dataclasses.fields(cls)} - set(vars(event))
    assert not missing, f"{path.name} lacks {missing}: add an upcaster to {cls.__qualname__}"
    assert event.timestamp.tzinfo is not None and isinstance(event.originator_id, uuid.UUID)


class Renamed(Aggregate):
    """A schema change done right: version 2 renamed `who` to `actor`."""

    class Noted(Aggregate.Event):
        class_version = 2
        text: str
        actor: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["actor"] = state.pop("who")


def test_an_upcaster_brings_a_version_1_event_up_to_date(mapper):
    v1 = StoredEvent(
        originator_id=uuid.UUID(int=2),
        originator_version=2,
        topic=f"{__name__}:Renamed.Noted",
        state=b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:05+00:00"},'
        b'"text":"hello","who":"cli:ops"}',
    )
    event = mapper.to_domain_event(v1)
    assert (event.text, event.actor) == ("hello", "cli:ops")
    assert b'"class_version":2' in mapper.to_stored_event(event).state


def standard_transcoder():  # noqa: ANN201
    from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


EDGE_PAYLOADS = [
    {
        "plain": "é€",
        "n": 1,
        "f": 0.1,
        "b": True,
        "none": None,
        "list": [1, "a", [2.5]],
        "t": (1, 2),
    },
    {"nan": float("nan"), "inf": [float("-inf")]},
    {"id": uuid.UUID(int=5), "nested": {"ids": [uuid.UUID(int=6)]}},
    {"when": datetime(2026, 1, 1, tzinfo=UTC), "deep": {"when": datetime(2026, 1, 2, tzinfo=UTC)}},
    {"keys": {1: "int key"}},
]


@pytest.mark.parametrize(
    "payload", EDGE_PAYLOADS, ids=["plain", "nan", "uuid", "datetimes", "int-keys"]
)
def test_the_orjson_transcoder_writes_and_reads_what_the_standard_one_does(mapper, payload):
    import numpy as np

    ours, standard = mapper.transcoder, standard_transcoder()
    payload = {**payload, "np": np.float64(0.5)} if "plain" in payload else payload
    assert ours.encode(payload) == standard.encode(payload)
    assert repr(ours.decode(standard.encode(payload))) == repr(
        standard.decode(standard.encode(payload))
    )


def test_every_fixture_decodes_alike_with_both_transcoders(mapper):
    standard = standard_transcoder()
    for path in sorted(FIXTURES.glob("*.json")):
        state = json.loads(path.read_text())["state"].encode()
        assert mapper.transcoder.decode(state) == standard.decode(state), path.name
