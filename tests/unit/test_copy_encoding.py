"""The rebuild's spelled-out COPY encoders write exactly what the generic bulk.copy_text writes."""

from __future__ import annotations

import sqlalchemy as sa

from projections.bulk import copy_text
from projections.cubes import new_deltas
from projections.page_writes import _cells_text, _outcomes_text
from projections.tables import prediction_tables

TABLES = prediction_tables(sa.MetaData(), "_g1")
AWKWARD = "back\\slash\ttab\nnew\rline"  # every character COPY's text format escapes

OUTCOMES = [
    (
        7,
        "p-1",
        1_700_000_000_000_000,
        42,
        "churn",
        19_675,
        {"m1": "yes", "m2": 1},
        "yes",
        False,
        None,
        {"region": "north", "age": "(25,35]"},
        None,
        None,
        "key:abc",
    ),
    (
        8,
        AWKWARD,
        1,
        0,
        AWKWARD,
        0,
        {"m\\1": AWKWARD},
        {"label": AWKWARD},
        True,
        0.5,
        {"plan": AWKWARD},
        {"plan": "erased"},
        AWKWARD,
        AWKWARD,
    ),
    (9, "p-2", 2, 1, "churn", 0, {}, None, True, [1, 2], {}, {}, "2026-11-28T12:00:00Z", "a"),
    # integer labels are written without a call, booleans (an int's subclass) are not
    (10, "p-3", 3, 2, "churn", 0, {"m1": 1}, 1, False, None, {}, None, None, "a"),
    (11, "p-4", 4, 2, "churn", 0, {"m1": True}, True, True, 0, {}, {}, None, "a"),
    (12, "p-5", 5, 2, "churn", 0, {"m1": -3}, -3, True, False, {}, None, None, "a"),
    (13, "p-6", 6, 2, "churn", 0, {"m1": 2**62}, 2**62, False, None, {}, None, None, "a"),
]


def test_outcome_rows_are_encoded_as_copy_text_encodes_them():
    assert _outcomes_text(OUTCOMES) == copy_text(TABLES["outcomes"], OUTCOMES)


def test_cells_are_encoded_as_copy_text_encodes_them():
    cells = new_deltas()
    cells[("churn", "m1", 19_675, 42, "", "", '"yes"', '"no"')][0] += 3
    cells[(AWKWARD, "m\\2", 0, 0, AWKWARD, AWKWARD, '"a\\"b"', AWKWARD)][:] = [
        -2,
        1.5,
        0.25,
        1e-300,
    ]
    cells[("d", "m", 1, 2, "age", "<=25", "", "")][:] = [1, -0.1, 0.1, 0.010000000000000002]
    rows = [(*key, int(v[0]), v[1], v[2], v[3]) for key, v in cells.items()]
    assert _cells_text(cells) == copy_text(TABLES["cubes_fine"], rows)
