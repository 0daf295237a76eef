"""The scoring path without a database: column order, the policy's choice, inline flags."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from serving.flags import merged_profile, row_flags
from serving.scoring import (
    DeploymentRuntime,
    ModelRuntime,
    choose,
    score_isolated,
    score_model,
    vote,
)

SCHEMA = {
    "features": [
        {"name": "a", "type": "number"},
        {"name": "b", "type": "number"},
        {"name": "c", "type": "category", "nullable": True},
    ]
}


def runtime(policy: str, leader: str, models: list[str]) -> DeploymentRuntime:
    return DeploymentRuntime(
        "d",
        1,
        "classification",
        SCHEMA,
        {"name": policy},
        leader,
        [ModelRuntime(m, None, [], True) for m in models],
        merged_profile([], SCHEMA),
    )


def outputs(**values: str) -> dict[str, dict]:
    return {model: {"value": value} for model, value in values.items()}


def test_manual_serves_the_leader_whatever_the_others_say() -> None:
    assert choose(runtime("manual", "x", ["x", "y", "z"]), outputs(x="no", y="yes", z="yes")) == "x"


def test_majority_vote_serves_the_commonest_value() -> None:
    assert (
        choose(runtime("majority_vote", "x", ["x", "y", "z"]), outputs(x="no", y="yes", z="yes"))
        == "y"
    )


def test_majority_vote_ties_go_to_the_leader() -> None:
    chosen = choose(
        runtime("majority_vote", "z", ["w", "x", "y", "z"]), outputs(w="a", x="a", y="b", z="b")
    )
    assert chosen == "z"


def test_majority_vote_records_each_vote_and_the_winning_count() -> None:
    served, tally = vote(
        runtime("majority_vote", "x", ["x", "y", "z"]), outputs(x="no", y="yes", z="yes")
    )
    assert served == "y"
    assert tally == {
        "votes": {"x": "no", "y": "yes", "z": "yes"},
        "winner": "yes",
        "count": 2,
        "voters": 3,
        "abstained": [],
        "tie_to_leader": False,
    }


def test_a_tie_broken_by_the_leader_and_a_failed_model_are_in_the_tally() -> None:
    votes = {**outputs(w="a", x="a", y="b", z="b"), "v": {"value": None, "error": "boom"}}
    served, tally = vote(runtime("majority_vote", "z", ["v", "w", "x", "y", "z"]), votes)
    assert served == "z" and tally is not None
    assert (tally["winner"], tally["count"], tally["tie_to_leader"]) == ("b", 2, True)
    assert tally["abstained"] == ["v"] and "v" not in tally["votes"]


def test_other_policies_have_no_tally() -> None:
    assert vote(runtime("manual", "x", ["x", "y", "z"]), outputs(x="a", y="b", z="b")) == (
        "x",
        None,
    )


def test_a_model_reads_rows_in_its_own_column_order() -> None:
    # The model learned y = b, reading its columns as [b, a]: a mix-up would show.
    x = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    model = Pipeline(
        [("cols", ColumnTransformer([("keep", "passthrough", [0])])), ("fit", LinearRegression())]
    ).fit(x, x[:, 0])
    columns = [SCHEMA["features"][1], SCHEMA["features"][0]]
    scored = score_model(ModelRuntime("m", model, columns, False), [{"a": 100.0, "b": 5.0}])
    assert abs(scored[0]["value"] - 5.0) < 1e-9 and isinstance(scored[0]["value"], float)


def test_flags_use_the_narrowest_profile_of_the_active_models() -> None:
    wide = {"a": {"min": 0, "max": 100}, "c": {"frequencies": {"x": 0.5, "y": 0.5}}}
    narrow = {"a": {"min": 10, "max": 50}, "c": {"frequencies": {"x": 1.0}}}
    profile = merged_profile([wide, narrow, None], SCHEMA)
    assert row_flags(profile, {"a": 60, "b": 1, "c": "y"}) == [
        "out_of_range:a",
        "unseen_category:c",
    ]
    assert row_flags(profile, {"a": 20, "b": None, "c": "x"}) == ["missing:b"]
    assert row_flags(profile, {"a": 20, "b": 1, "c": None}) == ["missing:c"]


def test_personal_features_are_never_flagged_from_coarsened_profiles() -> None:
    profile = merged_profile(
        [{"a": {"personal": True, "buckets": {"inner_edges": [1, 2]}}}], SCHEMA
    )
    assert profile.ranges == {}


def test_a_failing_shadow_model_is_recorded_and_the_leader_still_serves() -> None:
    broken = ModelRuntime("shadow", None, [], True, load_error="artifact_corrupt: altered")
    outputs = score_isolated(broken, [{"a": 1.0}], leader="leader")
    assert outputs[0]["value"] is None and "artifact_corrupt" in outputs[0]["error"]
    votes = {"leader": {"value": "no"}, "x": {"value": "yes"}, "shadow": outputs[0]}
    assert choose(runtime("majority_vote", "leader", ["leader", "x", "shadow"]), votes) == "leader"


def test_a_failing_leader_fails_the_request() -> None:
    import pytest

    broken = ModelRuntime("leader", None, [], True, load_error="artifact_corrupt: altered")
    with pytest.raises(RuntimeError):
        score_isolated(broken, [{"a": 1.0}], leader="leader")
