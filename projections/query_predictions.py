"""The prediction index: filtered pages, newest first, pinned to one position by the cursor."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ledger.errors import InvalidCommand
from ledger.timeline import iso
from projections.predictions import PredictionsProjection
from projections.slicing import ERASED
from projections.snapshot import Snapshot, snapshot

MAX_LIMIT = 1000
# A name written into a SQLite JSON path as `$."name"`; any other is matched by key instead,
# so a quote in a name can never end the path early.
PATH_SAFE = re.compile(r"[A-Za-z0-9_\- ]{1,200}")


def encode_cursor(pinned: int, before: int) -> str:
    """Opaque to callers: the position the listing is pinned to, and where the page ended."""
    return base64.urlsafe_b64encode(orjson.dumps({"p": pinned, "b": before})).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(data["p"]), int(data["b"])
    except Exception:  # any damage to an opaque token is the same mistake
        raise InvalidCommand(
            "cursor is not one this API returned; start again without it", field="cursor"
        ) from None


def list_predictions(
    engine: sa.Engine,
    *,
    deployment: str | None = None,
    model: str | None = None,
    from_us: int | None = None,
    to_us: int | None = None,
    features: dict[str, str] | None = None,
    has_outcome: bool | None = None,
    flagged: bool | None = None,
    limit: int = 100,
    cursor: str | None = None,
    as_of: int | None = None,
    wait: float = 0.0,
) -> dict[str, Any]:
    """A page of predictions (newest first) with their outcome as known at the position."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidCommand(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    before = None
    if cursor:
        as_of, before = decode_cursor(cursor)
    with snapshot(engine, PredictionsProjection, as_of, wait) as snap:
        p = snap.tables["predictions"]
        query = sa.select(p).where(p.c.position <= snap.position)
        if before is not None:
            query = query.where(p.c.position < before)
        for condition in _filters(
            snap, deployment, model, from_us, to_us, features, has_outcome, flagged
        ):
            query = query.where(condition)
        rows = list(
            snap.conn.execute(query.order_by(p.c.position.desc()).limit(limit + 1)).mappings()
        )
        more, rows = len(rows) > limit, rows[:limit]
        outcomes = _outcomes(snap, [r["prediction_id"] for r in rows])
        items = [_item(r, outcomes.get(r["prediction_id"]), snap.position) for r in rows]
        next_cursor = encode_cursor(snap.position, rows[-1]["position"]) if more else None
        return {"items": items, "next_cursor": next_cursor, **snap.stamp()}


def _filters(
    snap: Snapshot,
    deployment: str | None,
    model: str | None,
    from_us: int | None,
    to_us: int | None,
    features: dict[str, str] | None,
    has_outcome: bool | None,
    flagged: bool | None,
) -> list[Any]:
    p, o = snap.tables["predictions"], snap.tables["outcomes"]
    out: list[Any] = []
    if deployment:
        out.append(p.c.deployment == deployment)
    if model:
        out.append(p.c.served_model == model)
    if from_us is not None:
        out.append(p.c.recorded_at >= from_us)
    if to_us is not None:
        out.append(p.c.recorded_at < to_us)
    if flagged is not None:
        out.append(p.c.flagged.is_(flagged))
    if has_outcome is not None:
        known = sa.exists().where(
            o.c.prediction_id == p.c.prediction_id, o.c.position <= snap.position
        )
        out.append(known if has_outcome else ~known)
    for name, text in (features or {}).items():
        out.append(sa.or_(*(_feature_equals(snap, name, v) for v in _candidates(text))))
    return out


def _candidates(text: str) -> list[Any]:
    """`north` is a string; `3`, `3.5`, `true` may also be the number or boolean they spell."""
    values: list[Any] = [text]
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return values
    return values + [parsed] if isinstance(parsed, int | float | bool) else values


def _feature_equals(snap: Snapshot, name: str, value: Any) -> Any:
    column = snap.tables["predictions"].c.features
    if snap.conn.dialect.name == "postgresql":
        wanted = sa.cast(sa.literal(orjson.dumps({name: value}).decode()), postgresql.JSONB)
        return column.op("@>")(wanted)  # served by the GIN index (jsonb_path_ops)
    if not PATH_SAFE.fullmatch(name):
        return _member_equals(column, name, value)
    path = f'$."{name}"'
    if isinstance(value, bool):
        return sa.func.json_type(column, path) == ("true" if value else "false")
    return sa.func.json_extract(column, path) == value


def _member_equals(column: Any, name: str, value: Any) -> Any:
    """SQLite: the object has member `name` equal to `value`, the name a bound key, not a path."""
    member = sa.func.json_each(column).table_valued("key", "value", "type").alias("member")
    if isinstance(value, bool):
        matches = member.c.type == ("true" if value else "false")
    else:
        matches = member.c.value == value
    return sa.exists().where(member.c.key == name, matches)


def _outcomes(snap: Snapshot, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The latest outcome of each prediction known at the snapshot's position."""
    if not ids:
        return {}
    o = snap.tables["outcomes"]
    query = (
        sa.select(
            o.c.prediction_id,
            o.c.actual,
            o.c.position,
            o.c.recorded_at,
            o.c.corrected,
            o.c.observed_at,
        )
        .where(o.c.prediction_id.in_(ids), o.c.position <= snap.position)
        .order_by(o.c.position)
    )
    return {
        r["prediction_id"]: {
            "actual": r["actual"],
            "position": r["position"],
            "recorded_at": iso(r["recorded_at"]),
            "corrected": r["corrected"],
            "observed_at": r["observed_at"],
        }
        for r in snap.conn.execute(query).mappings()
    }


def _item(row: Any, outcome: dict[str, Any] | None, position: int) -> dict[str, Any]:
    keep = (
        "prediction_id",
        "position",
        "deployment",
        "deployment_version",
        "served_model",
        "leader",
        "request_id",
        "outputs",
        "flags",
        "flagged",
    )
    # the index never holds personal values; an erased row names its sealed fields as erased
    erased = row["erased_at"] is not None and row["erased_at"] <= position
    features = (
        {**row["features"], **dict.fromkeys(row["sealed_fields"] or [], ERASED)}
        if erased
        else row["features"]
    )
    return {
        **{k: row[k] for k in keep},
        "features": features,
        "erased": erased,
        "recorded_at": iso(row["recorded_at"]),
        "caller": row["actor"],
        "outcome": outcome,
    }
