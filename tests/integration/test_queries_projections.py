"""Queries over the read tables: metrics match scikit-learn, filters, cursors, as_of, waits."""

from __future__ import annotations

import math
import re

import pytest
from sklearn import metrics as sk

from ledger.application import Ledger
from projections import query_predictions
from projections.query_catalog import get_deployment, get_model, list_models
from projections.query_performance import performance
from projections.query_predictions import list_predictions
from projections.registry import ALL
from projections.runner import Runner
from projections.snapshot import ProjectionNotReady
from tests.integration.test_projection_world import World


def catch_up(ledger: Ledger) -> None:
    for cls in ALL:
        Runner(ledger.engine, cls).catch_up()


@pytest.fixture
def world(ledger: Ledger) -> World:
    world = World(ledger, seed=11)
    for name in ("cls", "reg"):
        world.add_model(name)
        world.add_model(name, profile=False)
        world.predict(name, 30)
    for i in range(40):
        world.outcome(i * 3)
    catch_up(ledger)
    return world


def labels(ledger: Ledger, deployment: str, model: str) -> tuple[list, list, list[str]]:
    rows = list_predictions(ledger.engine, deployment=deployment, has_outcome=True, limit=1000)[
        "items"
    ]
    actual = [r["outcome"]["actual"] for r in rows]
    predicted = [r["outputs"][model]["value"] for r in rows]
    return actual, predicted, [r["features"]["region"] for r in rows]


def test_performance_agrees_with_sklearn_for_every_model_and_slice(
    ledger: Ledger, world: World
) -> None:
    answer = performance(ledger.engine, "cls", slice_feature="region")
    assert {r["model_id"] for r in answer["results"]} == set(
        world.models["cls"]
    )  # served and shadow
    for r in answer["results"]:
        actual, predicted, regions = labels(ledger, "cls", r["model_id"])
        keep = [i for i, region in enumerate(regions) if region == r["slice_value"]]
        a, p = [actual[i] for i in keep], [predicted[i] for i in keep]
        assert r["count"] == len(keep)
        assert math.isclose(r["accuracy"], sk.accuracy_score(a, p))
        assert math.isclose(
            r["f1"], sk.f1_score(a, p, pos_label=1, average="binary", zero_division=0)
        )
        assert math.isclose(
            r["precision"], sk.precision_score(a, p, average="binary", zero_division=0)
        )


def test_regression_performance_agrees_with_sklearn(ledger: Ledger, world: World) -> None:
    for r in performance(ledger.engine, "reg")["results"]:
        actual, predicted, _ = labels(ledger, "reg", r["model_id"])
        assert r["count"] == len(actual)
        assert math.isclose(r["mae"], sk.mean_absolute_error(actual, predicted))
        assert math.isclose(r["rmse"], math.sqrt(sk.mean_squared_error(actual, predicted)))


def test_a_correction_replaces_the_old_outcome_and_as_of_still_sees_the_old(
    ledger: Ledger, world: World
) -> None:
    deployment, pid = world.predictions[0]
    before = performance(ledger.engine, deployment)
    first = list_predictions(ledger.engine, deployment=deployment, limit=1000)
    old = next(r for r in first["items"] if r["prediction_id"] == pid)["outcome"]
    world.advance(2)
    ledger.record_outcome(pid, 2 if deployment == "cls" else 99.0, None, actor="key:test")
    catch_up(ledger)
    after = performance(ledger.engine, deployment)
    then = performance(ledger.engine, deployment, as_of=before["position"])
    assert [r["count"] for r in then["results"]] == [r["count"] for r in before["results"]]
    assert then["results"] == before["results"] and after["results"] != before["results"]
    assert sum(r["count"] for r in after["results"]) == sum(
        r["count"] for r in before["results"]
    ) + (0 if old else len(world.models[deployment]))
    now = next(
        r for r in list_predictions(ledger.engine, limit=1000)["items"] if r["prediction_id"] == pid
    )
    assert now["outcome"]["corrected"] is bool(old)


def test_feature_filters_flags_and_outcomes(ledger: Ledger, world: World) -> None:
    everything = list_predictions(ledger.engine, limit=1000)["items"]
    north = list_predictions(ledger.engine, features={"region": "north"}, limit=1000)["items"]
    assert north and {r["prediction_id"] for r in north} == {
        r["prediction_id"] for r in everything if r["features"]["region"] == "north"
    }
    age = everything[0]["features"]["age"]
    by_age = list_predictions(ledger.engine, features={"age": str(age)}, limit=1000)["items"]
    assert everything[0]["prediction_id"] in {r["prediction_id"] for r in by_age}
    vip = list_predictions(ledger.engine, features={"vip": "true"}, limit=1000)["items"]
    assert {r["prediction_id"] for r in vip} == {
        r["prediction_id"] for r in everything if r["features"]["vip"]
    }
    flagged = list_predictions(ledger.engine, flagged=True, limit=1000)["items"]
    assert {r["prediction_id"] for r in flagged} == {
        r["prediction_id"] for r in everything if r["flags"]
    }
    unknown = list_predictions(ledger.engine, has_outcome=False, limit=1000)["items"]
    assert all(r["outcome"] is None for r in unknown) and len(unknown) < len(everything)


def test_a_feature_name_is_never_a_json_path(ledger: Ledger, world: World, monkeypatch) -> None:
    for odd in ('region"', 're"gion', "region')--", "$.region", "region\\"):
        assert list_predictions(ledger.engine, features={odd: "north"}, limit=10)["items"] == []
    # The by-key match (used for names a path cannot hold) agrees with the path.
    filters = {"region": "north", "vip": "true"}
    by_path = list_predictions(ledger.engine, features=filters, limit=1000)["items"]
    monkeypatch.setattr(query_predictions, "PATH_SAFE", re.compile(r"(?!)"))
    by_key = list_predictions(ledger.engine, features=filters, limit=1000)["items"]
    assert by_path and by_key == by_path


def test_the_cursor_is_pinned_to_a_position_and_visits_each_row_once(
    ledger: Ledger, world: World
) -> None:
    page = list_predictions(ledger.engine, deployment="cls", limit=7)
    seen = [r["prediction_id"] for r in page["items"]]
    world.predict("cls", 5)  # arrives after the first page: not part of this listing
    catch_up(ledger)
    while page["next_cursor"]:
        page = list_predictions(
            ledger.engine, deployment="cls", limit=7, cursor=page["next_cursor"]
        )
        seen += [r["prediction_id"] for r in page["items"]]
    assert len(seen) == len(set(seen)) == 30


def test_model_index_has_provenance_and_roles_over_time(ledger: Ledger, world: World) -> None:
    first, second = world.models["cls"]
    start = get_deployment(ledger.engine, "cls")["position"]
    world.promote("cls", 0)
    catch_up(ledger)
    model = get_model(ledger.engine, first)
    assert model["params"] == {"C": 1.0} and model["metrics"] == {"f1": 0.5}
    assert (
        model["code_version"]["commit"] == "abc"
        and model["data_time_range"]["start"] == "2026-01-01"
    )
    assert model["roles"] == {"cls": "challenger"}
    assert get_model(ledger.engine, first, as_of=start)["roles"] == {"cls": "leader"}
    assert get_deployment(ledger.engine, "cls")["leader"] == second
    assert get_deployment(ledger.engine, "cls")["leader_set_by"]["actor"] == "test:admin"
    assert len(list_models(ledger.engine, deployment="cls")["items"]) == 2


def test_an_as_of_beyond_the_projection_waits_then_says_it_is_incomplete(
    ledger: Ledger, world: World
) -> None:
    positions = world.predict("cls", 1)
    answer = list_predictions(ledger.engine, as_of=positions[-1], wait=0.2)
    assert answer["complete"] is False and answer["position"] < positions[-1]
    catch_up(ledger)
    answer = list_predictions(ledger.engine, as_of=positions[-1], wait=0.2)
    assert answer["complete"] is True and answer["position"] == positions[-1]


def test_reads_before_any_runner_say_what_to_run(ledger: Ledger) -> None:
    with pytest.raises(ProjectionNotReady, match="ledger project"):
        list_predictions(ledger.engine)
