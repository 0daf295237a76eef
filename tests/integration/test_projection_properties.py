"""Property: for random sequences of events, incremental = rebuild, and as_of(T) = then."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from projections.query_catalog import get_deployment, get_model, list_deployments, list_models
from projections.query_performance import performance
from projections.query_predictions import list_predictions
from projections.registry import ALL
from projections.runner import Runner
from tests.integration.test_projection_world import World, assert_same_tables, dump

NOW_US = 4_102_444_800_000_000  # 2100-01-01: every window ends long after the test's events

deployment = st.sampled_from(["cls", "reg"])
command = st.one_of(
    st.tuples(st.just("add_model"), deployment, st.booleans()),
    st.tuples(st.just("promote"), deployment, st.integers(0, 5)),
    st.tuples(st.just("retire"), deployment, st.integers(0, 5)),
    st.tuples(st.just("predict"), deployment, st.integers(1, 6)),
    st.tuples(st.just("predict"), deployment, st.integers(1, 6)),
    st.tuples(st.just("outcome"), st.integers(0, 1000)),
    st.tuples(st.just("outcome"), st.integers(0, 1000)),
    st.tuples(st.just("outcome"), st.integers(0, 1000)),
    st.tuples(st.just("advance"), st.sampled_from([0.3, 1, 7, 30])),
)


def everything(engine: Any, as_of: int | None) -> dict[str, Any]:
    """Every read the API offers, at one position."""

    def clean(answer: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in answer.items() if k not in ("as_of", "complete")}

    out: dict[str, Any] = {"deployments": clean(list_deployments(engine, as_of))}
    out["models"] = clean(list_models(engine, as_of=as_of, limit=1000))
    for item in out["models"]["items"]:
        out[f"model {item['model_id']}"] = clean(get_model(engine, item["model_id"], as_of))
    for name in ("cls", "reg"):
        out[f"deployment {name}"] = clean(get_deployment(engine, name, as_of))
        for feature in (None, "region", "age", "vip"):
            out[f"perf {name} {feature}"] = clean(
                performance(
                    engine,
                    name,
                    slice_feature=feature,
                    as_of=as_of,
                    now_us=NOW_US,
                    window_days=40_000,
                )
            )
    out["predictions"] = clean(list_predictions(engine, limit=1000, as_of=as_of))
    return _round(out)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


@pytest.mark.slow
def test_incremental_equals_rebuild_and_as_of_equals_then(ledger: Ledger) -> None:
    world = World(ledger, seed=1)
    for name in ("cls", "reg"):
        world.add_model(name, profile=False)  # bins stay "unbinned" until a profiled model joins
        world.predict(name, 3)
    runners = {cls.name: Runner(ledger.engine, cls, page_size=3) for cls in ALL}
    seen: dict[int, dict[str, Any]] = {}

    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(command, min_size=4, max_size=16), st.integers(1, 9))
    def run(commands: list[tuple[Any, ...]], page_size: int) -> None:
        for name, *args in commands:
            getattr(world, name)(*args)
        for runner in runners.values():
            runner.page_size = page_size
            runner.catch_up()
        at = min(_position(ledger, cls.name) for cls in ALL)
        seen[at] = everything(ledger.engine, None)
        incremental = dump(ledger.engine)
        for runner in runners.values():
            runner.rebuild()
        rebuilt = dump(ledger.engine)
        assert_same_tables(incremental, rebuilt)
        for position, then in list(seen.items())[
            -3:
        ]:  # older ones were checked by earlier examples
            now = everything(ledger.engine, position)
            for key in then:
                assert now[key] == {**then[key], "position": position} | {"position": position}, key

    run()


def _position(ledger: Ledger, name: str) -> int:
    from projections.base import read_position

    with ledger.engine.connect() as conn:
        state = read_position(conn, name)
    assert state is not None
    return state[0]
