"""Journey 6: clone production as of an instant, replay the traffic after it, compare."""

from __future__ import annotations

import pytest

from api.replay import Request, ledger_requests, replay
from ledger.clone import clone_ledger
from ledger.ids import prediction_id
from ledger.timeline import head_position
from projections.compare import compare
from tests.integration.api_support import (
    ROW,
    deployment_with_models,
    make_api,
    predict,
    register_model,
)


@pytest.fixture
def parallel(parallel_ledger):
    """The production-parallel environment: an empty ledger on the same backend."""
    return parallel_ledger


def _sender(api):
    def send(method, path, body):
        answer = api.call(method, path, role="predictor", json=body)
        return answer.status_code, answer.json

    return send


def test_a_thousand_replayed_predictions_give_a_compare_report(ledger, parallel):
    production = make_api(ledger)
    deployment_with_models(production, kinds=("logistic", "tree"))
    cut = head_position(ledger.engine)
    rows = [
        {**ROW, "age": 18.0 + (i % 60), "income": 10_000.0 + 101.0 * i, "customer": f"c-{i % 50}"}
        for i in range(1000)
    ]
    for start in range(0, 960, 320):
        assert (
            predict(
                production, {"instances": rows[start : start + 320], "request_id": f"b{start}"}
            ).status_code
            == 201
        )
    for i in range(960, 1000):
        assert predict(production, {"features": rows[i], "request_id": f"s{i}"}).status_code == 201
    outcomes = [
        {
            "deployment": "churn",
            "request_id": f"b{i // 320 * 320}#{i % 320}" if i < 960 else f"s{i}",
            "actual": "yes",
        }
        for i in range(0, 1000, 10)
    ]
    assert production.call("POST", "/v1/outcomes", role="predictor", json=outcomes).status_code in (
        200,
        201,
    )

    clone_ledger(ledger.engine, parallel.engine, cut)
    candidate = make_api(parallel)
    challenger = register_model(parallel, "always_yes")
    assert (
        candidate.call(
            "POST", "/v1/deployments/churn/models", json={"model_id": challenger}
        ).status_code
        == 201
    )

    stats = replay(
        ledger_requests(ledger, cut, head_position(ledger.engine)), _sender(candidate), speed=0
    )
    assert stats.failed == 0 and stats.skipped_erased == 0
    assert stats.sent == 3 + 40 + 100  # three batches, forty singles, a hundred outcomes

    report = compare(ledger, parallel)
    assert report.compared == 1000 and report.only_baseline == 0 and report.only_candidate == 0
    assert report.agreement_rate == 1.0  # same leader, same rows: the same answers
    assert report.model_metrics[f"candidate:{challenger}"] == {"accuracy": 1.0, "count": 100}
    assert f"baseline:{challenger}" not in report.model_metrics  # production never had it


def test_replay_keeps_the_original_cadence_scaled_by_speed():
    now = [0.0]
    sent_at = []
    requests = iter(
        [
            Request(at=s * 1_000_000, position=s, path="/p", body={}, kind="prediction")
            for s in (0, 10, 30)
        ]
    )

    def send(method, path, body):
        sent_at.append(now[0])
        return 201, {}

    def sleep(seconds):
        now[0] += seconds

    stats = replay(requests, send, speed=20, clock=lambda: now[0], sleep=sleep)
    assert stats.sent == 3 and sent_at == pytest.approx([0.0, 0.5, 1.5])


def test_replaying_twice_records_no_outcome_twice(ledger, parallel):
    production = make_api(ledger)
    deployment_with_models(production)
    clone_ledger(ledger.engine, parallel.engine, head_position(ledger.engine))
    cut = head_position(ledger.engine)
    for i in range(3):
        assert predict(production, {"features": ROW, "request_id": f"r{i}"}).status_code == 201
    outcomes = [
        {"deployment": "churn", "request_id": "r0", "actual": "yes", "outcome_id": "o-0"},
        {"deployment": "churn", "request_id": "r1", "actual": "yes"},
        {"deployment": "churn", "request_id": "r1", "actual": "no"},  # a correction, no id
    ]
    for body in outcomes:
        assert (
            production.call("POST", "/v1/outcomes", role="predictor", json=body).status_code == 201
        )
    candidate = make_api(parallel)

    def again():  # noqa: ANN202
        return replay(
            ledger_requests(ledger, cut, head_position(ledger.engine)), _sender(candidate), speed=0
        )

    first = again()
    head = head_position(parallel.engine)
    second = again()
    assert first.statuses == {201: 6} and second.statuses == {200: 6}
    assert head_position(parallel.engine) == head  # nothing recorded the second time
    client = parallel.authenticate(candidate.keys["predictor"]).client  # request ids are its
    replayed = parallel.prediction(prediction_id("churn", "r1", client)).outcomes
    assert [o["actual"] for o in replayed] == ["yes", "no"]


def test_compare_since_an_instant_counts_only_what_came_after_it_on_both_sides(ledger, parallel):
    import json

    from click.testing import CliRunner

    from api.cli import main
    from ledger.timeline import iso

    production = make_api(ledger)
    deployment_with_models(production)
    for i in range(4):  # history both sides share once cloned
        assert predict(production, {"features": ROW, "request_id": f"h{i}"}).status_code == 201
    cut = head_position(ledger.engine)
    since = iso(clone_ledger(ledger.engine, parallel.engine, cut).last_recorded_at)
    for i in range(3):
        assert predict(production, {"features": ROW, "request_id": f"n{i}"}).status_code == 201
    replay(
        ledger_requests(ledger, cut, head_position(ledger.engine)),
        _sender(make_api(parallel)),
        speed=0,
    )

    said = CliRunner().invoke(
        main,
        [
            "--db",
            ledger.settings.database_url,
            "compare",
            "--candidate",
            parallel.settings.database_url,
            "--since",
            since,
        ],
        env={"LEDGER_HOME": str(ledger.settings.home)},
    )
    assert said.exit_code == 0, said.output
    report = json.loads(said.output)
    assert (report["compared"], report["only_baseline"], report["only_candidate"]) == (3, 0, 0)


def _labelled_csv(path):
    import pandas as pd

    rows = [
        {
            **ROW,
            "income": 30_000.0 + 1000 * i,
            "event_time": f"2024-03-01T10:00:{2 * i:02d}Z",
            "churned": "yes" if i % 2 else "no",
            "known_at": f"2024-03-01T10:00:{2 * i + 3:02d}Z",  # known 3 s after the row
        }
        for i in range(4)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_labelled_file_replays_labels_as_later_outcomes_once(ledger, tmp_path):
    from api.replay import FileColumns, file_requests, read_file

    api = make_api(ledger)
    deployment_with_models(api)
    columns = FileColumns("event_time", "churned", "known_at")
    frame = read_file(_labelled_csv(tmp_path / "rows.csv"), columns)
    requests = list(file_requests(frame, "rows.csv", "churn", columns))

    assert [(r.kind, r.at // 1_000_000) for r in requests] == [
        ("prediction", 0),
        ("prediction", 2),
        ("outcome", 3),
        ("prediction", 4),
        ("outcome", 5),
        ("prediction", 6),
        ("outcome", 7),
        ("outcome", 9),
    ]
    assert all("churned" not in r.body.get("features", {}) for r in requests)
    first = replay(iter(requests), _sender(api), speed=0)
    head = head_position(ledger.engine)
    second = replay(file_requests(frame, "rows.csv", "churn", columns), _sender(api), speed=0)
    assert first.statuses == {201: 8} and second.statuses == {200: 8}
    assert head_position(ledger.engine) == head  # nothing recorded the second time
    client = ledger.authenticate(api.keys["predictor"]).client
    made = ledger.prediction(prediction_id("churn", "replay:rows.csv:1", client))
    assert "churned" not in made.features and made.outcome["actual"] == "yes"


def test_a_file_with_columns_the_schema_lacks_is_refused_before_anything_is_sent(ledger, tmp_path):
    import pandas as pd

    from api.replay import FileColumns, check_file_columns, deployment_schema, read_file
    from ledger.errors import InvalidCommand

    api = make_api(ledger)
    deployment_with_models(api)
    path = _labelled_csv(tmp_path / "rows.csv")
    pd.read_csv(path).assign(colour="red", shoe=1).to_csv(path, index=False)
    sent = []

    def send(method, path, body):
        sent.append(method)
        return _sender(api)(method, path, body)

    schema = deployment_schema(send, "churn")
    columns = FileColumns("event_time", "churned", "known_at")
    with pytest.raises(InvalidCommand) as refused:
        check_file_columns(read_file(path, columns), columns, schema)
    assert refused.value.detail.startswith(
        "columns not in the deployment's input schema: colour, shoe;"
    )
    assert sent == ["GET"]  # the schema only
    unlabelled = FileColumns("event_time")  # a label not named is an unknown column too
    with pytest.raises(InvalidCommand, match="churned, known_at, colour, shoe"):
        check_file_columns(read_file(path, unlabelled), unlabelled, schema)
