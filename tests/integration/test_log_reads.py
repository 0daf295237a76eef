"""ledger.log: pages by position, one aggregate's events, events by class; upcast everywhere."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

from ledger import log
from ledger.domain.deployments import Deployment
from ledger.domain.predictions import Prediction
from projections import events as ev


class Gadget(Aggregate):
    """A test aggregate whose Renamed event is at class version 2."""

    class Made(Aggregate.Created):
        name: str

    class Renamed(Aggregate.Event):
        class_version = 2
        name: str
        by: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["by"] = "unknown"  # version 1 did not say who renamed

    class Tagged(Aggregate.Event):
        tag: str

    def __init__(self, name: str):
        self.name = name

    def rename(self, name: str, by: str) -> None:
        self.trigger_event(self.Renamed, name=name, by=by)

    def tag(self, tag: str) -> None:
        self.trigger_event(self.Tagged, tag=tag)


def _gadgets(ledger, count: int) -> list[Gadget]:
    made = []
    for i in range(count):
        gadget = Gadget(name=f"g{i}")
        gadget.tag(f"t{i}")
        ledger.save(gadget)
        made.append(gadget)
    return made


def _store_v1_rename(ledger, gadget: Gadget, name: str) -> None:
    """A Renamed event as version 1 stored it: no `by`, no class_version."""
    state = {"name": name, "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00"}}
    ledger.recorder_.insert_now(
        [StoredEvent(gadget.id, gadget.version + 1, log.topic(Gadget.Renamed), orjson.dumps(state))]
    )


def test_pages_follow_positions_and_reach_the_asked_width(ledger) -> None:
    gadgets = _gadgets(ledger, 5)
    with ledger.engine.connect() as conn:
        top = log.head(conn)
        rows, reached = log.raw_page(conn, 0, top, 4)
        events, again = log.page(ledger.mapper, conn, 0, top, 4)
        whole = log.rows(conn)
    assert (reached, again, top, len(whole)) == (4, 4, 10, 10)
    assert [r.position for r in rows] == [1, 2, 3, 4]
    assert [r.originator_id for r in rows] == [str(g.id) for g in gadgets[:2] for _ in (1, 2)]
    assert [type(e) for e in events] == [Gadget.Made, Gadget.Tagged] * 2
    assert [e.originator_id for e in events] == [g.id for g in gadgets[:2] for _ in (1, 2)]
    assert rows[1].topic == log.topic(Gadget.Tagged)
    assert log.fields(rows[1])["tag"] == "t0"


def test_pages_by_class_by_originator_and_by_time(ledger) -> None:
    gadgets = _gadgets(ledger, 3)
    with ledger.engine.connect() as conn:
        tags = log.by_topic(ledger.mapper, conn, [Gadget.Tagged])
        later = log.by_topic(ledger.mapper, conn, [Gadget.Tagged], after=2, upto=4)
        one = log.by_originator(ledger.mapper, conn, gadgets[1].id)
        made_only = log.by_originator(ledger.mapper, conn, str(gadgets[1].id), [Gadget.Made])
        first = log.rows(conn, originators=[gadgets[2].id], version=1)
        at = log.events(ledger.mapper, conn, recorded_at=first[0].recorded_at)
        none = log.by_topic(ledger.mapper, conn, [Prediction.Made, Deployment.Created])
        count = log.count(conn, [Gadget.Made, Gadget.Tagged])
        owners = log.originators(conn, [Gadget.Tagged])
    assert [e.tag for e in tags] == ["t0", "t1", "t2"]
    assert [e.tag for e in later] == ["t1"]
    assert [(type(e), e.originator_version) for e in one] == [(Gadget.Made, 1), (Gadget.Tagged, 2)]
    assert [e.name for e in made_only] == ["g1"]
    assert first[0].position == 5 and time_ok(ledger, first[0])
    # saved together: the same instant (another save may fall in the same microsecond)
    assert gadgets[2].id in {e.originator_id for e in at} and len(at) <= 6
    assert none == [] and count == 6
    assert sorted(owners) == sorted(str(g.id) for g in gadgets)


def time_ok(ledger, row: log.LogRow) -> bool:
    with ledger.engine.connect() as conn:
        return (
            log.time_of(conn, row.position)
            == row.recorded_at
            == log.recorded_at_of(conn, row.position)
        )


def test_every_reader_returns_the_upcast_event(ledger) -> None:
    (gadget,) = _gadgets(ledger, 1)
    _store_v1_rename(ledger, gadget, "old style")
    gadget = ledger.repository.get(gadget.id)
    gadget.rename("new style", by="ana")
    ledger.save(gadget)
    with ledger.engine.connect() as conn:
        top = log.head(conn)
        paged, _ = log.page(ledger.mapper, conn, 0, top, 100)
        by_originator = log.by_originator(ledger.mapper, conn, gadget.id, [Gadget.Renamed])
        by_topic = log.by_topic(ledger.mapper, conn, [Gadget.Renamed])
        standalone = log.by_topic(log.mapper(), conn, [Gadget.Renamed])
    expected = [("old style", "unknown"), ("new style", "ana")]
    for found in (paged[2:], by_originator, by_topic, standalone):
        assert [(e.name, e.by) for e in found] == expected


def test_readers_of_stored_json_see_the_upcast_state_and_sql_refuses_a_newer_class(ledger) -> None:
    (gadget,) = _gadgets(ledger, 1)
    _store_v1_rename(ledger, gadget, "old style")
    gadget = ledger.repository.get(gadget.id)
    gadget.rename("new style", by="ana")
    ledger.save(gadget)
    with ledger.engine.connect() as conn:
        old, new = log.rows(conn, classes=[Gadget.Renamed])
        assert (log.fields(old)["name"], log.fields(old)["by"]) == ("old style", "unknown")
        assert (log.fields(new)["name"], log.fields(new)["by"]) == ("new style", "ana")
        assert ev.decode(old).state["by"] == "unknown"
        with pytest.raises(log.StaleReader, match="Gadget.Renamed is at class version 2"):
            log.states_sql(conn, Gadget.Renamed)
        sql, params = log.states_sql(conn, Gadget.Tagged)
        assert params == {"topic": log.topic(Gadget.Tagged)}


def test_topics_come_from_the_classes_the_mapper_stores(ledger) -> None:
    (gadget,) = _gadgets(ledger, 1)
    with ledger.engine.connect() as conn:
        stored = {r.topic for r in log.rows(conn)}
    assert stored == {log.topic(Gadget.Made), log.topic(Gadget.Tagged)}
    assert log.kind(Prediction.Made) == "Prediction.Made"
    assert log.topics([Gadget.Tagged, Gadget.Made, Gadget.Made]) == sorted(stored)
    assert log.originator_key(conn, gadget.id) in (str(gadget.id), gadget.id.bytes)
    assert log.originator_text(gadget.id.bytes) == str(gadget.id) == str(uuid.UUID(str(gadget.id)))
