"""Each serving policy described with its own settings, as the autopilot reports it."""

from __future__ import annotations

from policies.policy_text import describe, new_model


def test_best_recent_is_described_with_its_window_metric_and_maturity():
    text = describe(
        {"name": "best_recent", "days": 14, "metric": "f1", "min_outcomes": 50}, maturity_days=3
    )
    assert text.startswith("best_recent over the last 14 days on f1")
    assert "at least 50 matured outcomes" in text and "mature after 3 days" in text


def test_manual_and_majority_vote_say_who_answers():
    assert describe({"name": "manual"}, 0).startswith("manual: the leader serves")
    assert describe({"name": "majority_vote"}, 0).startswith("majority_vote: with three models")
    assert new_model("majority_vote") == "it votes from its first request"
    assert new_model("manual") == "a person decides whether it leads"
