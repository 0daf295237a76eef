"""Bulk writes for pages of rows: COPY and one-statement upserts on PostgreSQL.

SQLAlchemy's executemany sends an upsert a row at a time through psycopg2, and its JSON
type encodes with the standard library; a page of a thousand predictions then costs
more than reading it. SQLite keeps the plain Core path (executemany is in-process).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa


def json_field(value: Any) -> str:
    """A JSON column's value in COPY's text format (None is JSON null, as SQLAlchemy's JSON type writes it)."""
    return orjson.dumps(value).decode().replace("\\", "\\\\")  # orjson escapes tabs and newlines


def text_field(text: str) -> str:
    """A string in COPY's text format (escaped only when it must be: most never need it)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def nullable_text(text: str | None) -> str:
    return "\\N" if text is None else text_field(text)


_BY_TYPE = {
    str: text_field,
    int: repr,
    float: repr,
    bool: lambda v: "t" if v else "f",
    type(None): lambda v: "\\N",
}


def _scalar(value: Any) -> str:
    """One non-JSON field in COPY's text format (by exact type first: this runs for every field)."""
    encode = _BY_TYPE.get(type(value))
    if encode is not None:
        return encode(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)
    return text_field(str(value))


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (dicts with every column) in one round trip."""
    columns = [c.name for c in table.columns]
    insert_tuples(conn, table, [tuple(row[c] for c in columns) for row in rows])


def insert_tuples(conn: sa.Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows (tuples of every column, in the table's order) in one round trip."""
    if not rows:
        return
    columns = [c.name for c in table.columns]
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    copy_in(conn, table, copy_text(table, rows))


def copy_text(table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> str:
    """Rows (tuples of every column, in the table's order) in COPY's text format."""
    encoders = [json_field if isinstance(c.type, sa.JSON) else _scalar for c in table.columns]
    return "".join(
        [
            "\t".join([encode(v) for encode, v in zip(encoders, row, strict=True)]) + "\n"
            for row in rows
        ]
    )


def copy_in(conn: sa.Connection, table: sa.Table, text: str) -> None:
    """One COPY of rows already in COPY's text format (PostgreSQL)."""
    if not text:
        return
    columns = ", ".join(c.name for c in table.columns)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(
            f"COPY {table.name} ({columns}) FROM STDIN", io.StringIO(text), size=len(text)
        )
    finally:
        cursor.close()


def add_to_cells(
    conn: sa.Connection,
    table: sa.Table,
    key: Sequence[str],
    sums: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert cells (tuples: the key's columns, then the sums'), or add their sums to the
    cells already there (one statement)."""
    if not rows:
        return
    columns = [*key, *sums]
    if conn.dialect.name != "postgresql":
        from sqlalchemy.dialects import sqlite

        insert = sqlite.insert(table)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=list(key), set_={c: table.c[c] + insert.excluded[c] for c in sums}
            ),
            [dict(zip(columns, row, strict=True)) for row in rows],
        )
        return
    from psycopg2.extras import execute_values

    updates = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in sums)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES %s "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        execute_values(cursor, sql, rows, page_size=len(rows))
    finally:
        cursor.close()
