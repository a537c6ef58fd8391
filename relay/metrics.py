"""Counts and ages for `/metrics` and `/healthz`, and the Prometheus text they render to.

Everything here is a number: row counts by status, ages in seconds, booleans as 0/1. The
only label values are fixed status names and scope ids (config slugs) — never a group
id, an officer id, a person, or anything anyone wrote.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.cases import OPEN_STATES
from relay.inbox import InboxStatus
from relay.outbox import Status
from relay.store.models import Case, InboxRow, OutboxRow, Timer

CASE_STATES = (*OPEN_STATES, "closed")
OUTBOX_WAITING = (Status.PENDING, Status.SENDING, Status.HELD)
"""Rows not yet delivered nor given up: their age is the outbox check."""


@dataclass(frozen=True)
class DbCounts:
    """What the database holds, read in one short transaction."""

    inbox_pending: int
    inbox_oldest_pending: datetime | None
    inbox_quarantined: int
    outbox_rows: Mapping[str, int]
    outbox_oldest_waiting: datetime | None
    cases: Mapping[str, int]
    cases_unclaimed: int
    timers_pending: int
    timers_overdue: int


def read_counts(s: Session, now: datetime) -> DbCounts:
    """COUNT and MIN queries on indexed status columns only."""
    inbox_pending, inbox_oldest = s.execute(
        select(func.count(), func.min(InboxRow.received_at))
        .where(InboxRow.status == InboxStatus.PENDING)).one()
    quarantined = s.scalar(select(func.count()).select_from(InboxRow)
                           .where(InboxRow.status == InboxStatus.QUARANTINED)) or 0
    outbox = {str(k): int(v) for k, v in s.execute(
        select(OutboxRow.status, func.count()).group_by(OutboxRow.status))}
    oldest_waiting = s.scalar(select(func.min(OutboxRow.created_at))
                              .where(OutboxRow.status.in_(OUTBOX_WAITING)))
    cases = {str(k): int(v) for k, v in s.execute(
        select(Case.status, func.count()).group_by(Case.status))}
    unclaimed = s.scalar(select(func.count()).select_from(Case).where(
        Case.status.in_(OPEN_STATES), Case.claimed_by.is_(None))) or 0
    timers_pending, timers_overdue = s.execute(
        select(func.count(), func.count().filter(Timer.due_at <= now))
        .where(Timer.status == "pending")).one()
    return DbCounts(
        inbox_pending=int(inbox_pending), inbox_oldest_pending=inbox_oldest,
        inbox_quarantined=int(quarantined),
        outbox_rows=outbox,
        outbox_oldest_waiting=oldest_waiting,
        cases=cases, cases_unclaimed=int(unclaimed),
        timers_pending=int(timers_pending), timers_overdue=int(timers_overdue or 0),
    )


@dataclass(frozen=True)
class Live:
    """In-memory state of the running relay, read on the event loop at request time."""

    now: datetime
    started_at: datetime
    receiver_connected: bool
    receiver_connections: int
    frames_received: int
    frames_processed: int
    sends_ok: int
    timers_ran_at: datetime | None
    groups: Mapping[str, bool | None]
    """Team scope id -> group is clean (True), not clean (False), unreadable (None)."""

    @property
    def reconnects(self) -> int:
        return max(self.receiver_connections - 1, 0)

    @property
    def timers_age(self) -> float:
        return age(self.now, self.timers_ran_at or self.started_at)


@dataclass(frozen=True)
class Snapshot:
    live: Live
    db: DbCounts | None
    """None when the database did not answer in time."""

    def outbox_age(self) -> float | None:
        if self.db is None:
            return None
        return age(self.live.now, self.db.outbox_oldest_waiting)

    def inbox_age(self) -> float | None:
        if self.db is None:
            return None
        return age(self.live.now, self.db.inbox_oldest_pending)


def age(now: datetime, since: datetime | None) -> float:
    """Seconds from `since` to `now`; 0 when there is nothing waiting."""
    if since is None:
        return 0.0
    return max((now - since).total_seconds(), 0.0)


# -- Prometheus text exposition format 0.0.4 -------------------------------------------------

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Labels = Mapping[str, str]
Sample = tuple[Labels, float]


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Families written in order, each `# HELP`, `# TYPE`, then its samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._names: set[str] = set()

    def add(self, name: str, kind: str, help_text: str,
            samples: float | Iterable[Sample]) -> None:
        if name in self._names:
            raise ValueError(f"metric family {name} written twice")
        self._names.add(name)
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")
        rows: Iterable[Sample] = [({}, samples)] if isinstance(samples, int | float) else samples
        for labels, value in rows:
            label_text = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items())
            braces = f"{{{label_text}}}" if label_text else ""
            self._lines.append(f"{name}{braces} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _by(label: str, keys: Iterable[str], counts: Mapping[str, int]) -> list[Sample]:
    """One sample per known key (0 when absent); unknown stored values are summed as other."""
    known = list(keys)
    samples: list[Sample] = [({label: k}, counts.get(k, 0)) for k in known]
    other = sum(v for k, v in counts.items() if k not in known)
    if other:
        samples.append(({label: "other"}, other))
    return samples


def render(snap: Snapshot, checks: Mapping[str, bool | None]) -> str:
    """The `/metrics` body."""
    live, db = snap.live, snap.db
    out = Exposition()
    out.add("relay_up", "gauge", "1 while relay is running.", 1)
    out.add("relay_start_time_seconds", "gauge", "When relay started, as a Unix time.",
            live.started_at.timestamp())
    out.add("relay_check_ok", "gauge",
            "Health checks as /healthz evaluates them: 1 passing, 0 failing.",
            [({"check": name}, 1 if ok else 0) for name, ok in checks.items() if ok is not None])
    out.add("relay_database_up", "gauge", "1 if the database answered the last snapshot.",
            0 if db is None else 1)
    out.add("relay_receiver_connected", "gauge",
            "1 while the receive websocket to signal-cli-rest-api is open.",
            1 if live.receiver_connected else 0)
    out.add("relay_receiver_reconnects_total", "counter",
            "Receive websocket connections opened after the first.", live.reconnects)
    out.add("relay_receiver_frames_total", "counter", "Frames read from the websocket.",
            live.frames_received)
    out.add("relay_dispatcher_processed_total", "counter",
            "Inbox rows the dispatcher finished (handled or quarantined).", live.frames_processed)
    out.add("relay_sends_total", "counter", "Messages delivered to Signal by this process.",
            [({"outcome": "sent"}, live.sends_ok)])
    out.add("relay_timer_last_run_age_seconds", "gauge",
            "Seconds since the timer loop last completed a run.", live.timers_age)
    out.add("relay_group_readable", "gauge",
            "1 if relay could read the team scope's Signal group.",
            [({"scope": k}, 0 if v is None else 1) for k, v in live.groups.items()])
    out.add("relay_group_clean", "gauge",
            "1 if only the scope's officers and the bot are in its group (0 if not, or unread).",
            [({"scope": k}, 1 if v else 0) for k, v in live.groups.items()])
    if db is not None:
        _render_db(out, snap, db)
    return out.text()


def _render_db(out: Exposition, snap: Snapshot, db: DbCounts) -> None:
    out.add("relay_inbox_pending", "gauge", "Received frames waiting for the dispatcher.",
            db.inbox_pending)
    out.add("relay_inbox_oldest_pending_seconds", "gauge",
            "Age of the oldest frame waiting for the dispatcher (0 if none).",
            snap.inbox_age() or 0.0)
    out.add("relay_inbox_quarantined", "gauge",
            "Frames set aside because they could not be handled (kept sealed for review).",
            db.inbox_quarantined)
    out.add("relay_outbox_rows", "gauge", "Outbox rows by status.",
            _by("status", [s.value for s in Status], db.outbox_rows))
    out.add("relay_outbox_oldest_pending_seconds", "gauge",
            "Age of the oldest message not yet delivered (pending, sending or held; 0 if none).",
            snap.outbox_age() or 0.0)
    out.add("relay_cases", "gauge", "Cases by state.", _by("state", CASE_STATES, db.cases))
    out.add("relay_cases_unclaimed", "gauge", "Open cases no officer has claimed.",
            db.cases_unclaimed)
    out.add("relay_timers_pending", "gauge", "Check-in and escalation timers not yet fired.",
            db.timers_pending)
    out.add("relay_timers_overdue", "gauge", "Pending timers whose due time has passed.",
            db.timers_overdue)
