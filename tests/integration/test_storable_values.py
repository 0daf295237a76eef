"""Whatever the API accepts, every read gives back; whatever it refuses gets a 4xx naming a field.

Prediction bodies are generated from the deployment's schema with edge values (NUL, lone
surrogates, long text, numbers at and past ±(2^53 - 1), 1e20, -0.0, subnormals, integral
floats, unicode). Each accepted prediction must then be projected, listed, exported and
verified on both backends; a refused one answers 4xx with `field` (never 201, never 500).
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import notary
from ledger.application import Ledger
from projections.registry import ALL
from projections.runner import Runner
from tests.integration.api_support import ROW, SCHEMA, Api, deployment_with_models, make_api

SAFE = 2**53 - 1
TEXT = ["", "basic", "x" * 1000, "x" * 1001, "a\x00b", "\ud800", "é✓𝄞", "plus\u2028", " "]
NUMBERS = [1e20, -1e20, SAFE, -SAFE, SAFE + 1, float(2**53), 2**64, 1e300, 1e15 + 0.5]
TINY = [-0.0, 0.0, 1e-320, 5e-324, -5e-324, 2.2250738585072014e-308]

numbers = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(TINY),
    st.integers(-(10**6), 10**6),
    st.floats(-1e6, 1e6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**54), 2**54).map(float),
)
texts = st.one_of(st.sampled_from(TEXT), st.sampled_from(TEXT), st.text(max_size=6))
BY_TYPE = {
    "number": numbers,
    "integer": st.one_of(numbers, st.integers(-1000, 1000), st.sampled_from([3.0, 1e20])),
    "category": texts,
    "boolean": st.one_of(st.booleans(), st.sampled_from([0, "true"])),
}
TYPES = {f["name"]: f["type"] for f in SCHEMA["features"]}


@st.composite
def edited_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A valid row with one or two features set to a generated value."""
    row = dict(ROW)
    for name in draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=2, unique=True)):
        row[name] = draw(BY_TYPE[TYPES[name]])
    return row


any_rows = st.fixed_dictionaries(
    {f["name"]: BY_TYPE[f["type"]] for f in SCHEMA["features"] if not f.get("nullable")},
    optional={
        f["name"]: st.one_of(st.none(), BY_TYPE[f["type"]])
        for f in SCHEMA["features"]
        if f.get("nullable")
    },
)
rows = st.one_of(edited_rows(), any_rows)
PERSONAL = {f["name"] for f in SCHEMA["features"] if f.get("personal")}


def test_what_is_accepted_is_stored_projected_listed_exported_and_verified(
    ledger: Ledger,
) -> None:
    api = make_api(ledger)
    deployment_with_models(api)
    accepted: dict[str, dict[str, Any]] = {}
    serial = itertools.count()

    @settings(max_examples=40, derandomize=True, deadline=None, database=None)
    @given(rows, st.one_of(st.just(""), st.just(""), texts))
    def send(row: dict[str, Any], suffix: str) -> None:
        request_id = f"r{next(serial)}{suffix}"
        body = json.dumps({"features": row, "request_id": request_id}).encode()  # \ud800 escaped
        result = api.call(
            "POST",
            "/v1/deployments/churn/predictions",
            role="predictor",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        if result.status_code == 201:
            accepted[result.json["prediction_id"]] = row
        else:
            assert 400 <= result.status_code < 500, (result.status_code, result.text)
            assert result.json.get("field"), result.json

    send()
    assert len(accepted) >= 10, "too few generated bodies were accepted to prove anything"
    for cls in ALL:
        Runner(ledger.engine, cls).catch_up()
    assert_listed(api, accepted)
    assert_exported(api, accepted)
    notary.advance(ledger.engine)
    assert notary.verify_database(ledger.engine).ok


def same(sent: dict[str, Any], read: dict[str, Any]) -> bool:
    """The row as read equals the row as sent (3.0 is 3, -0.0 is 0), personal fields aside."""
    return all(read.get(k) == v for k, v in sent.items() if k not in PERSONAL and v is not None)


def assert_listed(api: Api, accepted: dict[str, dict[str, Any]]) -> None:
    listed: dict[str, dict[str, Any]] = {}
    params = {"deployment": "churn", "limit": "7"}
    while True:
        page = api.call("GET", "/v1/predictions", "auditor", params=params)
        assert page.status_code == 200, page.text
        listed.update({item["prediction_id"]: item["features"] for item in page.json["items"]})
        if not page.json["next_cursor"]:
            break
        params = {**params, "cursor": page.json["next_cursor"]}
    for prediction_id, row in accepted.items():
        assert same(row, listed[prediction_id]), (row, listed[prediction_id])


def assert_exported(api: Api, accepted: dict[str, dict[str, Any]]) -> None:
    end = (datetime.now(UTC) + timedelta(milliseconds=200)).isoformat()
    time.sleep(0.3)  # `to` must be past
    params = {"from": "2020-01-01", "to": end, "format": "jsonl"}
    export = api.call("GET", "/v1/exports/predictions", role="auditor", params=params)
    assert export.status_code == 200, export.text
    lines = [json.loads(line) for line in export.text.split("\n") if line.strip()]
    exported = {line["prediction_id"]: line["features"] for line in lines}
    for prediction_id, row in accepted.items():
        features = exported[prediction_id]
        features = json.loads(features) if isinstance(features, str) else features
        assert same(row, features), (row, features)
