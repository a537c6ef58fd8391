"""Hot-path statements run on the session's connection, built once, not per call.

Building a statement costs more than running it, and ORM inserts wait for a flush: these
run at once, in the caller's transaction, through SQLAlchemy Core (so column types still
convert values). They skip the session's autoflush: a row they refer to (a case) must be
in the database already, which `flush_new` makes sure of.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


@cache
def _insert_new(dialect: str, table: Table, unique: tuple[str, ...]) -> Insert:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing(index_elements=list(unique)).returning(
        table.c[unique[0]])


def insert_new(conn: Connection, table: Table, unique: str | tuple[str, ...],
               values: Mapping[str, Any]) -> bool:
    """INSERT one row unless a row with the same value(s) of the unique column(s) `unique`
    exists. True if inserted."""
    stmt = _insert_new(conn.dialect.name, table,
                       (unique,) if isinstance(unique, str) else unique)
    return conn.execute(stmt, dict(values)).first() is not None


def flush_new(session: Session) -> Connection:
    """The session's connection, with its pending new objects written first (so a row
    inserted through it may refer to them)."""
    if session.new:
        session.flush()
    return session.connection()
