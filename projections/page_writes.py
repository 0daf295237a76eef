"""A page's outcome rows and cube cells: prepared by the projection, written now or by a rebuild's writer.

Preparing (rolling cells up the levels, encoding COPY text) is Python work and stays on
the projection's thread; writing is mostly PostgreSQL's, which a rebuild runs on its
writer's connection (projections/pipeline.py) while the next page is being computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from projections.bulk import add_to_cells, copy_in, copy_text, insert_tuples
from projections.cubes import LEVELS, Deltas, group, rolled_up
from projections.tables import CUBE_KEY, SUMS

# pj_outcomes' columns in table order: the projection builds its rows as tuples in this order
OUTCOME_COLUMNS = ("position", "prediction_id", "recorded_at", "epoch", "deployment", "day", "predicted",
                   "actual", "corrected", "previous", "slices", "previous_slices", "observed_at", "actor")
Writes = list[tuple[sa.Table, str, Any]]  # (table, how: copy | insert | add, rows or COPY text)


def prepare(tables: Mapping[str, sa.Table], postgres: bool, outcomes: list[tuple[Any, ...]],
            deltas: Deltas, last: int) -> Writes:
    """The outcome rows, then each level's cells (finest first: each rolls up the one below).

    Cells of groups after `last`'s (the epoch counted before these outcomes) cannot exist
    yet: they are inserted, the others added to (erasure.add_deltas, same rows)."""
    writes: Writes = [(tables["outcomes"], "insert", outcomes)]
    for name, span in reversed(LEVELS):
        deltas = rolled_up(deltas, span)
        known, old, new = group(last, span), [], []
        for key, v in sorted(deltas.items()):
            (new if key[3] > known else old).append((*key, int(v[0]), v[1], v[2], v[3]))
        writes += [(tables[name], "add", old), (tables[name], "insert", new)]
    if postgres:  # encode here, on the projection's thread: the writer's thread then mostly waits on the database
        writes = [(t, "copy", copy_text(t, rows)) if how == "insert" and rows else (t, how, rows)
                  for t, how, rows in writes]
    return writes


def write(conn: sa.Connection, writes: Writes) -> None:
    for table, how, payload in writes:
        if how == "copy":
            copy_in(conn, table, payload)
        elif how == "insert":
            insert_tuples(conn, table, payload)
        else:
            add_to_cells(conn, table, CUBE_KEY, SUMS, payload)
