"""What every projection shares: its position row, its tables by generation, its contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from projections.events import Event
from projections.pipeline import Writer

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_meta = sa.MetaData()
positions = sa.Table(
    "projection_positions",
    _meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", BIGINT, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)


class PositionMoved(Exception):
    """The compare-and-set on a position found another value: someone else wrote."""


class Projection:
    """Read tables derived from events; `apply` writes a page's rows (never events)."""

    name: ClassVar[str]
    version: ClassVar[int]
    topics: ClassVar[frozenset[type] | None] = None  # the event classes read; None: every event
    rebuild_page: ClassVar[int | None] = (
        None  # events a rebuild page spans (None: the runner's default)
    )
    pipelined: ClassVar[bool] = False  # True: a rebuild on PostgreSQL hands the writes to `writer`
    _defined: ClassVar[dict[tuple[str, int], dict[str, sa.Table]]] = {}

    def __init__(self, generation: int):
        self.generation = generation
        self.tables = self.tables_for(generation)
        self.writer: Writer | None = None  # set by the runner while it fills a new generation
        self.copier: Writer | None = None  # a second one, for what `apply_range` copies in SQL

    @classmethod
    def tables_for(cls, generation: int) -> dict[str, sa.Table]:
        """The physical tables of one generation (names end in `_g<generation>`)."""
        key = (cls.name, generation)
        if key not in cls._defined:
            cls._defined[key] = cls.define(sa.MetaData(), f"_g{generation}")
        return cls._defined[key]

    @classmethod
    def define(cls, metadata: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
        raise NotImplementedError

    def apply(self, conn: sa.Connection, events: Sequence[Event]) -> None:
        """Write what these events change, inside the caller's transaction."""
        raise NotImplementedError

    def apply_range(self, conn: sa.Connection, after: int, upto: int) -> None:
        """Events projected in SQL, straight from the event table (before `apply` of the page)."""

    def prefetch(self, after: int, upto: int) -> None:
        """The range the next page will likely apply (a pipelined rebuild may start on it)."""

    # -- table lifecycle ---------------------------------------------------------
    def create_tables(self, conn: sa.Connection, with_indexes: bool = True) -> None:
        """Tables with their indexes; a bulk load defers all but those `apply` looks rows up by."""
        for table in self.tables.values():
            conn.execute(sa.schema.CreateTable(table, if_not_exists=True))
            if with_indexes:
                self.create_indexes(conn, table)
            else:
                for index in table.indexes:
                    if index.info.get("lookup"):
                        index.create(conn, checkfirst=True)

    def create_indexes(self, conn: sa.Connection, table: sa.Table | None = None) -> None:
        for t in [table] if table is not None else self.tables.values():
            for index in t.indexes:
                index.create(conn, checkfirst=True)

    def analyze(self, conn: sa.Connection) -> None:
        """Fresh statistics: without them PostgreSQL sorts whole tables for a LIMIT 100."""
        if conn.dialect.name == "postgresql":
            for (
                table
            ) in self.tables.values():  # JSON columns' statistics cost most and serve no plan here
                columns = ", ".join(
                    c.name for c in table.columns if not isinstance(c.type, sa.JSON)
                )
                conn.exec_driver_sql(f"ANALYZE {table.name} ({columns})")

    def drop_tables(self, conn: sa.Connection) -> None:
        for table in reversed(list(self.tables.values())):
            conn.execute(sa.schema.DropTable(table, if_exists=True))


def ensure_positions(conn: sa.Connection) -> None:
    """The position table; DDL is serialised because runners may start together."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('ledger_projection_ddl'))")
    conn.execute(sa.schema.CreateTable(positions, if_not_exists=True))


class ProjectionState(NamedTuple):
    """How far a projection has applied the ledger, into which tables, at which schema version."""

    position: int
    generation: int  # which set of read tables is live (a rebuild fills the next one)
    version: int  # the table schema's version (Projection.version)


def read_position(conn: sa.Connection, name: str) -> ProjectionState | None:
    """The projection's position, generation and version, or None before its first run."""
    row = conn.execute(
        sa.select(positions.c.position, positions.c.generation, positions.c.version).where(
            positions.c.name == name
        )
    ).first()
    return None if row is None else ProjectionState(int(row[0]), int(row[1]), int(row[2]))


def compare_and_set(
    conn: sa.Connection,
    name: str,
    generation: int,
    old: int,
    new: int,
    version: int | None = None,
    new_generation: int | None = None,
) -> None:
    """Move a position only from the value we read; 0 rows means another runner wrote."""
    values: dict[str, Any] = {"position": new}
    if new_generation is not None:
        values.update(generation=new_generation, version=version)
    result = conn.execute(
        positions.update()
        .where(
            positions.c.name == name,
            positions.c.generation == generation,
            positions.c.position == old,
        )
        .values(**values)
    )
    if result.rowcount != 1:
        raise PositionMoved(
            f"projection {name} moved from position {old} (generation {generation})"
        )
