"""Projection reads on a standby: used once it has replayed the primary's position, skipped before.

A real streaming standby is what bench/standby.py measures (deploy/standby.sh makes one);
here a second database plays a standby that is behind, and the primary's own database
plays one that has caught up, on both backends.
"""

from __future__ import annotations

import sqlalchemy as sa

from api.replica import ReadRouter
from ledger.application import Ledger
from projections.base import positions, read_position
from projections.models import ModelsProjection
from projections.runner import Runner
from tests.integration.api_support import make_api
from tests.integration.test_projection_runner import populate


def projected(ledger: Ledger) -> int:
    populate(ledger, predictions=20)
    Runner(ledger.engine, ModelsProjection).catch_up()
    with ledger.engine.connect() as conn:
        state = read_position(conn, "models")
    assert state is not None and state[0] > 0
    return state[0]


def set_standby_position(engine: sa.Engine, position: int) -> None:
    positions.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(positions.delete().where(positions.c.name == "models"))
        conn.execute(
            positions.insert().values(
                name="models", position=position, generation=1, version=ModelsProjection.version
            )
        )


def test_a_standby_that_has_replayed_the_primary_position_serves_the_read(ledger: Ledger) -> None:
    projected(ledger)
    router = ReadRouter.for_url(ledger.engine, ledger.settings.database_url, wait_seconds=0.5)
    seen: list[str] = []
    router.observe = seen.append
    try:
        assert router.engine_for("models") is router.standby
        assert seen == ["standby"]
    finally:
        router.close()


def test_a_standby_behind_the_primary_is_skipped_until_it_catches_up(
    ledger: Ledger, parallel_ledger: Ledger
) -> None:
    position = projected(ledger)
    behind = parallel_ledger.settings.database_url
    router = ReadRouter.for_url(ledger.engine, behind, wait_seconds=0.05)
    seen: list[str] = []
    router.observe = seen.append
    try:
        set_standby_position(
            parallel_ledger.engine, position - 1
        )  # the standby itself is read-only
        assert (
            router.engine_for("models") is ledger.engine
        )  # never an older state than the primary's
        set_standby_position(parallel_ledger.engine, position)
        assert router.engine_for("models") is router.standby
        assert seen == ["fallback", "standby"]
    finally:
        router.close()


def test_without_a_standby_every_read_stays_on_the_primary(ledger: Ledger) -> None:
    router = ReadRouter.for_url(ledger.engine, "")
    assert router.standby is None and router.engine_for("models", "predictions") is ledger.engine


def test_the_api_answers_projection_reads_from_the_standby(ledger: Ledger) -> None:
    projected(ledger)
    api = make_api(ledger)
    on_primary = api.call("GET", "/v1/models", role="auditor")
    assert on_primary.status_code == 200 and on_primary.json["items"]
    services = api.client.app.services
    services.reads = ReadRouter.for_url(ledger.engine, ledger.settings.database_url)
    seen: list[str] = []
    services.reads.observe = seen.append
    try:
        assert api.call("GET", "/v1/models", role="auditor").json == on_primary.json
        assert seen == ["standby"]
    finally:
        services.reads.close()
