"""What officers can do from Signal: reply to a case (quote or /reply) and ask for help.

An officer message maps to a case only through a quote of a message the bot itself sent
to that same group or officer (the reply map), or an explicit `/reply REF text`.
Anyone not on the allow-list gets a short refusal for a command and is otherwise ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.events import ReactionEvent, TextMessage
from handlers.flows.catalog import Catalog
from handlers.flows.text import clean_text, quote_block
from relay import audit
from relay.cases import CaseView, add_message, case_by_ref, open_case, reporter_of
from relay.config import Officer, OrgConfig, Role, Scope
from relay.lifecycle import CaseLifecycle
from relay.outbox import Message, RecipientKind, enqueue
from relay.refs import parse_ref
from relay.scopes import Target, members, targets
from relay.store.models import Case, SentMap
from relay.store.sealing import Sealer

MAX_REPLY = 4000


@dataclass(frozen=True)
class Where:
    """Where an officer wrote: a scope's group, the coordinators' group, or a DM."""

    scope: Scope | None  # the team scope whose group it is, None for a DM
    dm: bool
    coordination: bool = False

    @property
    def map_key(self) -> str | None:
        return self.scope.group_id if self.scope else None


@dataclass(frozen=True)
class Call:
    """One command from an allow-listed officer, with where it came from."""

    s: Session
    officer: Officer
    where: Where
    args: str
    now: datetime
    key: str


Handler = Callable[[Call], None]


class OfficerDesk:
    def __init__(self, cfg: OrgConfig, sealer: Sealer, catalog: Catalog,
                 lifecycle: CaseLifecycle | None = None) -> None:
        self._cfg = cfg
        self._sealer = sealer
        self._cat = catalog
        self._lifecycle = lifecycle
        self.commands: dict[str, Handler] = {
            "/reply": self._cmd_reply,
            "/help": self._cmd_help,
            "/start": self._cmd_help,
            **{name: self._case_cmd(name) for name in ("/claim", "/unclaim", "/close", "/ack")},
        }

    def register(self, name: str, handler: Handler) -> None:
        """Add a command (e.g. the moderation ledger's). Names are lowercase, start with /."""
        self.commands[name] = handler

    def answer(self, call: Call, text: str) -> None:
        """Answer an officer where they wrote (the group, or their DM)."""
        self._answer(call.s, call.officer, call.where, text, call.now, f"{call.key}:ans")

    # -- answering the officer ---------------------------------------------------------
    def _answer(self, s: Session, officer: Officer | None, where: Where, text: str,
                now: datetime, key: str) -> None:
        if where.coordination:
            msg = Message(RecipientKind.COORDINATION, text, "officer_ack")
        elif where.scope is not None:
            msg = Message(RecipientKind.GROUP, text, "officer_ack", ref=where.scope.id)
        elif officer is not None:
            msg = Message(RecipientKind.OFFICER, text, "officer_ack", ref=officer.id)
        else:
            return
        enqueue(s, self._sealer, msg, key=key, now=now)

    def is_bot_quote(self, ev: TextMessage, bot_aci: str | None, bot_number: str) -> bool:
        quote = ev.quote
        if quote is None:
            return False
        if bot_aci is not None:
            return quote.author_uuid == bot_aci
        return quote.author_number == bot_number

    def wants(self, ev: TextMessage, bot_aci: str | None, bot_number: str) -> bool:
        """Whether an officer's DM is officer business (else it is their own report)."""
        text = (ev.text or "").lstrip()
        return text.startswith("/") or self.is_bot_quote(ev, bot_aci, bot_number)

    # -- entry points -------------------------------------------------------------------
    def handle(self, s: Session, ev: TextMessage, officer: Officer, where: Where,
               now: datetime, *, bot_aci: str | None, bot_number: str, key: str) -> None:
        text = clean_text(ev.text or "", MAX_REPLY).strip()
        if text.startswith("/"):
            self._command(s, text, officer, where, now, key)
            return
        if self.is_bot_quote(ev, bot_aci, bot_number) and ev.quote is not None:
            dest = where.map_key if where.scope is not None else officer.id
            case_id = s.scalar(select(SentMap.case_id).where(
                SentMap.destination == dest, SentMap.signal_timestamp == ev.quote.id))
            if case_id is None:
                self._answer(s, officer, where, self._cat.render("officer_which_case"), now,
                             key)
                return
            row = s.get(Case, case_id)
            if row is None:
                self._answer(s, officer, where, self._cat.render("officer_which_case"), now,
                             key)
                return
            self._reply(s, open_case(self._sealer, row), officer, where, text, now, key)
        # anything else in an officer group is the officers' own conversation: ignored

    def refuse_stranger(self, s: Session, ev: TextMessage, where: Where, now: datetime,
                        key: str) -> None:
        if (ev.text or "").lstrip().startswith("/") and not where.dm:
            self._answer(s, None, where, self._cat.render("officer_not_registered"), now, key)
            audit.append(s, "officer.refused", now, actor_ref="unknown")

    # -- commands -----------------------------------------------------------------------
    def _command(self, s: Session, text: str, officer: Officer, where: Where, now: datetime,
                 key: str) -> None:
        word, _, rest = text.partition(" ")
        handler = self.commands.get(word.lower())
        if handler is None:
            self._answer(s, officer, where, self._cat.render("officer_unknown_command"), now,
                         key)
            return
        handler(Call(s, officer, where, rest.strip(), now, key))

    def _cmd_help(self, call: Call) -> None:
        self.answer(call, self._cat.render("officer_help"))

    def _cmd_reply(self, call: Call) -> None:
        ref_text, _, body = call.args.partition(" ")
        ref = parse_ref(ref_text)
        if ref is None or not body.strip():
            self.answer(call, self._cat.render("officer_usage_reply"))
            return
        case = case_by_ref(call.s, self._sealer, ref)
        if case is None or not self.may_act(case, call.officer, call.where):
            self.answer(call, self._cat.render("officer_unknown_case", ref=ref))
            return
        self._reply(call.s, case, call.officer, call.where, body.strip(), call.now, call.key)

    def _case_cmd(self, name: str) -> Handler:
        def run(call: Call) -> None:
            self._case_command(call.s, name, call.args, call.officer, call.where, call.now,
                               call.key)

        return run

    def case_for(self, call: Call, ref_text: str) -> tuple[Case, CaseView] | None:
        """The case an officer may act on, or None after telling them why not."""
        ref = parse_ref(ref_text)
        row = call.s.scalar(select(Case).where(Case.ref == ref)) if ref else None
        case = open_case(self._sealer, row) if row is not None else None
        if row is None or case is None or not self.may_act(case, call.officer, call.where):
            self.answer(call, self._cat.render("officer_unknown_case", ref=ref or ref_text[:8]))
            return None
        return row, case

    def _case_command(self, s: Session, word: str, rest: str, officer: Officer, where: Where,
                      now: datetime, key: str) -> None:
        ref_text, _, extra = rest.partition(" ")
        ref = parse_ref(ref_text)
        if ref is None or self._lifecycle is None:
            self._answer(s, officer, where,
                         self._cat.render("officer_usage_ref", command=word), now, key)
            return
        row = s.scalar(select(Case).where(Case.ref == ref))
        if word == "/ack":
            if Role.COORDINATOR not in officer.roles:
                self._answer(s, officer, where, self._cat.render("officer_not_coordinator"),
                             now, key)
            elif row is None:
                self._answer(s, officer, where,
                             self._cat.render("officer_unknown_case", ref=ref), now, key)
            else:
                self._lifecycle.acknowledge(s, row, officer, now)
                self._answer(s, officer, where, self._cat.render("officer_acked", ref=ref),
                             now, key)
            return
        case = open_case(self._sealer, row) if row is not None else None
        if row is None or case is None or not self.may_act(case, officer, where):
            self._answer(s, officer, where, self._cat.render("officer_unknown_case", ref=ref),
                         now, key)
            return
        if word == "/claim":
            self.claim(s, row, officer, where, now, key,
                       show_name=extra.strip().lower() == "show")
        elif word == "/unclaim":
            self._lifecycle.unclaim(s, row, officer, now, key)
        else:
            self._lifecycle.close(s, row, officer, now, key)

    def claim(self, s: Session, row: Case, officer: Officer, where: Where, now: datetime,
              key: str, *, show_name: bool = False) -> None:
        if self._lifecycle is None:
            return
        if row.claimed_by is not None and row.claimed_by != officer.id:
            holder = next((o.display_name for o in self._cfg.officers
                           if o.id == row.claimed_by), row.claimed_by)
            self._answer(s, officer, where, self._cat.render(
                "officer_already_claimed", ref=row.ref, name=holder), now, key)
            return
        if row.claimed_by != officer.id:
            self._lifecycle.claim(s, row, officer, now, key, show_name=show_name)

    def react(self, s: Session, ev: ReactionEvent, officer: Officer, where: Where,
              now: datetime, *, bot_aci: str | None, key: str) -> None:
        """A reaction on the bot's case message claims the case (removing it does nothing)."""
        if ev.is_remove or (bot_aci is not None and ev.target_author_uuid != bot_aci):
            return
        dest = where.map_key if where.scope is not None else officer.id
        case_id = s.scalar(select(SentMap.case_id).where(
            SentMap.destination == dest, SentMap.signal_timestamp == ev.target_timestamp))
        row = s.get(Case, case_id) if case_id else None
        if row is None or row.status == "closed":
            return
        if self.may_act(open_case(self._sealer, row), officer, where):
            self.claim(s, row, officer, where, now, key)

    def may_act(self, case: CaseView, officer: Officer, where: Where) -> bool:
        if officer.id not in members(self._cfg, case.routing):
            return False
        if where.scope is not None:  # in a group: only that case's own team group
            return Target("group", where.scope.id) in targets(self._cfg, case.routing)
        return True

    def _reply(self, s: Session, case: CaseView, officer: Officer, where: Where, body: str,
               now: datetime, key: str) -> None:
        if case.status == "closed" or not self.may_act(case, officer, where):
            self._answer(s, officer, where,
                         self._cat.render("officer_unknown_case", ref=case.ref), now, key)
            return
        reporter = reporter_of(s, self._sealer, case.id)
        if reporter is None:
            self._answer(s, officer, where,
                         self._cat.render("officer_reporter_gone", ref=case.ref), now, key)
            return
        add_message(s, self._sealer, case, "officer", body, now, author=officer.id)
        team = self._cfg.organisation.short_name or self._cfg.organisation.name
        enqueue(s, self._sealer, Message(
            RecipientKind.REPORTER,
            self._cat.render("reporter_reply_from_team", team=team, ref=case.ref,
                             body=quote_block(body)),
            "reply", address=reporter.aci, case_id=case.id,
        ), key=f"{key}:reporter", now=now)
        # in a DM scope the other officers on the case do not see this reply otherwise
        for target in targets(self._cfg, case.routing):
            if target.kind == "officer" and target.ref != officer.id:
                enqueue(s, self._sealer, Message(
                    RecipientKind.OFFICER,
                    self._cat.render("officer_colleague_replied", name=officer.display_name,
                                     ref=case.ref, body=quote_block(body)),
                    "reply_copy", ref=target.ref, case_id=case.id, map_replies=True,
                ), key=f"{key}:copy:{target.ref}", now=now)
        self._answer(s, officer, where, self._cat.render("officer_reply_sent", ref=case.ref),
                     now, f"{key}:ack")
        audit.append(s, "case.officer_reply", now, case_ref=case.ref, actor_ref=officer.id)
