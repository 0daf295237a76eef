"""The text form of a prediction id that sealing binds to is the id's own."""

from __future__ import annotations

import uuid

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


@given(
    st.text(max_size=30),
    st.text(max_size=200),
    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,62}", fullmatch=True),
)
def test_a_clients_ids_are_its_own_and_the_default_clients_are_as_before(
    deployment: str, request_id: str, client: str
) -> None:
    assert ids.prediction_id_text(deployment, request_id, client) == str(
        ids.prediction_id(deployment, request_id, client)
    )
    before = uuid.uuid5(ids.NAMESPACE, f"prediction:{deployment}\x00{request_id}")
    assert ids.prediction_id(deployment, request_id, ids.DEFAULT_CLIENT) == before
    if client != ids.DEFAULT_CLIENT:
        assert ids.prediction_id(deployment, request_id, client) != before
        claim = uuid.uuid5(ids.NAMESPACE, f"outcome:{deployment}\x00{request_id}")
        assert ids.outcome_claim_id(deployment, request_id, client) != claim


@given(
    st.text(max_size=30),
    st.lists(st.text(max_size=50), max_size=5),
    st.sampled_from(["default", "acme"]),
)
def test_a_batchs_ids_are_each_rows_prediction_id(
    deployment: str, request_ids: list[str], client: str
) -> None:
    batch = ids.prediction_ids(deployment, request_ids, client)
    assert batch == [ids.prediction_id(deployment, r, client) for r in request_ids]
    assert [str(i) for i in batch] == [binding_of(deployment, r, client) for r in request_ids]
