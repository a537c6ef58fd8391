"""A case's life after submission: timers and escalations, claiming, acknowledging, closing.

Every change here is one transaction with its audit row and the messages it causes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from handlers.flows.catalog import Catalog
from handlers.flows.schedule import CheckinPolicy, SlaPolicy
from relay import audit, timers
from relay.cases import deliver_to_scope, open_case, reporter_of
from relay.checkins import Answer, Checkins
from relay.config import Officer, OrgConfig
from relay.escalation import Escalations
from relay.outbox import Message, RecipientKind, enqueue
from relay.store.models import Case
from relay.store.sealing import Sealer
from relay.timers import TimerKind


class CaseLifecycle:
    def __init__(self, cfg: OrgConfig, sealer: Sealer, catalog: Catalog,
                 escalations: Escalations, checkins: Checkins,
                 checkin_policy: CheckinPolicy | None, sla: SlaPolicy | None) -> None:
        self._cfg = cfg
        self._sealer = sealer
        self._cat = catalog
        self._escalations = escalations
        self._checkins = checkins
        self._checkin_policy = checkin_policy
        self._sla = sla

    # -- CaseHooks (called by the reporter desk) ------------------------------------------
    def after_create(self, s: Session, case: Case, who: str | None, now: datetime) -> None:
        timers.start_for_case(s, case, self._checkin_policy, self._sla, now)
        self._escalations.at_submission(s, case, who, now)

    def checkin_answer(self, s: Session, case: Case, answer: Answer, reporter_aci: str,
                       now: datetime, key: str) -> None:
        self._checkins.answer(s, case, answer, reporter_aci, now, key)

    # -- officer and coordinator actions --------------------------------------------------
    def _tell_reporter(self, s: Session, case: Case, text: str, now: datetime,
                       key: str) -> None:
        who = reporter_of(s, self._sealer, case.id)
        if who is not None:
            enqueue(s, self._sealer, Message(RecipientKind.REPORTER, text, "status",
                                             address=who.aci, case_id=case.id),
                    key=f"{key}:reporter", now=now)

    def _tell_scope(self, s: Session, case: Case, text: str, now: datetime,
                    key: str) -> None:
        deliver_to_scope(s, self._sealer, self._cfg, open_case(self._sealer, case), text,
                         "status", now, key=f"{key}:scope")

    def claim(self, s: Session, case: Case, officer: Officer, now: datetime, key: str, *,
              show_name: bool = False) -> None:
        case.claimed_by = officer.id
        case.claimed_at = now
        if case.status == "open":
            case.status = "in-progress"
        case.updated_at = now
        timers.cancel(s, case.id, TimerKind.SLA)
        self._tell_scope(s, case, self._cat.render("officer_claimed",
                                                   name=officer.display_name, ref=case.ref),
                         now, key)
        if show_name and case.named:
            text = self._cat.render("reporter_claimed_named", name=officer.display_name,
                                    ref=case.ref)
        else:
            text = self._cat.render("reporter_claimed", ref=case.ref)
        self._tell_reporter(s, case, text, now, key)
        audit.append(s, "case.claimed", now, case_ref=case.ref, actor_ref=officer.id)

    def unclaim(self, s: Session, case: Case, officer: Officer, now: datetime,
                key: str) -> None:
        case.claimed_by = None
        case.claimed_at = None
        case.updated_at = now
        if self._sla is not None and case.acked_at is None:
            _, due = timers.next_sla(case, 0, now, self._sla)
            timers.schedule(s, TimerKind.SLA, case.id, timers.next_n(s, case.id, TimerKind.SLA),
                            due, now)
        self._tell_scope(s, case, self._cat.render("officer_unclaimed",
                                                   name=officer.display_name, ref=case.ref),
                         now, key)
        audit.append(s, "case.unclaimed", now, case_ref=case.ref, actor_ref=officer.id)

    def close(self, s: Session, case: Case, officer: Officer, now: datetime,
              key: str) -> None:
        case.status = "closed"
        case.closed_at = now
        case.updated_at = now
        timers.cancel(s, case.id)
        self._tell_scope(s, case, self._cat.render("officer_closed",
                                                   name=officer.display_name, ref=case.ref),
                         now, key)
        self._tell_reporter(s, case, self._cat.render("reporter_closed", ref=case.ref), now,
                            key)
        audit.append(s, "case.closed", now, case_ref=case.ref, actor_ref=officer.id)

    def acknowledge(self, s: Session, case: Case, coordinator: Officer, now: datetime) -> None:
        case.acked_at = now
        timers.cancel(s, case.id, TimerKind.SLA)
        audit.append(s, "case.acknowledged", now, case_ref=case.ref, actor_ref=coordinator.id)
