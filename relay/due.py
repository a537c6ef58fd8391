"""`run_due(now)`: fire every timer that is due, one transaction per timer."""

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

    def run_due(self, now: datetime) -> int:
        """Fire what is due at `now`. Returns how many timers fired."""
        fired = 0
        for timer_id in timers.due_ids(self._sessions, now):
            try:
                with self._sessions.begin() as s:
                    timer = timers.claim(s, timer_id, now)
                    if timer is None:
                        continue
                    case = s.get(Case, timer.case_id)
                    if case is None:
                        continue
                    if timer.kind == TimerKind.CHECKIN:
                        self._checkins.fire(s, timer, case, now)
                    elif timer.kind == TimerKind.SLA:
                        self._fire_sla(s, timer.n, case, now)
                    fired += 1
            except Exception as exc:
                log.error("due.timer_failed", exc_type=type(exc).__name__)
        return fired

    def _fire_sla(self, s: Session, n: int, case: Case, now: datetime) -> None:
        if case.claimed_by or case.acked_at or case.status == "closed" or self._sla is None:
            return
        self._escalations.unclaimed(s, case, now)
        next_n, due = timers.next_sla(case, n, now, self._sla)
        timers.schedule(s, TimerKind.SLA, case.id, next_n, due, now)
