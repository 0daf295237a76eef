"""ledger.values: what a storable value is, and the two doors that hold it (parser, transcoder)."""

from __future__ import annotations

import time

import pytest
from marshmallow import ValidationError

from api import json_body
from api.errors import Problem
from ledger import values
from ledger.transcoder import OrjsonTranscoder
from ledger.values import SAFE_MAX, Unstorable, json_fault, number_fault, text_fault


def test_text_is_storable_without_nul_or_lone_surrogates_and_within_its_bound() -> None:
    assert text_fault("é✓𝄞 plain") is None
    assert text_fault("x" * values.TEXT_MAX) is None
    assert "1001 characters" in str(text_fault("x" * 1001))
    assert "U+0000" in str(text_fault("a\x00b"))
    assert "surrogate" in str(text_fault("a\ud800"))
    assert text_fault("abc", max_length=2) is not None


def test_numbers_are_storable_when_finite_and_within_2_53() -> None:
    for good in (0, -0.0, SAFE_MAX, -SAFE_MAX, float(SAFE_MAX), 1e-320, 5e-324, 1.5):
        assert number_fault(good) is None, good
    for bad in (SAFE_MAX + 1, -SAFE_MAX - 1, 1e20, 2**64, float("nan"), float("inf")):
        assert number_fault(bad) is not None, bad


def test_a_free_form_value_is_walked_keys_and_all_without_recursion() -> None:
    assert json_fault({"a": [1, "x", None, True, {"b": 2.5}]}) is None
    assert json_fault({"a": [1, {"b": "\x00"}]}) == ("a.1.b", text_fault("\x00"))
    assert json_fault({"k\x00": 1})[0] == "k\x00"  # type: ignore[index]
    assert json_fault({"a": 1e20})[0] == "a"  # type: ignore[index]
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert "deeper than 32" in json_fault(deep)[1]  # type: ignore[index]


def test_the_parser_bounds_depth_and_names_a_number_it_cannot_read() -> None:
    started = time.perf_counter()
    for body in ("[" * 100_000 + "]" * 100_000, "[" * 33 + "]" * 33, '{"a":' * 40 + "1" + "}" * 40):
        with pytest.raises(Problem) as refused:
            json_body.loads(body)
        assert refused.value.problem_code == "too_deep"
    assert time.perf_counter() - started < 1.0
    assert json_body.loads("[" * 32 + "]" * 32)
    for body, field in [
        ('{"features": {"income": ' + "9" * 5000 + "}}", "features.income"),
        ('{"features": {"income": -1e400}}', "features.income"),
        ('{"a": [0, NaN]}', "a.1"),
        ('{"a": "\\ud800"}', "a"),
    ]:
        with pytest.raises(ValidationError) as invalid:
            json_body.loads(body)
        assert list(invalid.value.messages) == [field]  # type: ignore[arg-type]


def test_the_transcoder_refuses_to_record_nul_or_a_lone_surrogate_by_any_path() -> None:
    encode = OrjsonTranscoder().encode
    for state in ({"a": "x\x00"}, {"a": float("nan"), "b": ["\x00"]}, {"a": "\\\x00"}):
        with pytest.raises(Unstorable, match="U\\+0000"):
            encode(state)
    with pytest.raises(Unstorable, match="surrogate"):
        encode({"a": "\ud800"})
    assert encode({"a": "\\u0000 is six characters"}) == b'{"a":"\\\\u0000 is six characters"}'
