"""The prediction POST answers directly (no marshmallow dump on the hot path: ~22 µs a row);
held here equal to what its declared answer schema would dump, on random answers."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from api.answers import dump
from api.routes import route_for
from serving.predict import row_answer

ROUTE = route_for("POST", "/v1/deployments/{name}/predictions")
LABELS = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans())
VALUES = st.one_of(LABELS, st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def predictions(draw: st.DrawFn) -> SimpleNamespace:
    model = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    output = {"value": draw(VALUES)}
    if draw(st.booleans()):
        labels = draw(st.lists(st.text(max_size=6), min_size=1, max_size=3, unique=True))
        output["probabilities"] = {k: draw(st.floats(0, 1)) for k in labels}
    return SimpleNamespace(
        id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        request_id=draw(st.text(min_size=1, max_size=20)),
        served_model=model,
        outputs={model: output},
        flags=draw(st.lists(st.text(max_size=20), max_size=3)),
    )


@settings(max_examples=200, derandomize=True, database=None)
@given(
    rows=st.lists(predictions(), min_size=1, max_size=4), retried=st.booleans(), batch=st.booleans()
)
def test_the_direct_answer_is_what_its_schema_dumps(rows, retried, batch):
    answers = [row_answer(p, retried) for p in rows]
    answer = {"request_id": "b", "predictions": answers} if batch else answers[0]
    for status in (200, 201):
        declared = ROUTE.answers[status]
        assert declared.direct
        assert dump(declared.shape, answer) == answer
