"""The reporter's side: intake conversations, follow-ups to open cases, resume after restart,
and the reporter's commands (STATUS, ADD, REVEAL, WITHDRAW, FORGET ME).

The conversation logic itself is pure (`handlers/flows`); this module loads state under the
dispatcher's transaction, runs one step, and persists state, case rows and replies together.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from handlers.events import TextMessage
from handlers.flows import intake, reporter
from handlers.flows.catalog import Catalog
from handlers.flows.intake import AttachmentNote, Draft, FlowContext, IntakeInput, Outcome
from handlers.flows.text import answer_key, clean_text, quote_block
from keys import KeyringError, SealError
from relay import audit, timers
from relay.alerts import alert
from relay.cases import (
    OPEN_STATES,
    CaseView,
    ReporterAddress,
    add_message,
    create_case,
    deliver_to_scope,
    open_case,
)
from relay.checkins import Answer, parse_answer
from relay.config import OrgConfig
from relay.outbox import Message, RecipientKind, Status, enqueue
from relay.scopes import NoRecipientError
from relay.store.models import Case, Conversation, OutboxRow, ReporterLink
from relay.store.sealing import Sealer

TABLE = "conversations"
MAX_TEXT = intake.MAX_PART_CHARS * 2  # the flow cuts at MAX_PART_CHARS and says so
STATUS_CLOSED_SHOWN = 5  # STATUS lists at most this many of the reporter's closed cases
# Messages already sent to (or given up on for) a reporter: FORGET ME deletes those about
# their cases, since each one ties the reporter's address to a case reference.
FINISHED_SENDS = (Status.SENT, Status.FAILED, Status.UNREACHABLE)


_WAITING = reporter.CaseState.WAITING
_CONFIRMED = (reporter.Action.REVEAL, reporter.Action.WITHDRAW, reporter.Action.FORGET)


class CaseHooks(Protocol):
    """What happens around a case besides the conversation: timers, escalations."""

    def after_create(self, s: Session, case: Case, who: str | None, now: datetime) -> None: ...

    def checkin_answer(self, s: Session, case: Case, answer: Answer, reporter_aci: str,
                       now: datetime, key: str) -> None: ...

    def choose_officer(self, s: Session, case: Case, officer_id: str, now: datetime,
                       key: str) -> None: ...


class ReporterDesk:
    def __init__(self, cfg: OrgConfig, sealer: Sealer, catalog: Catalog,
                 ctx: FlowContext, hooks: CaseHooks | None = None) -> None:
        self._cfg = cfg
        self._sealer = sealer
        self._cat = catalog
        self._ctx = ctx
        self._hooks = hooks

    # -- persistence ----------------------------------------------------------------------
    def _load(self, conv: Conversation) -> dict[str, Any]:
        dek = self._sealer.open_record(TABLE, conv.id, conv.dek_wrapped)
        data: dict[str, Any] = self._sealer.open_json(dek, TABLE, conv.id, "data",
                                                      conv.data_sealed)
        return data

    def _address(self, conv: Conversation) -> ReporterAddress:
        dek = self._sealer.open_record(TABLE, conv.id, conv.dek_wrapped)
        return ReporterAddress.from_json(
            self._sealer.open_json(dek, TABLE, conv.id, "address", conv.address_sealed))

    def _save(self, s: Session, conv: Conversation | None, bidx: bytes, flow: str, state: str,
              data: dict[str, Any], who: ReporterAddress, now: datetime) -> None:
        if conv is None:
            conv_id = str(uuid.uuid4())
            rk = self._sealer.new_record(TABLE, conv_id)
            conv = Conversation(id=conv_id, reporter_bidx=bidx, created_at=now, version=0,
                                kek_id=rk.kek_id, dek_wrapped=rk.wrapped)
            s.add(conv)
            dek = rk.dek
        else:
            dek = self._sealer.open_record(TABLE, conv.id, conv.dek_wrapped)
        conv.flow = flow
        conv.state = state
        conv.updated_at = now
        conv.version = (conv.version or 0) + 1
        conv.data_sealed = self._sealer.seal_json(dek, TABLE, conv.id, "data", data)
        conv.address_sealed = self._sealer.seal_json(dek, TABLE, conv.id, "address",
                                                     who.to_json())

    def _reply(self, s: Session, who: ReporterAddress, texts: tuple[str, ...] | list[str],
               now: datetime, key: str, case_id: str | None = None) -> None:
        for index, text in enumerate(texts):
            enqueue(s, self._sealer, Message(RecipientKind.REPORTER, text, "conversation",
                                             address=who.aci, case_id=case_id),
                    key=f"{key}:r{index}", now=now)

    # -- entry point ----------------------------------------------------------------------
    def handle(self, s: Session, ev: TextMessage, now: datetime, *, key: str) -> None:
        who = ReporterAddress(ev.sender.aci, ev.sender.number, ev.sender.profile_name)
        text = clean_text(ev.text, MAX_TEXT) if ev.text else None
        notes = tuple(AttachmentNote(a.content_type, a.size or 0) for a in ev.attachments)
        if not (text and text.strip()) and not notes:
            return  # a disappearing-timer change or an empty message: nothing to answer
        inp = IntakeInput(text, notes)
        bidx = self._sealer.reporter_index(who.aci)
        conv = s.scalar(select(Conversation).where(Conversation.reporter_bidx == bidx))
        if conv is not None and not self._readable(s, conv, now):
            conv = None  # quarantined: this message starts afresh, nothing else is lost
        if conv is not None and conv.flow == "choose":
            if self._choice_reply(s, conv, inp, now, key):
                return
            conv = None
        if conv is not None and conv.flow == "checkin":
            if self._checkin_reply(s, conv, inp, who, now, key):
                return
            conv = None  # answered with something else: handled as a normal message
        if conv is not None and conv.flow == "intake":
            data = self._load(conv)
            result = intake.step(intake.IntakeState(conv.state), Draft.from_json(data["draft"]),
                                 inp, self._ctx, now)
            self._after_intake(s, conv, bidx, result, who, now, key)
            if result.outcome is Outcome.EXPIRED:  # the message that found it expired counts
                fresh = intake.start(self._ctx, inp, now)
                self._after_intake(s, None, bidx, fresh, who, now, f"{key}:fresh")
            return
        linked = self._linked(s, bidx)  # one query: the open cases are among them
        cases = [open_case(self._sealer, row) for row in linked if row.status in OPEN_STATES]
        pending = self._load(conv).get("router") if conv is not None else None
        states = self._states(linked)
        decision = reporter.decide(
            reporter.RouterInput(text=text, has_attachments=bool(notes),
                                 profile_name=who.profile_name, number=who.number),
            [reporter.OpenCase(c.ref, self._case_label(c), states.get(c.ref, _WAITING),
                               c.named) for c in cases],
            reporter.RouterMemory.from_json(pending) if pending else None,
            self._cat,
            finished=self._finished(linked),
        )
        self._after_router(s, conv, bidx, decision, cases, inp, who, now, key)

    def _linked(self, s: Session, bidx: bytes) -> list[Case]:
        """Every case this reporter is still linked to, oldest first."""
        return list(s.scalars(
            select(Case).join(ReporterLink, ReporterLink.case_id == Case.id)
            .where(ReporterLink.reporter_bidx == bidx).order_by(Case.created_at)))

    @staticmethod
    def _states(linked: list[Case]) -> dict[str, reporter.CaseState]:
        """How each open case is described to its reporter: taken or still waiting."""
        return {row.ref: reporter.CaseState.TAKEN
                if row.claimed_by or row.status == "in-progress" else _WAITING
                for row in linked if row.status in OPEN_STATES}

    def _finished(self, linked: list[Case]) -> list[reporter.OpenCase]:
        """The reporter's cases that are no longer open (the latest few), for STATUS."""
        done = [row for row in linked if row.status not in OPEN_STATES]
        return [reporter.OpenCase(
            row.ref, self._cat.render("reporter_case_label", ref=row.ref),
            reporter.CaseState.CLOSED if row.status == "closed"
            else reporter.CaseState.RESOLVED, row.named)
            for row in done[-STATUS_CLOSED_SHOWN:]]

    def _readable(self, s: Session, conv: Conversation, now: datetime) -> bool:
        """A conversation whose ciphertext does not open (tampered, or its key destroyed) is
        set aside, sealed as it is, under a random index, and the coordinators are told;
        the reporter is never stuck behind it."""
        try:
            self._load(conv)
        except (SealError, KeyringError) as exc:
            conv.reporter_bidx = secrets.token_bytes(32)
            conv.flow = "quarantined"
            conv.state = type(exc).__name__[:32]
            s.flush()
            alert(s, self._sealer, self._cfg, self._cat, "alert_quarantined", now,
                  subject="conversation", count=1)
            return False
        return True

    def _choice_reply(self, s: Session, conv: Conversation, inp: IntakeInput, now: datetime,
                      key: str) -> bool:
        """The reporter's pick of a new officer after the one they chose stepped back."""
        data = self._load(conv)
        options: list[str] = list(data.get("options", []))
        text = answer_key(inp.text or "")
        if not (text.isdecimal() and 1 <= int(text) <= len(options)):
            return False  # not a pick: an ordinary message (the question stays answered)
        s.execute(delete(Conversation).where(Conversation.id == conv.id))
        case_row = s.scalar(select(Case).where(Case.ref == data.get("case")))
        if case_row is None or case_row.status == "closed" or self._hooks is None:
            return False
        self._hooks.choose_officer(s, case_row, options[int(text) - 1], now, key)
        return True

    def _checkin_reply(self, s: Session, conv: Conversation, inp: IntakeInput,
                       who: ReporterAddress, now: datetime, key: str) -> bool:
        """An answer to the last check-in. True when it was one (or went to its case)."""
        ref = self._load(conv).get("case")
        s.execute(delete(Conversation).where(Conversation.id == conv.id))
        case_row = s.scalar(select(Case).where(Case.ref == ref)) if ref else None
        if case_row is None or case_row.status == "closed" or self._hooks is None:
            return False
        if inp.text and reporter.reporter_command(inp.text) is not None:
            return False  # STATUS, ADD, ...: a command, not something for the case
        answer = parse_answer(inp.text or "") if not inp.attachments else None
        if answer is not None:
            self._hooks.checkin_answer(s, case_row, answer, who.aci, now, key)
            return True
        case = open_case(self._sealer, case_row)
        self._relay_followup(s, case, inp.text or "", inp.attachments, who, now, key)
        return True

    def _case_label(self, case: CaseView) -> str:
        return self._cat.render("reporter_case_label", ref=case.ref)

    def _after_router(self, s: Session, conv: Conversation | None, bidx: bytes,
                      decision: reporter.Decision, cases: list[CaseView], inp: IntakeInput,
                      who: ReporterAddress, now: datetime, key: str) -> None:
        if decision.action in (reporter.Action.NEW_REPORT, reporter.Action.RELAY):
            # notices first (e.g. "Okay, nothing was shared."), then what the message does
            self._reply(s, who, decision.replies, now, f"{key}:notice")
        if decision.action is reporter.Action.NEW_REPORT:
            held = decision.text or ""
            if decision.keep_message:
                text = "\n\n".join(t for t in (held, inp.text or "") if t) or None
                first = IntakeInput(text, inp.attachments)
            else:
                first = IntakeInput(held or None)
            result = intake.start(self._ctx, first, now)
            self._after_intake(s, conv, bidx, result, who, now, key)
            return
        if decision.action is reporter.Action.RELAY and decision.ref is not None:
            case = next(c for c in cases if c.ref == decision.ref)
            body = decision.text if decision.text is not None else (inp.text or "")
            self._relay_followup(s, case, body, inp.attachments, who, now, key)
            self._clear_router(s, conv)
            return
        if decision.action in _CONFIRMED:
            self._confirmed(s, conv, bidx, decision, cases, who, now, key)
            return
        if decision.action is reporter.Action.STOP:
            ids = [c.id for c in cases]
            if ids:
                s.execute(update(Case).where(Case.id.in_(ids)).values(checkin_ok=False))
                audit.append(s, "reporter.checkins_stopped", now, actor_ref="reporter")
        if decision.memory is not None:
            self._save(s, conv, bidx, "reporter", "choosing",
                       {"router": decision.memory.to_json()}, who, now)
        else:
            self._clear_router(s, conv)
        self._reply(s, who, decision.replies, now, key)

    # -- the reporter's commands ----------------------------------------------------------
    def _confirmed(self, s: Session, conv: Conversation | None, bidx: bytes,
                   decision: reporter.Decision, cases: list[CaseView], who: ReporterAddress,
                   now: datetime, key: str) -> None:
        """REVEAL, WITHDRAW or FORGET ME, confirmed: do it, then tell the reporter."""
        if decision.action is reporter.Action.FORGET:
            self._forget(s, bidx, now, key)  # the conversation goes with the link
            self._reply(s, who, decision.replies, now, key)
            return
        case = next(c for c in cases if c.ref == decision.ref)
        if decision.action is reporter.Action.REVEAL:
            self._reveal(s, case, who, now, key)
        else:
            self._withdraw(s, case, "reporter_withdrawn_to_officers", now, f"{key}:withdraw")
            audit.append(s, "case.withdrawn", now, case_ref=case.ref, actor_ref="reporter")
        self._clear_router(s, conv)
        self._reply(s, who, decision.replies, now, key, case_id=case.id)

    def _reveal(self, s: Session, case: CaseView, who: ReporterAddress, now: datetime,
                key: str) -> None:
        """Confirmed twice: the officers in scope learn who reported. Irreversible."""
        s.execute(update(Case).where(Case.id == case.id).values(named=True, updated_at=now))
        text = self._cat.render("reporter_revealed_to_officers", ref=case.ref,
                                who=reporter.shown_as(self._cat, who.profile_name, who.number))
        add_message(s, self._sealer, case, "system", text, now)
        deliver_to_scope(s, self._sealer, self._cfg, case, text, "status", now,
                         key=f"{key}:reveal")
        audit.append(s, "case.revealed", now, case_ref=case.ref, actor_ref="reporter")

    def _withdraw(self, s: Session, case: CaseView, msg_id: str, now: datetime,
                  key: str) -> None:
        """Close a case at its reporter's request: like an officer's close (timers stop, the
        scope is told), in words that say who closed it. The caller tells the reporter."""
        s.execute(update(Case).where(Case.id == case.id)
                  .values(status="closed", closed_at=now, updated_at=now))
        timers.cancel(s, case.id)
        text = self._cat.render(msg_id, ref=case.ref)
        add_message(s, self._sealer, case, "system", text, now)
        deliver_to_scope(s, self._sealer, self._cfg, case, text, "status", now,
                         key=f"{key}:scope")

    def _forget(self, s: Session, bidx: bytes, now: datetime, key: str) -> None:
        """FORGET ME: close every case of this reporter and delete what ties them to it.

        The link dies first (SECURITY.md 2.5), here at once: the reporter links, this
        reporter's conversation (router memory, check-in), and the messages already sent to
        them about those cases. The cases themselves stay for the officers until retention
        ends; the officers are told each one is closed and cannot reach the reporter.
        """
        linked = self._linked(s, bidx)
        for row in linked:
            if row.status == "closed":
                continue
            self._withdraw(s, open_case(self._sealer, row), "reporter_forgotten_to_officers",
                           now, f"{key}:forget:{row.ref}")
            audit.append(s, "case.withdrawn", now, case_ref=row.ref, actor_ref="reporter")
        ids = [row.id for row in linked]
        if ids:
            s.execute(delete(OutboxRow).where(
                OutboxRow.case_id.in_(ids), OutboxRow.recipient_kind == RecipientKind.REPORTER,
                OutboxRow.status.in_(FINISHED_SENDS)))
        s.execute(delete(ReporterLink).where(ReporterLink.reporter_bidx == bidx))
        s.execute(delete(Conversation).where(Conversation.reporter_bidx == bidx))
        audit.append(s, "reporter.forgotten", now, actor_ref="reporter")

    def _clear_router(self, s: Session, conv: Conversation | None) -> None:
        if conv is not None and conv.flow == "reporter":
            s.execute(delete(Conversation).where(Conversation.id == conv.id))

    def _relay_followup(self, s: Session, case: CaseView, body: str,
                        notes: tuple[AttachmentNote, ...], who: ReporterAddress,
                        now: datetime, key: str) -> None:
        extra = (
            "\n" + self._cat.render("officer_attachments", count=len(notes),
                                    kinds=", ".join(sorted({n.content_type for n in notes})))
            if notes else ""
        )
        add_message(s, self._sealer, case, "reporter", body + extra, now)
        text = self._cat.render("officer_followup", ref=case.ref,
                                body=quote_block(body) if body else "") + extra
        deliver_to_scope(s, self._sealer, self._cfg, case, text, "followup", now, key=key)
        self._reply(s, who, [self._cat.render("reporter_followup_sent", ref=case.ref)], now,
                    key, case_id=case.id)
        audit.append(s, "case.reporter_followup", now, case_ref=case.ref, actor_ref="reporter")

    def _after_intake(self, s: Session, conv: Conversation | None, bidx: bytes,
                      result: intake.StepResult, who: ReporterAddress, now: datetime,
                      key: str) -> None:
        if result.outcome is Outcome.SUBMIT:
            try:
                created = create_case(s, self._sealer, self._cfg, self._cat, result.draft, who,
                                      now)
            except NoRecipientError:
                self._save(s, conv, bidx, "intake", intake.IntakeState.CONFIRM.value,
                           {"draft": result.draft.to_json()}, who, now)
                self._reply(s, who, [self._cat.render("intake_no_recipient")], now, key)
                return
            if conv is not None:
                s.execute(delete(Conversation).where(Conversation.id == conv.id))
            self._reply(s, who, result.replies, now, key, case_id=created.case_id)
            if self._hooks is not None:
                self._hooks.after_create(s, created.row, result.draft.who, now)
            return
        if result.outcome in (Outcome.CANCELLED, Outcome.EXPIRED):
            if conv is not None:
                s.execute(delete(Conversation).where(Conversation.id == conv.id))
            self._reply(s, who, result.replies, now, key)
            audit.append(s, f"intake.{result.outcome.value}", now, actor_ref="reporter")
            return
        self._save(s, conv, bidx, "intake", result.state.value,
                   {"draft": result.draft.to_json()}, who, now)
        self._reply(s, who, result.replies, now, key)

    # -- housekeeping ---------------------------------------------------------------------
    def sweep_expired(self, s: Session, now: datetime) -> int:
        """Delete abandoned drafts. Silently: a notice could be read by whoever holds the
        phone now; a reporter who comes back is simply greeted again."""
        cutoff = now - self._ctx.draft_expiry
        stale = list(s.scalars(select(Conversation.id).where(Conversation.updated_at < cutoff)))
        if stale:
            s.execute(delete(Conversation).where(Conversation.id.in_(stale)))
            audit.append(s, "intake.swept", now)
        return len(stale)

    # -- after a restart ------------------------------------------------------------------
    def reask_all(self, s: Session, now: datetime) -> int:
        """Re-ask the open question of every unfinished intake. Returns how many."""
        count = 0
        for conv in s.scalars(select(Conversation).where(Conversation.flow == "intake")):
            data = self._load(conv)
            draft = Draft.from_json(data["draft"])
            result = intake.reask(intake.IntakeState(conv.state), draft, self._ctx)
            who = self._address(conv)
            if result.outcome is Outcome.EXPIRED or (
                draft.updated_at is not None and now - draft.updated_at > self._ctx.draft_expiry
            ):
                expired = intake.step(intake.IntakeState(conv.state), draft, IntakeInput(None),
                                      self._ctx, now)
                self._after_intake(s, conv, conv.reporter_bidx, expired, who, now,
                                   f"reask:{conv.id}:{conv.version}")
                continue
            self._reply(s, who, result.replies, now, f"reask:{conv.id}:{conv.version}")
            count += 1
        return count
