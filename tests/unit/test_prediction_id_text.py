"""The text form of a prediction id that sealing binds to is the id's own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger import ids
from ledger.privacy.sealing import binding_of


@given(st.text(max_size=30), st.text(max_size=200))
def test_the_fast_text_is_str_of_the_uuid(deployment: str, request_id: str) -> None:
    assert ids.prediction_id_text(deployment, request_id) == str(
        ids.prediction_id(deployment, request_id)
    )


def test_a_sealed_record_is_bound_to_the_prediction_id() -> None:
    assert binding_of("churn", "b#3") == str(ids.prediction_id("churn", "b#3"))
