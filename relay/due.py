"""`run_due(now)`: fire the timers that are due, a batch per transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from handlers.flows.schedule import SlaPolicy
from relay import timers
from relay.checkins import Checkins
from relay.escalation import Escalations
from relay.logs import get_logger
from relay.store.models import Case
from relay.timers import TimerKind

log = get_logger("due")


class DueRunner:
    def __init__(self, sessions: sessionmaker[Session], checkins: Checkins,
                 escalations: Escalations, sla: SlaPolicy | None) -> None:
        self._sessions = sessions
        self._checkins = checkins
        self._escalations = escalations
        self._sla = sla
        self.backlog = False  # the last pass claimed a full batch: run another one

    def run_due(self, now: datetime) -> int:
        """Fire what is due at `now`, up to `timers.BATCH` timers in one transaction.
        Returns how many timers fired. A timer whose firing fails is rolled back to its
        savepoint and left pending for the next pass; the others still commit. `backlog`
        tells whether another pass now would find more: a full batch, not all failed."""
        fired = failed = 0
        with self._sessions.begin() as s:
            claimed = timers.claim_due(s, now, timers.BATCH)
            for timer, case in claimed:
                if case is None:
                    continue  # the case is gone: the timer is simply spent
                try:
                    with s.begin_nested():
                        if timer.kind == TimerKind.CHECKIN:
                            self._checkins.fire(s, timer, case, now)
                        elif timer.kind == TimerKind.SLA:
                            self._fire_sla(s, timer.n, case, now)
                    fired += 1
                except Exception as exc:
                    log.error("due.timer_failed", exc_type=type(exc).__name__)
                    timers.release(s, timer.id)
                    failed += 1
        self.backlog = len(claimed) >= timers.BATCH and failed < len(claimed)
        return fired

    def _fire_sla(self, s: Session, n: int, case: Case, now: datetime) -> None:
        if case.claimed_by or case.acked_at or case.status == "closed" or self._sla is None:
            return
        self._escalations.unclaimed(s, case, now)
        next_n, due = timers.next_sla(case, n, now, self._sla)
        timers.schedule(s, TimerKind.SLA, case.id, next_n, due, now)
