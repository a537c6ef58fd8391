"""Timers: check-ins and unclaimed-case alerts are rows with a due time.

`run_due(now)` fires what is due, a batch per transaction (each timer in a savepoint of
its own); a timer fires once (its key is unique, and claiming it is a guarded update in
the transaction that fires it), and after an outage each overdue series fires once and
then reschedules after `now`, never once per missed tick. Time always comes from the
injected clock.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from handlers.flows.schedule import (
    CheckinPolicy,
    SlaPolicy,
    next_checkin,
    sla_first_due,
    sla_next_due,
)
from relay.logs import get_logger
from relay.store.inserts import flush_new, insert_new
from relay.store.models import Base, Case, Timer

log = get_logger("timers")
BATCH = 20
"""Timers per pass (one transaction, one database job): 1.5 ms each on a 100 000-case
database, so a pass holds the database thread well under 100 ms; `Relay.tick` runs passes
back to back while timers are due, and messages are handled in between."""
_TABLE = Base.metadata.tables["timers"]


class TimerKind(StrEnum):
    CHECKIN = "checkin"
    SLA = "sla"


def schedule(s: Session, kind: TimerKind, case_id: str, n: int, due_at: datetime,
             now: datetime) -> None:
    """Add a pending timer unless this one (kind, case, n) exists already."""
    insert_new(flush_new(s), _TABLE, "key", {
        "id": str(uuid.uuid4()), "key": f"{kind.value}:{case_id}:{n}", "kind": kind.value,
        "case_id": case_id, "n": n, "due_at": due_at, "status": "pending",
        "created_at": now})


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


def claim_due(s: Session, now: datetime, limit: int = BATCH) -> list[tuple[Timer, Case | None]]:
    """Mark up to `limit` due timers fired in the caller's transaction, oldest due first,
    with their cases (None for a case that is gone). Committed together with what firing
    them causes, so a crash before the commit leaves every one of them pending."""
    # locked by the select (PostgreSQL: FOR UPDATE, re-checked; SQLite: BEGIN IMMEDIATE),
    # so the update goes by primary key alone (with the status too, SQLite would scan
    # every pending timer through the status index)
    ids = list(s.scalars(select(Timer.id).where(Timer.status == "pending", Timer.due_at <= now)
                         .order_by(Timer.due_at).limit(limit)
                         .with_for_update(skip_locked=True)))
    if not ids:
        return []
    s.execute(update(Timer).where(Timer.id.in_(ids)).values(status="done", fired_at=now)
              .execution_options(synchronize_session=False))
    claimed = sorted(s.scalars(select(Timer).where(Timer.id.in_(ids))),
                     key=lambda t: (t.due_at, t.id))
    case_ids = {t.case_id for t in claimed}
    cases = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(case_ids)))}
    return [(t, cases.get(t.case_id)) for t in claimed]


def release(s: Session, timer_id: str) -> None:
    """Undo a claim whose firing failed: the timer is tried again on the next pass."""
    s.execute(update(Timer).where(Timer.id == timer_id)
              .values(status="pending", fired_at=None)
              .execution_options(synchronize_session=False))
