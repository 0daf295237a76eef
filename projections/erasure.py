"""Subject.Forgotten in the prediction projection: rows marked erased, counts moved to `erased`.

Works on the read tables only (the subject's prediction rows and their outcome rows),
never on the log. Only rows before the event's position are touched, so the result
does not depend on how events were paged: a rebuild gives the same tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from projections import events as ev
from projections.bulk import add_to_cells, insert_tuples
from projections.cubes import (
    LEVELS,
    Deltas,
    add_outcome,
    group,
    new_deltas,
    predicted_values,
    rolled_up,
    scored,
)
from projections.slicing import ERASED
from projections.tables import CUBE_KEY, SUMS


def erased_slices(slices: Mapping[str, str] | None) -> dict[str, str] | None:
    """The same slice features, every value `erased`."""
    return None if slices is None else {feature: ERASED for feature in slices}


def forget(
    conn: sa.Connection, tables: Mapping[str, sa.Table], tasks: Mapping[str, str], event: ev.Event
) -> list[str]:
    """Erase the subject's rows made before the event; returns the prediction ids erased."""
    p, o = tables["predictions"], tables["outcomes"]
    scope = [
        p.c.subject_ref == event.state["subject_ref"],
        p.c.erased_at.is_(None),
        p.c.position < event.position,
    ]
    if event.state.get("deployment") is not None:  # None: every deployment
        scope.append(p.c.deployment == event.state["deployment"])
    facts = {
        r["prediction_id"]: dict(r)
        for r in conn.execute(
            sa.select(p.c.prediction_id, p.c.deployment, p.c.day, p.c.outputs).where(*scope)
        ).mappings()
    }
    if not facts:
        return []
    outcomes = list(
        conn.execute(
            sa.select(o).where(o.c.prediction_id.in_(sorted(facts))).order_by(o.c.position)
        ).mappings()
    )
    add_deltas(conn, tables, _moves(outcomes, facts, tasks), keep_zeros=False)
    if outcomes:
        conn.execute(
            o.update()
            .where(o.c.position == sa.bindparam("at"))
            .values(
                slices=sa.bindparam("new_slices"), previous_slices=sa.bindparam("new_previous")
            ),
            [
                {
                    "at": r["position"],
                    "new_slices": erased_slices(r["slices"]),
                    "new_previous": erased_slices(r["previous_slices"]),
                }
                for r in outcomes
            ],
        )
    conn.execute(p.update().where(*scope).values(erased_at=event.position))
    return sorted(facts)


def _moves(
    outcomes: list[Mapping[str, Any]],
    facts: Mapping[str, Mapping[str, Any]],
    tasks: Mapping[str, str],
) -> Deltas:
    """Each outcome's sliced contribution, taken from its slice value and added to `erased`."""
    moves = new_deltas()
    for row in outcomes:
        prediction = facts[row["prediction_id"]]
        task = tasks.get(prediction["deployment"], "classification")
        fact = {**prediction, "scored": scored(predicted_values(prediction["outputs"]), task)}
        counted = (
            new_deltas()
        )  # exactly what this outcome row added to the cells, correction included
        previous = (row["corrected"], row["previous"], row["previous_slices"])
        add_outcome(counted, fact, task, row["actual"], row["slices"], previous, row["epoch"])
        for key, values in counted.items():
            if key[4] == "" or key[5] == ERASED:
                continue  # the overall cells keep their counts; erased ones are already there
            to = (*key[:5], ERASED, *key[6:])
            for i in range(4):
                moves[key][i] -= values[i]
                moves[to][i] += values[i]
    return moves


def add_deltas(
    conn: sa.Connection,
    tables: Mapping[str, sa.Table],
    deltas: Deltas,
    keep_zeros: bool = True,
    last: int | None = None,
) -> None:
    """Add sums to the cells of every level (by epoch, and the groups of epochs above).

    Cells of groups after `last`'s (the epoch counted before these deltas) cannot exist yet:
    they are inserted, not upserted (an epoch's cells change only while it is the newest,
    or by a forget, which touches epochs of outcomes already counted). Outcomes keep cells
    whose sums cancel within a page, so the rows do not depend on paging."""
    for name, span in reversed(LEVELS):  # finest first: each level rolls up the one below it
        deltas = rolled_up(deltas, span)
        known = group(last, span) if last is not None else None
        rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] = ([], [])
        for key, v in sorted(deltas.items()):
            if keep_zeros or any(v):
                rows[known is not None and key[3] > known].append(
                    (*key, int(v[0]), v[1], v[2], v[3])
                )
        add_to_cells(conn, tables[name], CUBE_KEY, SUMS, rows[0])
        insert_tuples(conn, tables[name], rows[1])  # the cube tables' columns are CUBE_KEY + SUMS
