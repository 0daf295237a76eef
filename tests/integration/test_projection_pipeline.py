"""A rebuild in many small pages (on PostgreSQL its writes pipelined on a second connection)
equals the incremental tables; a write that fails fails the rebuild and leaves the live tables."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ledger.application import Ledger
from projections.base import read_position
from projections.events import Event
from projections.predictions import PredictionsProjection
from projections.runner import Runner
from tests.integration.test_projection_erasure import ME, Scene, project
from tests.integration.test_projection_world import assert_same_tables, dump


def paged(size: int) -> type[PredictionsProjection]:
    return type(f"Paged{size}", (PredictionsProjection,), {"rebuild_page": size})


def scene_with_forget(ledger: Ledger) -> Scene:
    """Outcomes, corrections an hour later, a forget, and outcomes of erased predictions after it."""
    scene = Scene(ledger)
    scene.populate()
    ledger.forget_subject(ME, reason="erasure request", actor="key:admin", deployment="cls")
    mine = scene.made[("cls", ME)]
    scene.outcome(mine[0], "cls", 4)
    scene.outcome(mine[2], "cls", 5)
    for i, pid in enumerate(scene.made[("reg", ME)]):
        scene.outcome(pid, "reg", i + 10)
    return scene


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_a_rebuild_in_small_pages_equals_the_incremental_tables(ledger: Ledger, size: int) -> None:
    scene_with_forget(ledger)
    project(ledger, page_size=5)
    incremental = dump(ledger.engine)
    Runner(ledger.engine, paged(size)).rebuild()
    assert_same_tables(incremental, dump(ledger.engine))


class FailsOnThirdPage(PredictionsProjection):
    """A rebuild whose third page's writes fail (on the writer's connection on PostgreSQL)."""

    rebuild_page = 3
    pages = 0

    def apply(self, conn, events: Sequence[Event]) -> None:  # noqa: ANN001
        FailsOnThirdPage.pages += 1
        if FailsOnThirdPage.pages == 3:
            self.tables = {
                **self.tables,
                "outcomes": self.tables["deployments"],
            }  # a COPY that cannot work
        super().apply(conn, events)


def test_a_failed_write_fails_the_rebuild_and_the_live_tables_stay(ledger: Ledger) -> None:
    scene_with_forget(ledger)
    project(ledger, page_size=5)
    incremental = dump(ledger.engine)
    with ledger.engine.connect() as conn:
        live = read_position(conn, "predictions")
    FailsOnThirdPage.pages = 0
    with pytest.raises(Exception):  # noqa: B017 - whatever the database says about the bad rows
        Runner(ledger.engine, FailsOnThirdPage).rebuild()
    with ledger.engine.connect() as conn:
        assert read_position(conn, "predictions") == live
    assert_same_tables(incremental, dump(ledger.engine))
    Runner(ledger.engine, paged(4)).rebuild()  # the next rebuild starts again from empty tables
    assert_same_tables(incremental, dump(ledger.engine))
