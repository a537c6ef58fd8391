"""Monotonic counters that give inbox and outbox rows their processing order."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, insert, update

from relay.store.models import Base

_TABLE = Base.metadata.tables["counters"]
_NEXT = (update(_TABLE).where(_TABLE.c.name == bindparam("counter"))
         .values(value=_TABLE.c.value + 1).returning(_TABLE.c.value))


def next_value(conn: Connection, name: str) -> int:
    """Next value of counter `name`, inside the caller's transaction (row-locked): one
    `UPDATE ... RETURNING`, and an insert the very first time."""
    value = conn.execute(_NEXT, {"counter": name}).scalar()
    if value is None:
        conn.execute(insert(_TABLE).values(name=name, value=1))
        return 1
    return int(value)
