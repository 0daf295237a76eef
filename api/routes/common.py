"""Parameters several routes share: `as_of`, pages, `min_position`, If-Match."""

from __future__ import annotations

from api.routes.table import Param

AS_OF = Param(
    "as_of",
    "read as of this ledger position (`pos:N`) or instant (ISO-8601 with an offset)",
    format="as-of",
)
MIN_POSITION = Param(
    "min_position",
    "answer at or after this position (one your write returned): the read waits up to 5 s",
    type="integer",
    minimum=0,
)


def limit(default: int, maximum: int) -> Param:
    """The page size, 1..maximum."""
    return Param(
        "limit",
        f"page size (default {default})",
        type="integer",
        minimum=1,
        maximum=maximum,
        default=default,
        code="invalid_limit",
    )


def cursor(kind: str) -> Param:
    """The opaque cursor of the next page (`next_cursor` of the previous one)."""
    return Param(
        "cursor",
        "the `next_cursor` of the previous page",
        format=f"{kind}-cursor",
        code="invalid_cursor",
    )


def instant(name: str, what: str) -> Param:
    return Param(name, what, format="date-time")


def if_match(required: bool) -> Param:
    return Param(
        "If-Match",
        'the deployment\'s version (its ETag): `3`, `"3"` or `W/"3"`'
        + ("" if required else "; optional"),
        format="version",
        required=required,
    )
