"""A page's outcome rows and cube cells: prepared by the projection, written now or by a rebuild's writer.

Preparing (rolling cells up the levels, encoding COPY text) is Python work and stays on
the projection's thread; writing is mostly PostgreSQL's, which a rebuild runs on its
writer's connection (projections/pipeline.py) while the next page is being computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa

from projections.bulk import (
    add_to_cells,
    copy_in,
    insert_tuples,
    json_field,
    nullable_text,
    text_field,
)
from projections.cubes import LEVELS, Deltas, group, rolled_up
from projections.tables import CUBE_KEY, SUMS

# pj_outcomes' columns in table order: the projection builds its rows as tuples in this order
OUTCOME_COLUMNS = (
    "position",
    "prediction_id",
    "recorded_at",
    "epoch",
    "deployment",
    "day",
    "predicted",
    "actual",
    "corrected",
    "previous",
    "slices",
    "previous_slices",
    "observed_at",
    "actor",
)


class Write(NamedTuple):
    """One table's share of a page."""

    table: sa.Table
    how: Literal["copy", "insert", "add"]
    payload: Any  # rows, or COPY text


Writes = list[Write]


def prepare(
    tables: Mapping[str, sa.Table],
    postgres: bool,
    outcomes: list[tuple[Any, ...]],
    deltas: Deltas,
    last: int,
) -> Writes:
    """The outcome rows, then each level's cells (finest first: each rolls up the one below).

    Cells of groups after `last`'s (the epoch counted before these outcomes) cannot exist
    yet: they are inserted, the others added to (erasure.add_deltas, same rows). On
    PostgreSQL the inserted rows are encoded for COPY here, on the projection's thread:
    a rebuild's writer thread then mostly waits on the database."""
    writes: Writes = [
        Write(tables["outcomes"], "copy", _outcomes_text(outcomes))
        if postgres
        else Write(tables["outcomes"], "insert", outcomes)
    ]
    for name, span in reversed(LEVELS):
        deltas = rolled_up(deltas, span)
        known = group(last, span)
        old = sorted(
            (*key, int(v[0]), v[1], v[2], v[3]) for key, v in deltas.items() if key[3] <= known
        )
        new = {key: v for key, v in deltas.items() if key[3] > known}
        writes += [
            Write(tables[name], "add", old),
            Write(tables[name], "copy", _cells_text(new))
            if postgres
            else Write(
                tables[name],
                "insert",
                [(*key, int(v[0]), v[1], v[2], v[3]) for key, v in new.items()],
            ),
        ]
    return writes


def _outcomes_text(rows: list[tuple[Any, ...]]) -> str:
    """Outcome rows (OUTCOME_COLUMNS) in COPY's text format: bulk.copy_text's encoding, spelled
    out for the columns' types (a rebuild encodes one per outcome), the common JSON values
    (an integer label, no previous outcome) written without a call."""
    j, t, n = json_field, text_field, nullable_text
    return "".join(
        [
            f"{p}\t{t(pid)}\t{at}\t{epoch}\t{t(dep)}\t{day}\t{j(pred)}\t{actual if type(actual) is int else j(actual)}\t"
            f"{'t' if corrected else 'f'}\t{'null' if previous is None else j(previous)}\t{j(slices)}\t"
            f"{'null' if previous_slices is None else j(previous_slices)}\t{n(observed)}\t{t(actor)}\n"
            for p, pid, at, epoch, dep, day, pred, actual, corrected, previous, slices, previous_slices, observed, actor in rows
        ]
    )


def _cells_text(cells: Deltas | dict[Any, list[float]]) -> str:
    """Cells (CUBE_KEY, then SUMS) in COPY's text format (a rebuild writes about one per outcome)."""
    t = text_field
    return "".join(
        [
            f"{t(dep)}\t{t(model)}\t{day}\t{epoch}\t{t(feature)}\t{t(value)}\t{t(actual)}\t{t(predicted)}\t"
            f"{int(v[0])}\t{v[1]!r}\t{v[2]!r}\t{v[3]!r}\n"
            for (dep, model, day, epoch, feature, value, actual, predicted), v in cells.items()
        ]
    )


def write(conn: sa.Connection, writes: Writes) -> None:
    for table, how, payload in writes:
        if how == "copy":
            copy_in(conn, table, payload)
        elif how == "insert":
            insert_tuples(conn, table, payload)
        else:
            add_to_cells(conn, table, CUBE_KEY, SUMS, payload)
