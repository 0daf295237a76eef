"""A production-parallel copy of the ledger up to a position, positions and times intact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.artifacts import REFERENCE_KEY, artifacts_table, referenced_digests
from ledger.database import is_postgres
from ledger.errors import Conflict
from ledger.ids import as_uuid
from ledger.storage import CLOCK_TABLE, EVENTS_TABLE

PAGE = 5000
_REFERENCE = f'"{REFERENCE_KEY}"'.encode()  # most events name no artifact: skip parsing them


@dataclass
class CloneReport:
    position: int
    events: int
    artifacts: int
    last_recorded_at: int


def clone_ledger(
    source: sa.Engine,
    target: sa.Engine,
    position: int,
    progress: Callable[[int], None] | None = None,
) -> CloneReport:
    """Copy every event up to `position` and the artifacts they name into an empty ledger.

    The target must have been initialised (tables and triggers) and hold no events.
    """
    with target.connect() as conn:
        if conn.exec_driver_sql(f"SELECT count(*) FROM {EVENTS_TABLE}").scalar_one():
            raise Conflict("the clone's target already holds events: give it an empty database")
    columns = "id, originator_id, originator_version, topic, state, recorded_at"
    events_table = sa.table(EVENTS_TABLE, *(sa.column(c) for c in columns.split(", ")))
    digests: set[str] = set()
    copied, last_id, last_at = 0, 0, 0
    with source.connect() as src:
        while True:
            rows = src.execute(
                sa.text(
                    f"SELECT {columns} FROM {EVENTS_TABLE} WHERE id > :a AND id <= :b ORDER BY id LIMIT {PAGE}"
                ),
                {"a": last_id, "b": position},
            ).fetchall()
            if not rows:
                break
            batch = [_portable_row(r, is_postgres(target)) for r in rows]
            for r in rows:
                state = bytes(r.state)
                if _REFERENCE in state:
                    digests |= referenced_digests(orjson.loads(state))
            with target.begin() as dst:
                dst.execute(events_table.insert(), batch)
            copied += len(rows)
            last_id, last_at = rows[-1].id, rows[-1].recorded_at
            if progress:
                progress(len(rows))
    artifacts = _copy_artifacts(source, target, digests)
    _continue_above(target, last_id, last_at)
    return CloneReport(
        position=last_id, events=copied, artifacts=artifacts, last_recorded_at=last_at
    )


def _portable_row(row: sa.Row[Any], target_postgres: bool) -> dict[str, Any]:
    oid = as_uuid(row.originator_id)
    return {
        "id": row.id,
        "originator_id": str(oid) if target_postgres else oid.bytes,
        "originator_version": row.originator_version,
        "topic": row.topic,
        "state": bytes(row.state),
        "recorded_at": row.recorded_at,
    }


def _copy_artifacts(source: sa.Engine, target: sa.Engine, digests: set[str]) -> int:
    """Copy the named artifacts the source holds; how many it held."""
    held = 0
    for digest in sorted(digests):
        with source.connect() as src:
            row = src.execute(
                sa.select(artifacts_table).where(artifacts_table.c.digest == digest)
            ).first()
        if row is None:
            continue
        held += 1
        with target.begin() as dst:
            exists = dst.execute(
                sa.select(artifacts_table.c.digest).where(artifacts_table.c.digest == digest)
            ).first()
            if not exists:
                dst.execute(artifacts_table.insert().values(**row._mapping))
    return held


def _continue_above(target: sa.Engine, last_id: int, last_at: int) -> None:
    """New events in the clone continue above the copied positions and times."""
    with target.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE {CLOCK_TABLE} SET last_us = :t WHERE id = 1 AND last_us < :t"),
            {"t": last_at},
        )
        if is_postgres(target) and last_id:
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{EVENTS_TABLE}', 'id'), {int(last_id)})"
            )
