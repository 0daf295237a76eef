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


def _json(value: Any) -> str:
    return orjson.dumps(value).decode().replace("\\", "\\\\")  # orjson escapes tabs and newlines


def _scalar(value: Any) -> str:
    """One non-JSON field in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (dicts with every column) in one round trip."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    columns = [c.name for c in table.columns]
    encoders = [(c.name, _json if isinstance(c.type, sa.JSON) else _scalar) for c in table.columns]
    buffer = io.StringIO()
    buffer.writelines("\t".join([encode(row[c]) for c, encode in encoders]) + "\n" for row in rows)
    buffer.seek(0)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN", buffer)
    finally:
        cursor.close()


def add_to_cells(conn: sa.Connection, table: sa.Table, key: Sequence[str], sums: Sequence[str],
                 rows: Sequence[dict[str, Any]]) -> None:
    """Insert cells, or add their sums to the cells already there (one statement)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        from sqlalchemy.dialects import sqlite

        insert = sqlite.insert(table)
        conn.execute(insert.on_conflict_do_update(
            index_elements=list(key), set_={c: table.c[c] + insert.excluded[c] for c in sums}), list(rows))
        return
    from psycopg2.extras import execute_values

    columns = [*key, *sums]
    updates = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in sums)
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES %s "
           f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        execute_values(cursor, sql, [tuple(r[c] for c in columns) for r in rows], page_size=len(rows))
    finally:
        cursor.close()
