"""The read endpoints over HTTP: roles, filters, cursors, as_of, and read-your-writes."""

from __future__ import annotations

import threading
import time

from ledger.application import Ledger
from projections.predictions import PredictionsProjection
from projections.registry import ALL
from projections.runner import Runner
from tests.integration.api_support import make_api
from tests.integration.test_projection_world import World


def test_the_read_endpoints_answer_with_their_position(ledger: Ledger) -> None:
    world = World(ledger, seed=5)
    model = world.add_model("cls")
    world.predict("cls", 12)
    for i in range(8):
        world.outcome(i)
    for cls in ALL:
        Runner(ledger.engine, cls).catch_up()
    api = make_api(ledger)

    page = api.call(
        "GET",
        "/v1/predictions",
        "auditor",
        params={"deployment": "cls", "limit": "5", "feature.region": "north"},
    )
    assert page.status_code == 200, page.text
    assert (
        all(i["features"]["region"] == "north" for i in page.json["items"])
        and page.json["complete"]
    )
    assert api.call("GET", "/v1/predictions", "predictor").status_code == 403
    assert (
        api.call("GET", "/v1/predictions", "auditor", params={"cursor": "junk"}).status_code == 400
    )
    assert (
        api.call("GET", "/v1/predictions", "auditor", params={"as_of": "yesterday"}).status_code
        == 400
    )

    perf = api.call(
        "GET", "/v1/performance", "admin", params={"deployment": "cls", "slice": "region"}
    )
    assert perf.status_code == 200, perf.text
    assert sum(r["count"] for r in perf.json["results"]) == 8
    assert api.call("GET", "/v1/performance", "admin").json["code"] == "missing_parameter"

    models = api.call("GET", "/v1/models", "predictor")
    assert models.status_code == 200 and [m["model_id"] for m in models.json["items"]] == [model]
    one = api.call("GET", f"/v1/models/{model}", "auditor", params={"as_of": "pos:1"})
    assert one.status_code == 404  # the model did not exist at position 1
    assert api.call("GET", f"/v1/models/{model}", "auditor").json["roles"] == {"cls": "leader"}


def test_a_feature_filter_names_a_feature_of_the_input_schema(ledger: Ledger) -> None:
    world = World(ledger, seed=7)
    world.add_model("cls")
    world.predict("cls", 6)
    for cls in ALL:
        Runner(ledger.engine, cls).catch_up()
    api = make_api(ledger)

    def index(**params):
        return api.call("GET", "/v1/predictions", "auditor", params=params)

    quoted = index(deployment="cls", **{'feature.region"': "north"})
    assert quoted.status_code == 422 and quoted.json["code"] == "unknown_feature", quoted.text
    assert quoted.json["field"] == 'feature.region"' and "region" in quoted.json["detail"]
    assert index(**{"feature.re'gion": "north"}).json["code"] == "unknown_feature"
    nowhere = index(deployment="nope", **{'feature.re"gion': "north"})
    assert nowhere.status_code == 200 and nowhere.json["items"] == []  # no such deployment
    unknown = index(deployment="cls", **{"feature.colour": "red"})
    assert unknown.json["unknown"] == ["colour"] and "known: " in unknown.json["detail"]
    for params in ({"deployment": "cls"}, {}):
        answer = index(**params, **{"feature.region": "north"})
        assert answer.status_code == 200, answer.text
        assert all(i["features"]["region"] == "north" for i in answer.json["items"])


def test_min_position_waits_for_a_write_just_made(ledger: Ledger) -> None:
    world = World(ledger, seed=6)
    world.add_model("cls")
    for cls in ALL:
        Runner(ledger.engine, cls).catch_up()
    api = make_api(ledger)
    stop = threading.Event()
    follower = threading.Thread(
        target=Runner(ledger.engine, PredictionsProjection, poll_interval=0.05).follow, args=(stop,)
    )
    follower.start()
    try:
        position = world.predict("cls", 1)[-1]
        answer = api.call(
            "GET", "/v1/predictions", "auditor", params={"min_position": str(position)}
        )
        assert (
            answer.status_code == 200
            and answer.json["complete"]
            and answer.json["position"] >= position
        )
        assert answer.json["items"][0]["position"] == position
    finally:
        stop.set()
        follower.join(10)


def test_min_position_past_the_head_answers_at_once(ledger: Ledger) -> None:
    world = World(ledger, seed=7)
    world.add_model("cls")
    for cls in ALL:
        Runner(ledger.engine, cls).catch_up()
    api = make_api(ledger)
    started = time.monotonic()
    answer = api.call("GET", "/v1/predictions", "auditor", params={"min_position": "10000000"})
    assert answer.status_code == 200 and not answer.json["complete"]
    assert time.monotonic() - started < 2.0  # no 5 s wait for a position not recorded yet
