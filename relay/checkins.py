"""Check-ins: a neutral question to the reporter, and what each answer does.

The question says nothing about the case (someone else may read the phone). Answers:
1 okay, 2 update (asks the officers in scope), 3 support now (escalates), 4 pause,
5 stop. Anything else is passed to the case as a message from the reporter.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from handlers.flows.catalog import Catalog
from handlers.flows.schedule import CheckinPolicy, next_checkin, resume_after_pause
from handlers.flows.text import answer_key
from relay import audit, timers
from relay.cases import CaseView, await_answer, deliver_to_scope, open_case, reporter_of
from relay.config import OrgConfig
from relay.escalation import Escalations
from relay.outbox import Message, RecipientKind, enqueue
from relay.store.models import Case, Conversation, Timer
from relay.store.sealing import Sealer
from relay.timers import TimerKind

CONV = "conversations"


class Answer(StrEnum):
    OKAY = "1"
    UPDATE = "2"
    SUPPORT = "3"
    PAUSE = "4"
    STOP = "5"


WORDS = {
    "1": Answer.OKAY, "ok": Answer.OKAY, "okay": Answer.OKAY, "im okay": Answer.OKAY,
    "fine": Answer.OKAY, "2": Answer.UPDATE, "update": Answer.UPDATE,
    "3": Answer.SUPPORT, "support": Answer.SUPPORT, "help": Answer.SUPPORT,
    "4": Answer.PAUSE, "pause": Answer.PAUSE, "5": Answer.STOP, "stop": Answer.STOP,
}


def parse_answer(text: str) -> Answer | None:
    return WORDS.get(answer_key(text))


class Checkins:
    def __init__(self, cfg: OrgConfig, sealer: Sealer, catalog: Catalog,
                 policy: CheckinPolicy, escalations: Escalations) -> None:
        self._cfg = cfg
        self._sealer = sealer
        self._cat = catalog
        self._policy = policy
        self._escalations = escalations

    def fire(self, s: Session, timer: Timer, case: Case, now: datetime) -> None:
        if case.status == "closed" or not case.checkin_ok or not self._cfg.checkins.enabled:
            return
        who = reporter_of(s, self._sealer, case.id)
        if who is None:
            return  # the reporter link was shredded: nobody to ask
        conv = s.scalar(select(Conversation).where(
            Conversation.reporter_bidx == self._sealer.reporter_index(who.aci)))
        if conv is not None and conv.flow == "intake":
            # mid-way through another report: do not interrupt, ask again tomorrow
            n, due = next_checkin(case.created_at, now, self._policy, start=timer.n)
            timers.schedule(s, TimerKind.CHECKIN, case.id, n, max(due, now), now)
            return
        # the next answer is read as an answer to this check-in
        await_answer(s, self._sealer, who.aci, "checkin", "awaiting", {"case": case.ref}, now)
        enqueue(s, self._sealer, Message(RecipientKind.REPORTER,
                                         self._cat.render("checkin_question"), "checkin",
                                         address=who.aci, case_id=case.id),
                key=f"checkin:{timer.id}", now=now)
        audit.append(s, "checkin.sent", now, case_ref=case.ref)
        n, due = next_checkin(case.created_at, now, self._policy, start=timer.n + 1)
        timers.schedule(s, TimerKind.CHECKIN, case.id, n, due, now)

    def answer(self, s: Session, case_row: Case, answer: Answer, reporter_aci: str,
               now: datetime, key: str) -> None:
        case = open_case(self._sealer, case_row)
        reply = {
            Answer.OKAY: "checkin_ok", Answer.UPDATE: "checkin_update",
            Answer.SUPPORT: "checkin_support", Answer.PAUSE: "checkin_paused",
            Answer.STOP: "checkin_stopped",
        }[answer]
        if answer is Answer.UPDATE:
            self._tell_scope(s, case, "officer_update_requested", now, key)
        elif answer is Answer.SUPPORT:
            self._tell_scope(s, case, "officer_support_requested", now, key)
            self._escalations.distress(s, case_row, now)
        elif answer is Answer.PAUSE:
            timers.cancel(s, case.id, TimerKind.CHECKIN)
            timers.schedule(s, TimerKind.CHECKIN, case.id,
                            timers.next_n(s, case.id, TimerKind.CHECKIN),
                            resume_after_pause(now, self._policy), now)
        elif answer is Answer.STOP:
            timers.cancel(s, case.id, TimerKind.CHECKIN)
            s.execute(update(Case).where(Case.id == case.id).values(checkin_ok=False))
        texts = [self._cat.render(reply)]
        if answer is Answer.SUPPORT:
            texts.append(self._cat.render("urgent_help"))
        for index, text in enumerate(texts):
            enqueue(s, self._sealer, Message(RecipientKind.REPORTER, text, "checkin",
                                             address=reporter_aci, case_id=case.id),
                    key=f"{key}:c{index}", now=now)
        audit.append(s, f"checkin.answer_{answer.name.lower()}", now, case_ref=case.ref,
                     actor_ref="reporter")

    def _tell_scope(self, s: Session, case: CaseView, msg_id: str, now: datetime,
                    key: str) -> None:
        text = self._cat.render(msg_id, ref=case.ref)
        deliver_to_scope(s, self._sealer, self._cfg, case, text, "checkin_relay", now,
                         key=f"{key}:scope")
