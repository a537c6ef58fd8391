"""Routing a message from a reporter who is not in an intake: add to a case, ask, or start anew.

Pure, like the intake. The only state is a pending "which report?" question
(``RouterMemory``, whose ``PendingChoice`` values are a storage format). While it is open, the
text of every message waiting for the answer is held in the memory (the caller seals it), so
nothing the reporter wrote is lost.

Order of decisions: no open case means a new report (the intake greets, helps and stops);
then STOP, HELP/BACK, NEW; an answer to the pending question; a quote of (or a message
starting with) an open case's reference; the only open case; otherwise ask which, numbered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from handlers.flows.catalog import Catalog
from handlers.flows.intake import Command, command
from handlers.flows.text import answer_key, clean_text

_REF = re.compile(r"[A-Za-z0-9]{3}-[A-Za-z0-9]{2}")
_REF_AT_START = re.compile(r"^\s*([A-Za-z0-9]{3}-[A-Za-z0-9]{2})(?![A-Za-z0-9-])")
_NEW = frozenset({
    "new", "report", "new report", "a new report", "another report", "another one",
    "start a new report", "start new report", "new one",
})


class PendingChoice(StrEnum):
    """What the router waits for. Values are a storage format: never rename one."""

    WHICH_CASE = "which_case"


class Action(StrEnum):
    RELAY = "relay"  # pass `text` (or, if None, this message) to the officers of case `ref`
    ASK = "ask"  # asked which case; the message is held in `memory`
    NEW_REPORT = "new_report"  # start an intake: with this message if `keep_message`,
    # else with `text` (held messages) if not None, else with nothing
    HELP = "help"
    STOP = "stop"  # the reporter wants no more check-ins
    DISCARD = "discard"  # STOP while a choice was pending: the held text is dropped
    IGNORE = "ignore"  # nothing to do (an empty message, e.g. a disappearing-timer change)


@dataclass(frozen=True)
class OpenCase:
    ref: str
    label: str  # what the reporter sees in the list, e.g. "Your report K7F-3Q"; no report text


@dataclass(frozen=True)
class RouterInput:
    text: str | None
    has_attachments: bool = False
    quoted_ref: str | None = None  # the case of a bot message it quotes, if the caller found one


@dataclass(frozen=True)
class RouterMemory:
    """An open "which report?" question: persist it (sealed) until the next message."""

    held: tuple[str, ...] = ()  # texts waiting for the answer, oldest first
    offered: tuple[str, ...] = ()  # case refs, in the order they were numbered
    pending: PendingChoice = PendingChoice.WHICH_CASE

    def to_json(self) -> dict[str, Any]:
        return {"pending": self.pending.value, "held": list(self.held),
                "offered": list(self.offered)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouterMemory:
        held, offered = data.get("held", []), data.get("offered", [])
        if not all(isinstance(v, list) and all(isinstance(i, str) for i in v)
                   for v in (held, offered)):
            raise TypeError("router memory: 'held' and 'offered' should be lists of strings")
        pending = PendingChoice(data.get("pending", PendingChoice.WHICH_CASE.value))
        return cls(tuple(held), tuple(offered), pending)


@dataclass(frozen=True)
class Decision:
    action: Action
    ref: str | None = None
    text: str | None = None  # held text to relay or start with; None: this message's own
    keep_message: bool = False  # NEW_REPORT: this message is the start of the new report
    memory: RouterMemory | None = None  # persist when set; None clears any pending question
    replies: tuple[str, ...] = ()  # to send now (RELAY: none; the caller confirms the relay)


def decide(
    inp: RouterInput, cases: Sequence[OpenCase], memory: RouterMemory | None, catalog: Catalog
) -> Decision:
    """What one message from a reporter with no intake in progress is for."""
    text = clean_text(inp.text or "", len(inp.text or "")).strip()
    if not text and not inp.has_attachments:
        return Decision(Action.IGNORE, memory=memory)
    if not cases:  # the intake greets, helps and stops from here
        return Decision(Action.NEW_REPORT, text=_held(memory), keep_message=True)
    said = command(text)
    if said is not None:
        return _command(said, cases, memory, catalog)
    if answer_key(text) in _NEW:
        return Decision(Action.NEW_REPORT, text=_held(memory))
    return _to_case(inp, text, cases, memory, catalog)


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
