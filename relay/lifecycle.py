"""A case's life after submission: timers and escalations, claiming, acknowledging, closing.

Every change here is one transaction with its audit row and the messages it causes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from handlers.flows.catalog import Catalog
from handlers.flows.schedule import CheckinPolicy, SlaPolicy, next_checkin
from relay import audit, timers
from relay.cases import (
    deliver_to_scope,
    open_case,
    remember_choice,
    reporter_of,
    save_routing,
)
from relay.checkins import Answer, Checkins
from relay.config import Officer, OrgConfig
from relay.escalation import Escalations
from relay.outbox import Message, RecipientKind, enqueue
from relay.scopes import Routing
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
    def tell_reporter(self, s: Session, case: Case, text: str, now: datetime,
                       key: str) -> None:
        who = reporter_of(s, self._sealer, case.id)
        if who is not None:
            enqueue(s, self._sealer, Message(RecipientKind.REPORTER, text, "status",
                                             address=who.aci, case_id=case.id),
                    key=f"{key}:reporter", now=now)

    def tell_scope(self, s: Session, case: Case, text: str, now: datetime,
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
        self.tell_scope(s, case, self._cat.render("officer_claimed",
                                                   name=officer.display_name, ref=case.ref),
                         now, key)
        if show_name and case.named:
            text = self._cat.render("reporter_claimed_named", name=officer.display_name,
                                    ref=case.ref)
        else:
            text = self._cat.render("reporter_claimed", ref=case.ref)
        self.tell_reporter(s, case, text, now, key)
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
        self.tell_scope(s, case, self._cat.render("officer_unclaimed",
                                                   name=officer.display_name, ref=case.ref),
                         now, key)
        audit.append(s, "case.unclaimed", now, case_ref=case.ref, actor_ref=officer.id)

    def close(self, s: Session, case: Case, officer: Officer, now: datetime,
              key: str) -> None:
        case.status = "closed"
        case.closed_at = now
        case.updated_at = now
        timers.cancel(s, case.id)
        self.tell_scope(s, case, self._cat.render("officer_closed",
                                                   name=officer.display_name, ref=case.ref),
                         now, key)
        self.tell_reporter(s, case, self._cat.render("reporter_closed", ref=case.ref), now,
                            key)
        audit.append(s, "case.closed", now, case_ref=case.ref, actor_ref=officer.id)

    def restart_timers(self, s: Session, case: Case, now: datetime) -> None:
        """After a reopen: check-ins resume (if agreed) and the unclaimed alert re-arms."""
        if self._checkin_policy is not None and case.checkin_ok:
            _, due = next_checkin(case.created_at, now, self._checkin_policy)
            timers.schedule(s, TimerKind.CHECKIN, case.id,
                            timers.next_n(s, case.id, TimerKind.CHECKIN), due, now)
        if self._sla is not None and not case.claimed_by and not case.acked_at:
            _, due = timers.next_sla(case, 0, now, self._sla)
            timers.schedule(s, TimerKind.SLA, case.id, timers.next_n(s, case.id, TimerKind.SLA),
                            due, now)

    def ask_reporter_to_choose(self, s: Session, case: Case, routing: Routing, now: datetime,
                               key: str) -> None:
        """The officer a reporter chose stepped back: the reporter picks who takes over."""
        who = reporter_of(s, self._sealer, case.id)
        if who is None:
            return
        scope = self._cfg.scope(routing.scope_id)
        options = [o for o in scope.officers if o not in routing.excluded
                   and o != routing.support]
        if not options:
            return
        names = "\n".join(f"{i}. {self._cfg.officer(o).display_name}"
                          for i, o in enumerate(options, 1))
        remember_choice(s, self._sealer, who.aci, case.ref, options, now)
        self.tell_reporter(s, case, self._cat.render("reporter_recused_choose", ref=case.ref,
                                                     options=names), now, key)

    def choose_officer(self, s: Session, case: Case, officer_id: str, now: datetime,
                       key: str) -> None:
        """The reporter's answer after a recusal: the new chosen officer gets the case."""
        view = open_case(self._sealer, case)
        old = view.routing
        save_routing(self._sealer, case, view,
                     Routing(old.scope_id, officer_id, old.support, old.excluded))
        case.updated_at = now
        s.flush()
        refreshed = open_case(self._sealer, case)
        history = self._cat.render("officer_handover_history", ref=case.ref)
        deliver_to_scope(s, self._sealer, self._cfg, refreshed, history, "handover", now,
                         key=f"{key}:handover")
        audit.append(s, "case.rechosen", now, case_ref=case.ref, actor_ref="reporter")

    def acknowledge(self, s: Session, case: Case, coordinator: Officer, now: datetime) -> None:
        case.acked_at = now
        timers.cancel(s, case.id, TimerKind.SLA)
        audit.append(s, "case.acknowledged", now, case_ref=case.ref, actor_ref=coordinator.id)
