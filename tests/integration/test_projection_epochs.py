"""Performance as known at any cut (mid-epoch included, corrections included) equals what
the cells said when the projection stood at that cut."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ledger.application import Ledger
from projections import cubes
from projections.predictions import PredictionsProjection
from projections.query_performance import performance
from projections.registry import ALL
from projections.runner import Runner
from tests.integration.test_projection_properties import NOW_US
from tests.integration.test_projection_world import World, assert_same_tables, dump

READS = [("cls", None), ("cls", "region"), ("cls", "age"), ("reg", None), ("reg", "tenure")]


def reads(ledger: Ledger, as_of: int | None) -> dict[str, Any]:
    out = {}
    for name, feature in READS:
        answer = performance(
            ledger.engine,
            name,
            slice_feature=feature,
            as_of=as_of,
            now_us=NOW_US,
            window_days=40_000,
        )
        out[f"{name} {feature}"] = {
            k: v for k, v in answer.items() if k not in ("as_of", "complete")
        }
    return out


def test_as_of_at_every_cut_equals_the_cells_then(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        cubes, "FINE", 2
    )  # epochs of 2 outcomes: 70 epochs, every level of cells used
    world = World(ledger, seed=3)
    for name in ("cls", "reg"):
        world.add_model(name)
        world.add_model(name, profile=False)
        world.predict(name, 25)
    for i in range(140):
        world.outcome(
            world.rng.randrange(60) if i % 5 else world.rng.randrange(10)
        )  # corrections too
        if i % 37 == 36:
            world.advance(1)  # a new hour starts a new epoch mid-count
    runner = Runner(ledger.engine, PredictionsProjection, page_size=1)
    runner.initialise()
    then: dict[int, dict[str, Any]] = {}
    steps = 0
    while runner.step() > 0:
        steps += 1
        if steps % 40 == 0:
            runner.live = None  # a new instance restores the epoch clock from the outcome rows
        position = _position(ledger)
        if world.rng.random() < 0.3:
            then[position] = reads(ledger, None)
    assert len(then) > 60
    for position, expected in then.items():
        assert_close(
            reads(ledger, position), {k: {**v, "position": position} for k, v in expected.items()}
        )
    for cls in ALL:  # dump() reads every projection
        if cls is not PredictionsProjection:
            Runner(ledger.engine, cls).catch_up()
    incremental = dump(ledger.engine)
    runner.rebuild()  # in pages of its own: the same epochs, cells and outcome rows
    assert_same_tables(incremental, dump(ledger.engine))


def assert_close(got: Any, expected: Any) -> None:
    """Equal, floats up to their last bits (cells add the same numbers in another order)."""
    if isinstance(expected, float):
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9), (got, expected)
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys()
        for key in expected:
            assert_close(got[key], expected[key])
    elif isinstance(expected, list):
        assert len(got) == len(expected)
        for left, right in zip(got, expected, strict=True):
            assert_close(left, right)
    else:
        assert got == expected


def _position(ledger: Ledger) -> int:
    from projections.base import read_position

    with ledger.engine.connect() as conn:
        state = read_position(conn, PredictionsProjection.name)
    assert state is not None
    return state[0]
