"""The parts of a route declaration: who may call it, what it takes, what it answers.

A `Route` is the one place an operation is described: the auth middleware reads its
roles, the query parser (api/query.py) its `query` parameters, the response middleware
dumps answers through its `answers` schemas, and api/openapi.py and docs/API.md are
generated from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema

ADMIN, PREDICTOR, AUDITOR = "admin", "predictor", "auditor"
ANY = frozenset({ADMIN, PREDICTOR, AUDITOR})
PUBLIC: frozenset[str] = frozenset()
JSON = "application/json"
INTEGER_MAX = 10**18 - 1  # the parser reads at most 18 digits


@dataclass(frozen=True)
class Param:
    """One query (or header) parameter: its type, format, bounds and default.

    `type` is string, integer or boolean; `format` names one of api/query.py's FORMATS
    (date-time, as-of, date-or-date-time, position-cursor, name-cursor, index-cursor).
    A `prefix` parameter matches every name that starts with `name` (e.g. `feature.`),
    and is read as a dict of the rest of the name -> value.
    """

    name: str
    description: str
    type: str = "string"
    format: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    enum: tuple[str, ...] = ()
    default: Any = None
    required: bool = False
    prefix: bool = False
    code: str = "invalid_parameter"  # the problem code a malformed value is refused with


@dataclass(frozen=True)
class OneOf:
    """An answer or body of one of several shapes; `pick` names the schema an answer uses."""

    schemas: tuple[type[Schema] | Many, ...]
    pick: Callable[[Any], int] = lambda _: 0


@dataclass(frozen=True)
class Many:
    """A JSON array of one schema, of at least `min_items`."""

    schema: type[Schema]
    min_items: int = 1


Shape = type[Schema] | Many | OneOf


@dataclass(frozen=True)
class Answer:
    """One success status: its shape (None: not JSON, or opaque JSON) and media type.

    `direct` says the resource builds the answer exactly as the schema would dump it
    (a test holds it so); it is then not dumped again, on a path where the CPU counts."""

    description: str
    shape: Shape | dict[str, Any] | None = None
    media: str | tuple[str, ...] = JSON  # several: the answer is one of them
    direct: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """One method on one path template: the whole contract of the operation."""

    method: str
    path: str
    roles: frozenset[str]
    summary: str
    tag: str
    answers: Mapping[int, Answer]
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()
    body: Shape | dict[str, Any] | None = None
    own_only: frozenset[str] = frozenset()
    description: str = ""

    @property
    def public(self) -> bool:
        return not self.roles

    def param(self, name: str) -> Param | None:
        """The declared parameter a query name is read by (a prefix one for `feature.x`)."""
        for p in self.query:
            if p.name == name or (p.prefix and name.startswith(p.name) and name != p.name):
                return p
        return None


def roles(*names: str) -> frozenset[str]:
    """`roles("any")`, `roles("none")` or the named roles."""
    if names == ("any",):
        return ANY
    return PUBLIC if names == ("none",) else frozenset(names)
