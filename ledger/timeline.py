"""Instants and positions: every "as of" resolves to a ledger position first."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from ledger.errors import InvalidCommand
from ledger.storage import EVENTS_TABLE

EXAMPLE = "2026-03-03T12:00:00Z"
# Hosts and the database each keep their own clock; an instant this far ahead of ours is
# taken as skew, not as a claim about the future.
FUTURE_TOLERANCE_SECONDS = 5


def to_micros(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise InvalidCommand(f"an instant needs an offset, e.g. {EXAMPLE}", field="as_of")
    return (
        int(instant.timestamp() * 1_000_000)
        if instant.microsecond == 0
        else (int(instant.replace(microsecond=0).timestamp()) * 1_000_000 + instant.microsecond)
    )


def parse_instant(text: str, field: str) -> datetime:
    """An ISO-8601 instant with an offset (`Z` or ±hh:mm) as an aware UTC datetime.

    The one parser of instants given to the ledger; InvalidCommand names `field` otherwise.
    """
    try:
        instant = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except (ValueError, TypeError, AttributeError):
        raise InvalidCommand(
            f"{field} {text!r} is not an ISO-8601 instant, e.g. {EXAMPLE}", field=field
        ) from None
    if instant.tzinfo is None:
        raise InvalidCommand(f"{field} needs an offset, e.g. {EXAMPLE}", field=field)
    return instant.astimezone(UTC)


def parse_micros(text: str, field: str) -> int:
    """An ISO-8601 instant with an offset as µs since the epoch."""
    return to_micros(parse_instant(text, field))


def now_micros() -> int:
    """This host's clock, µs since the epoch (the one clock past-instant checks read)."""
    return to_micros(datetime.now(UTC))


def refuse_future(micros: int, field: str) -> int:
    """`micros` if it has passed (give or take the clock-skew tolerance); else InvalidCommand."""
    now = now_micros()
    if micros > now + FUTURE_TOLERANCE_SECONDS * 1_000_000:
        raise InvalidCommand(
            f"{field} {iso(micros)} is in the future (now is {iso(now)}, and up to "
            f"{FUTURE_TOLERANCE_SECONDS} s of clock skew is allowed): give an instant that has "
            "passed",
            field=field,
        )
    return micros


def parse_past_micros(text: str, field: str) -> int:
    """An instant that has passed, as µs; a future one is refused naming `field`."""
    return refuse_future(parse_micros(text, field), field)


def parse_past_instant(text: str, field: str) -> datetime:
    """An instant that has passed, as an aware UTC datetime; a future one is refused."""
    return from_micros(parse_past_micros(text, field))


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(
        microsecond=micros % 1_000_000
    )


def iso(micros: int) -> str:
    """Recorded-at as ISO-8601 UTC with microseconds and a Z."""
    return from_micros(micros).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_as_of(text: str) -> tuple[str, int]:
    """`pos:N` or an ISO-8601 instant with an offset -> ("position", N) or ("instant", µs)."""
    text = text.strip()
    if text.startswith("pos:"):
        try:
            position = int(text[4:])
        except ValueError:
            position = -1
        if position < 0:
            raise InvalidCommand("as_of pos:N needs a non-negative integer N", field="as_of")
        return "position", position
    try:
        micros = parse_micros(text, "as_of")
    except InvalidCommand:
        raise InvalidCommand(
            f"as_of {text!r} is neither an ISO-8601 instant with an offset nor pos:N", field="as_of"
        ) from None
    return "instant", refuse_future(micros, "as_of")


def position_at(conn: sa.Connection | sa.Engine, micros: int) -> int:
    """The last position recorded at or before the instant (0 when none)."""
    sql = f"SELECT coalesce(max(id), 0) FROM {EVENTS_TABLE} WHERE recorded_at <= :t"
    if isinstance(conn, sa.Engine):
        with conn.connect() as c:
            return int(c.execute(sa.text(sql), {"t": micros}).scalar_one())
    return int(conn.execute(sa.text(sql), {"t": micros}).scalar_one())


def head_position(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {EVENTS_TABLE}").scalar_one()
        )


def resolve_as_of(engine: sa.Engine, text: str | None) -> int | None:
    """None for "now"; else the position the as_of names."""
    if not text:
        return None
    kind, value = parse_as_of(text)
    return value if kind == "position" else position_at(engine, value)


def version_at(conn: sa.Connection, originator_id: object, position: int) -> int | None:
    """An aggregate's version as of a position (None if it did not exist yet)."""
    from ledger.database import is_postgres

    oid = str(originator_id) if is_postgres(conn) else _uuid_bytes(originator_id)
    version: int | None = conn.execute(
        sa.text(
            f"SELECT max(originator_version) FROM {EVENTS_TABLE} WHERE originator_id = :o AND id <= :p"
        ),
        {"o": oid, "p": position},
    ).scalar_one()
    return version


def _uuid_bytes(value: object) -> bytes:
    import uuid

    return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes
