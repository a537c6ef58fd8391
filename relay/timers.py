"""Timers: check-ins and unclaimed-case alerts are rows with a due time.

`run_due(now)` fires what is due, each in its own transaction; a timer fires once (its key
is unique), and after an outage each overdue series fires once and then reschedules after
`now`, never once per missed tick. Time always comes from the injected clock.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from handlers.flows.schedule import (
    CheckinPolicy,
    SlaPolicy,
    next_checkin,
    sla_first_due,
    sla_next_due,
)
from relay.logs import get_logger
from relay.store.models import Case, Timer

log = get_logger("timers")
BATCH = 200


class TimerKind(StrEnum):
    CHECKIN = "checkin"
    SLA = "sla"


def schedule(s: Session, kind: TimerKind, case_id: str, n: int, due_at: datetime,
             now: datetime) -> None:
    key = f"{kind.value}:{case_id}:{n}"
    if s.scalar(select(Timer.id).where(Timer.key == key)) is not None:
        return
    s.add(Timer(id=str(uuid.uuid4()), key=key, kind=kind.value, case_id=case_id, n=n,
                due_at=due_at, status="pending", created_at=now))


def next_n(s: Session, case_id: str, kind: TimerKind) -> int:
    """A fresh sequence number for a new timer of this case and kind."""
    current = s.scalar(select(func.max(Timer.n)).where(Timer.case_id == case_id,
                                                       Timer.kind == kind.value))
    return 0 if current is None else current + 1


def cancel(s: Session, case_id: str, kind: TimerKind | None = None) -> None:
    query = update(Timer).where(Timer.case_id == case_id, Timer.status == "pending")
    if kind is not None:
        query = query.where(Timer.kind == kind.value)
    s.execute(query.values(status="cancelled"))


def start_for_case(s: Session, case: Case, checkins: CheckinPolicy | None,
                   sla: SlaPolicy | None, now: datetime) -> None:
    """The first check-in (if the reporter agreed) and the unclaimed-case alert."""
    if checkins is not None and case.checkin_ok:
        n, due = next_checkin(case.created_at, now, checkins)
        schedule(s, TimerKind.CHECKIN, case.id, n, due, now)
    if sla is not None:
        due = sla_first_due(case.created_at, case.immediate_review, sla)
        schedule(s, TimerKind.SLA, case.id, 0, due, now)


def next_sla(case: Case, n: int, now: datetime, sla: SlaPolicy) -> tuple[int, datetime]:
    first = sla_first_due(case.created_at, case.immediate_review, sla)
    return n + 1, sla_next_due(first, now, case.immediate_review, sla)


def due_ids(sessions: sessionmaker[Session], now: datetime, limit: int = BATCH) -> list[str]:
    with sessions.begin() as s:
        return list(s.scalars(
            select(Timer.id).where(Timer.status == "pending", Timer.due_at <= now)
            .order_by(Timer.due_at).limit(limit)))


def claim(s: Session, timer_id: str, now: datetime) -> Timer | None:
    """Mark one due timer fired; None if someone else (or a clock jump) got there first."""
    result = s.execute(update(Timer).where(Timer.id == timer_id, Timer.status == "pending")
                       .values(status="done", fired_at=now))
    if getattr(result, "rowcount", 0) != 1:
        return None
    return s.get(Timer, timer_id)
