"""Routing a message from a reporter who is not in an intake: add to a case, ask, or start anew.

Pure, like the intake. The only state is a pending question (``RouterMemory``, whose
``PendingChoice`` values are a storage format): "which report?", or one step of a reporter
command (STATUS, ADD, REVEAL, WITHDRAW, FORGET ME). While a "which report?" question is open,
the text of every message waiting for the answer is held in the memory (the caller seals it),
so nothing the reporter wrote is lost.

Order of decisions: no open case means a new report (the intake greets, helps and stops);
then an answer to a pending command step; STOP, HELP/BACK; the reporter commands; NEW; an
answer to a pending "which report?"; a quote of (or a message starting with) an open case's
reference; the only open case; otherwise ask which, numbered.

A reporter command counts only when it is the whole message (any case, punctuation and emoji
around it tolerated), so "I want to withdraw from the committee because ..." is a message for
the officers. At a confirmation step, anything but the asked-for word cancels; a message that
is more than a "no" is then handled as if nothing had been pending, so nothing is lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from handlers.flows.catalog import Catalog
from handlers.flows.intake import Command, command
from handlers.flows.text import answer_key, clean_name, clean_text

_REF = re.compile(r"[A-Za-z0-9]{3}-[A-Za-z0-9]{2}")
_REF_AT_START = re.compile(r"^\s*([A-Za-z0-9]{3}-[A-Za-z0-9]{2})(?![A-Za-z0-9-])")
_NEW = frozenset({
    "new", "report", "new report", "a new report", "another report", "another one",
    "start a new report", "start new report", "new one",
})
_YES = frozenset({"yes", "y", "yeah", "yep", "yup", "yes please"})
# Short answers that are never passed on as a message, even out of turn.
_ANSWERS = _YES | {
    "reveal", "forget", "ok", "okay", "sure", "fine", "alright", "thanks", "thank you",
}
_NO = frozenset({
    "no", "n", "nope", "nah", "no thanks", "no thank you", "not now", "never mind",
    "nevermind", "forget it", "don't", "dont", "keep it", "nothing", "later", "maybe later",
    "not yet", "wait", "hold on",
})


class PendingChoice(StrEnum):
    """What the router waits for. Values are a storage format: never rename one."""

    WHICH_CASE = "which_case"  # held messages wait for a case (`held`, `offered`)
    ADD_WHICH = "add_which"  # ADD: which case (`offered`)
    ADD_TARGET = "add_target"  # ADD: the next message goes to `ref`
    REVEAL_WHICH = "reveal_which"
    REVEAL_CONFIRM = "reveal_confirm"  # REVEAL: YES?
    REVEAL_FINAL = "reveal_final"  # REVEAL: the word REVEAL?
    WITHDRAW_WHICH = "withdraw_which"
    WITHDRAW_CONFIRM = "withdraw_confirm"  # WITHDRAW: YES?
    FORGET_CONFIRM = "forget_confirm"  # FORGET ME: the word FORGET?


P = PendingChoice


class Action(StrEnum):
    RELAY = "relay"  # pass `text` (or, if None, this message) to the officers of case `ref`;
    # `replies` (if any) go to the reporter first, the caller then confirms the relay
    ASK = "ask"  # asked which case; the message is held in `memory`
    NEW_REPORT = "new_report"  # start an intake: with this message if `keep_message`,
    # else with `text` (held messages) if not None, else with nothing
    HELP = "help"
    STOP = "stop"  # the reporter wants no more check-ins
    DISCARD = "discard"  # STOP while a choice was pending: the held text is dropped
    IGNORE = "ignore"  # nothing to do (an empty message, e.g. a disappearing-timer change)
    REPLY = "reply"  # only answer (`replies`), keeping `memory` if set
    REVEAL = "reveal"  # confirmed twice: case `ref` becomes named, its officers are told
    WITHDRAW = "withdraw"  # confirmed: the reporter closes case `ref`
    FORGET = "forget"  # confirmed: close every case and delete the reporter's links


class ReporterCommand(StrEnum):
    STATUS = "status"
    ADD = "add"
    REVEAL = "reveal"
    WITHDRAW = "withdraw"
    FORGET = "forget"


RC = ReporterCommand
_COMMAND_WORDS: Mapping[str, ReporterCommand] = MappingProxyType({
    "status": RC.STATUS, "my status": RC.STATUS, "report status": RC.STATUS,
    "case status": RC.STATUS, "my reports": RC.STATUS,
    "add": RC.ADD, "add more": RC.ADD, "add something": RC.ADD, "add to my report": RC.ADD,
    "reveal": RC.REVEAL, "reveal me": RC.REVEAL, "reveal my name": RC.REVEAL,
    "reveal my identity": RC.REVEAL, "reveal who i am": RC.REVEAL,
    "withdraw": RC.WITHDRAW, "withdraw my report": RC.WITHDRAW, "withdraw report": RC.WITHDRAW,
    "forget me": RC.FORGET,
})
_TARGETED = frozenset({RC.ADD, RC.REVEAL, RC.WITHDRAW})  # may name a case: "withdraw K7F-3Q"


class CaseState(StrEnum):
    """How a reporter's case is described to them: neutral words, no content, no names."""

    WAITING = "waiting"  # nobody has picked it up yet
    TAKEN = "taken"  # someone from the team has it
    RESOLVED = "resolved"
    CLOSED = "closed"


_STATE_TEXT: Mapping[CaseState, str] = MappingProxyType({
    CaseState.WAITING: "reporter_state_waiting", CaseState.TAKEN: "reporter_state_taken",
    CaseState.RESOLVED: "reporter_state_resolved", CaseState.CLOSED: "reporter_state_closed",
})


@dataclass(frozen=True)
class OpenCase:
    ref: str
    label: str  # what the reporter sees in the list, e.g. "Your report K7F-3Q"; no report text
    state: CaseState = CaseState.WAITING
    named: bool = False  # the officers already see who reported it


@dataclass(frozen=True)
class RouterInput:
    text: str | None
    has_attachments: bool = False
    quoted_ref: str | None = None  # the case of a bot message it quotes, if the caller found one
    profile_name: str | None = None  # the sender's, for REVEAL: what officers would see
    number: str | None = None  # None when the sender hides it


@dataclass(frozen=True)
class RouterMemory:
    """A pending question: persist it (sealed) until the next message."""

    held: tuple[str, ...] = ()  # texts waiting for the answer, oldest first
    offered: tuple[str, ...] = ()  # case refs, in the order they were numbered
    pending: PendingChoice = PendingChoice.WHICH_CASE
    ref: str | None = None  # the case a command step is about

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"pending": self.pending.value, "held": list(self.held),
                                "offered": list(self.offered)}
        if self.ref is not None:
            data["ref"] = self.ref
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouterMemory:
        held, offered = data.get("held", []), data.get("offered", [])
        if not all(isinstance(v, list) and all(isinstance(i, str) for i in v)
                   for v in (held, offered)):
            raise TypeError("router memory: 'held' and 'offered' should be lists of strings")
        ref = data.get("ref")
        if ref is not None and not isinstance(ref, str):
            raise TypeError("router memory: 'ref' should be a string")
        pending = PendingChoice(data.get("pending", PendingChoice.WHICH_CASE.value))
        return cls(tuple(held), tuple(offered), pending, ref)


@dataclass(frozen=True)
class Decision:
    action: Action
    ref: str | None = None
    text: str | None = None  # held text to relay or start with; None: this message's own
    keep_message: bool = False  # NEW_REPORT: this message is the start of the new report
    memory: RouterMemory | None = None  # persist when set; None clears any pending question
    replies: tuple[str, ...] = ()  # to send now (RELAY: only notices; the caller confirms)


def reporter_command(text: str) -> tuple[ReporterCommand, str | None] | None:
    """STATUS, ADD, REVEAL, WITHDRAW or FORGET ME when that is the whole message, with the
    case reference ADD/REVEAL/WITHDRAW may name ("withdraw K7F-3Q"), upper-cased."""
    key = answer_key(text)
    found = _COMMAND_WORDS.get(key)
    if found is not None:
        return found, None
    head, _, tail = key.rpartition(" ")
    found = _COMMAND_WORDS.get(head)
    if found in _TARGETED and _REF.fullmatch(tail):
        return found, tail.upper()
    return None


def shown_as(catalog: Catalog, profile_name: str | None, number: str | None) -> str:
    """Who the officers are told the reporter is, as on a named report."""
    name = clean_name(profile_name or "") or catalog.render("officer_no_profile_name")
    return catalog.render("officer_reporter_named", name=name,
                          number=number or catalog.render("officer_number_hidden"))


def decide(
    inp: RouterInput,
    cases: Sequence[OpenCase],
    memory: RouterMemory | None,
    catalog: Catalog,
    *,
    finished: Sequence[OpenCase] = (),
) -> Decision:
    """What one message from a reporter with no intake in progress is for.

    ``finished``: the reporter's cases that are no longer open, for STATUS only.
    """
    text = clean_text(inp.text or "", len(inp.text or "")).strip()
    if not text and not inp.has_attachments:
        return Decision(Action.IGNORE, memory=memory)
    if not cases:  # the intake greets, helps and stops from here
        return Decision(Action.NEW_REPORT, text=_held(memory), keep_message=True)
    turn = _Turn(inp, text, tuple(cases), tuple(finished), catalog)
    if memory is not None and memory.pending is not P.WHICH_CASE:
        return turn.pending(memory)
    return turn.route(memory)


@dataclass(frozen=True)
class _Turn:
    """One message, with everything needed to answer it."""

    inp: RouterInput
    text: str
    cases: tuple[OpenCase, ...]
    finished: tuple[OpenCase, ...]
    cat: Catalog

    def _open(self, ref: str | None) -> OpenCase | None:
        return next((c for c in self.cases if c.ref == ref), None)

    # -- no command step pending (a "which report?" question may be) ----------------------
    def route(self, memory: RouterMemory | None) -> Decision:
        said = command(self.text)
        if said is not None:
            return _command(said, self.cases, memory, self.cat)
        asked = reporter_command(self.text)
        if asked is not None:
            return self._reporter_command(*asked, memory)
        if answer_key(self.text) in _NEW:
            return Decision(Action.NEW_REPORT, text=_held(memory))
        return _to_case(self.inp, self.text, self.cases, memory, self.cat)

    def _reporter_command(self, said: ReporterCommand, ref: str | None,
                          memory: RouterMemory | None) -> Decision:
        if said is RC.STATUS:
            if memory is not None:  # keep the "which report?" question open
                return Decision(Action.REPLY, memory=memory, replies=(
                    _join(self._status(), _which(self.cases, self.cat)),))
            return Decision(Action.REPLY, replies=(self._status(),))
        started = self._start(said, self._open(ref))
        if memory is not None and memory.held:  # the held messages go nowhere now: say so
            return replace(started, replies=(self.cat.render("reporter_discarded"),
                                             *started.replies))
        return started

    def _status(self) -> str:
        lines = "\n".join(
            self.cat.render("reporter_status_line", ref=c.ref,
                            state=self.cat.render(_STATE_TEXT[c.state]))
            for c in (*self.cases, *self.finished)
        )
        return self.cat.render("reporter_status", lines=lines)

    def _start(self, said: ReporterCommand, target: OpenCase | None) -> Decision:
        """The first step of ADD, REVEAL, WITHDRAW or FORGET ME."""
        if said is RC.FORGET:
            refs = ", ".join(c.ref for c in self.cases)
            return self._ask(P.FORGET_CONFIRM, None,
                             self.cat.render("reporter_forget_confirm", refs=refs))
        candidates = self.cases
        if said is RC.REVEAL:
            candidates = tuple(c for c in self.cases if not c.named)
            if (target is not None and target.named) or not candidates:
                named = (target,) if target is not None else self.cases
                return Decision(Action.REPLY, replies=(self.cat.render(
                    "reporter_already_named", refs=", ".join(c.ref for c in named)),))
        if target is None and len(candidates) == 1:
            target = candidates[0]
        if target is None:
            which = {RC.ADD: (P.ADD_WHICH, "reporter_add_which"),
                     RC.REVEAL: (P.REVEAL_WHICH, "reporter_reveal_which"),
                     RC.WITHDRAW: (P.WITHDRAW_WHICH, "reporter_withdraw_which")}[said]
            return self._pick_case(which[0], self.cat.render(which[1]), candidates)
        return self._first_step(said, target)

    def _first_step(self, said: ReporterCommand, case: OpenCase) -> Decision:
        if said is RC.ADD:
            return self._ask(P.ADD_TARGET, case.ref,
                             self.cat.render("reporter_add_ask", ref=case.ref))
        if said is RC.REVEAL:
            who = shown_as(self.cat, self.inp.profile_name, self.inp.number)
            return self._ask(P.REVEAL_CONFIRM, case.ref,
                             self.cat.render("reporter_reveal_explain", ref=case.ref, who=who))
        return self._ask(P.WITHDRAW_CONFIRM, case.ref,
                         self.cat.render("reporter_withdraw_confirm", ref=case.ref))

    @staticmethod
    def _ask(pending: PendingChoice, ref: str | None, text: str) -> Decision:
        return Decision(Action.REPLY, memory=RouterMemory(pending=pending, ref=ref),
                        replies=(text,))

    def _pick_case(self, pending: PendingChoice, question: str,
                   among: Sequence[OpenCase], *, sorry: bool = False) -> Decision:
        options = "\n".join(
            self.cat.render("case_option", n=n, label=c.label) for n, c in enumerate(among, 1)
        )
        text = self.cat.render("reporter_pick_case", question=question, options=options)
        if sorry:
            text = _join(self.cat.render("not_understood"), text)
        return Decision(Action.REPLY, replies=(text,), memory=RouterMemory(
            offered=tuple(c.ref for c in among), pending=pending))

    # -- a command step is pending --------------------------------------------------------
    def pending(self, memory: RouterMemory) -> Decision:
        if memory.pending in (P.ADD_WHICH, P.REVEAL_WHICH, P.WITHDRAW_WHICH):
            return self._which_answer(memory)
        if memory.pending is P.ADD_TARGET:
            return self._add_answer(memory)
        return self._confirm_answer(memory)

    def _which_answer(self, memory: RouterMemory) -> Decision:
        said = {P.ADD_WHICH: RC.ADD, P.REVEAL_WHICH: RC.REVEAL,
                P.WITHDRAW_WHICH: RC.WITHDRAW}[memory.pending]
        among = tuple(c for c in self.cases if c.ref in memory.offered)
        picked = _picked(self.text, memory.offered, {c.ref for c in among})
        if picked is not None:
            return self._start(said, self._open(picked))
        if _is_choice(self.text) and among:  # a number or ref not (or no longer) listed
            question = {RC.ADD: "reporter_add_which", RC.REVEAL: "reporter_reveal_which",
                        RC.WITHDRAW: "reporter_withdraw_which"}[said]
            return self._pick_case(memory.pending, self.cat.render(question), among,
                                   sorry=True)
        return self._cancel(said)

    def _add_answer(self, memory: RouterMemory) -> Decision:
        target = self._open(memory.ref)
        if command(self.text) is Command.STOP or answer_key(self.text) in _NO:
            return Decision(Action.REPLY, replies=(self.cat.render("reporter_add_cancelled"),))
        if (target is None or command(self.text) is not None
                or reporter_command(self.text) is not None
                or answer_key(self.text) in _NEW):
            return self.route(None)
        return Decision(Action.RELAY, target.ref)

    def _confirm_answer(self, memory: RouterMemory) -> Decision:
        said = {P.REVEAL_CONFIRM: RC.REVEAL, P.REVEAL_FINAL: RC.REVEAL,
                P.WITHDRAW_CONFIRM: RC.WITHDRAW, P.FORGET_CONFIRM: RC.FORGET}[memory.pending]
        target = self._open(memory.ref)
        key = answer_key(self.text) if not self.inp.has_attachments else ""
        if memory.pending is P.FORGET_CONFIRM and key == "forget":
            return Decision(Action.FORGET, replies=(self.cat.render("reporter_forgotten"),))
        if target is not None and memory.pending is P.REVEAL_CONFIRM and key in _YES:
            return self._ask(P.REVEAL_FINAL, target.ref, self.cat.render("reporter_reveal_final"))
        if target is not None and memory.pending is P.REVEAL_FINAL and key == "reveal":
            return Decision(Action.REVEAL, target.ref, replies=(
                self.cat.render("reporter_revealed", ref=target.ref),))
        if target is not None and memory.pending is P.WITHDRAW_CONFIRM and key in _YES:
            return Decision(Action.WITHDRAW, target.ref, replies=(
                self.cat.render("reporter_withdrawn", ref=target.ref),))
        return self._cancel(said)

    def _cancel(self, said: ReporterCommand) -> Decision:
        """Anything but the asked-for answer: say that nothing happened, and handle the
        message as if nothing had been pending, unless it was only a "no" (or the same
        command again)."""
        notice = {
            RC.ADD: "",
            RC.REVEAL: self.cat.render("reporter_reveal_cancelled"),
            RC.WITHDRAW: self.cat.render("reporter_withdraw_cancelled"),
            RC.FORGET: self.cat.render("reporter_forget_cancelled"),
        }[said]
        asked = reporter_command(self.text)
        key = answer_key(self.text)
        only_no = (command(self.text) is Command.STOP or key in _NO or key in _ANSWERS
                   or (asked is not None and asked[0] is said))
        if only_no:
            return Decision(Action.REPLY, replies=(
                notice or self.cat.render("reporter_add_cancelled"),))
        then = self.route(None)
        return replace(then, replies=tuple(r for r in (notice, *then.replies) if r))


def _command(
    said: Command, cases: Sequence[OpenCase], memory: RouterMemory | None, catalog: Catalog
) -> Decision:
    if said is Command.STOP:
        if memory is not None:
            return Decision(Action.DISCARD, replies=(catalog.render("reporter_discarded"),))
        return Decision(Action.STOP, replies=(catalog.render("reporter_stopped"),))
    # HELP, or BACK, which has nothing to go back to here
    which = _which(cases, catalog) if memory is not None else ""
    return Decision(Action.HELP, memory=memory,
                    replies=(_join(catalog.render("reporter_help"), which),))


def _to_case(
    inp: RouterInput,
    text: str,
    cases: Sequence[OpenCase],
    memory: RouterMemory | None,
    catalog: Catalog,
) -> Decision:
    open_refs = {c.ref for c in cases}
    if memory is not None:
        picked = _picked(text, memory.offered, open_refs)
        if picked is not None:
            return Decision(Action.RELAY, picked, text=_held(memory))
    explicit = inp.quoted_ref if inp.quoted_ref in open_refs else _ref_at_start(text)
    if explicit is not None and explicit in open_refs:
        return Decision(Action.RELAY, explicit, text=_held(memory, text))
    if len(cases) == 1 and memory is None:
        return Decision(Action.RELAY, cases[0].ref)
    held = memory.held if memory is not None else ()
    said: list[str] = []
    if memory is not None and _is_choice(text):  # a number or ref not (or no longer) listed
        said.append(catalog.render("not_understood"))
    elif text:
        held = (*held, text)
        if memory is not None:
            said.append(catalog.render("reporter_held"))
    if inp.has_attachments:
        said.append(catalog.render("reporter_resend_attachments"))
    asking = RouterMemory(held, tuple(c.ref for c in cases))
    return Decision(Action.ASK, memory=asking, replies=(_join(*said, _which(cases, catalog)),))


def _held(memory: RouterMemory | None, *more: str) -> str | None:
    parts = (*(memory.held if memory is not None else ()), *more)
    return "\n\n".join(parts) if parts else None


def _picked(text: str, offered: Sequence[str], open_refs: set[str]) -> str | None:
    """The case a "which report?" answer names: by its number or its reference."""
    key = answer_key(text)
    ref: str | None = None
    if key.isdecimal() and len(key) <= 3 and 1 <= int(key) <= len(offered):
        ref = offered[int(key) - 1]
    elif _REF.fullmatch(key):
        ref = key.upper()
    return ref if ref in open_refs else None


def _is_choice(text: str) -> bool:
    key = answer_key(text)
    return (key.isdecimal() and len(key) <= 3) or _REF.fullmatch(key) is not None


def _ref_at_start(text: str) -> str | None:
    found = _REF_AT_START.match(text)
    return found.group(1).upper() if found else None


def _which(cases: Sequence[OpenCase], catalog: Catalog) -> str:
    options = "\n".join(
        catalog.render("case_option", n=n, label=c.label) for n, c in enumerate(cases, 1)
    )
    return catalog.render("reporter_which_case", options=options)


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)
