"""Monotonic counters that give inbox and outbox rows their processing order."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relay.store.models import Counter


def next_value(session: Session, name: str) -> int:
    """Next value of counter `name`, inside the caller's transaction (row-locked)."""
    result = session.execute(
        update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
    )
    if getattr(result, "rowcount", 0) == 0:
        session.add(Counter(name=name, value=1))
        session.flush()
        return 1
    value = session.scalar(select(Counter.value).where(Counter.name == name))
    assert value is not None
    return value
