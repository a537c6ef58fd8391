"""Routing a message from a reporter who is not in an intake: add to a case, ask, or start anew.

Pure, like the intake. The only state is a pending "which report?" question
(``ReporterState``): its ``PendingChoice`` values are a storage format. While that question
is open, the messages waiting for the answer are *held* by key (the caller's inbox keys),
never by text, so nothing the reporter wrote is lost and no plaintext sits in the state.

Order of decisions: STOP, HELP/BACK, NEW; no open case means a new report; an answer to the
pending question; a quote of (or a message starting with) an open case's reference; the only
open case; otherwise ask which case, numbered.
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

_REF_AT_START = re.compile(r"^\s*([A-Za-z0-9]{3}-[A-Za-z0-9]{2})(?![A-Za-z0-9-])")
_NEW = frozenset({
    "new", "report", "new report", "a new report", "another report", "another one",
    "start a new report", "start new report", "new one",
})


class PendingChoice(StrEnum):
    """What the router is waiting for. Values are a storage format: never rename one."""

    NONE = "none"
    WHICH_CASE = "which_case"


class Action(StrEnum):
    RELAY = "relay"  # pass `messages` to the officers of case `ref`
    ASK = "ask"  # asked which case; the message is held
    NEW_REPORT = "new_report"  # start an intake; `messages` (if any) are its first content
    HELP = "help"
    STOP = "stop"  # the reporter wants no more check-ins
    DISCARD = "discard"  # STOP while a choice was pending: `messages` are not passed on
    IGNORE = "ignore"  # nothing to do (e.g. an empty disappearing-timer change)


@dataclass(frozen=True)
class OpenCase:
    ref: str
    label: str  # neutral, e.g. "sent 3 May"; never report text


@dataclass(frozen=True)
class ReporterState:
    pending: PendingChoice = PendingChoice.NONE
    held: tuple[str, ...] = ()  # inbox keys of messages waiting for the answer
    offered: tuple[str, ...] = ()  # case refs, in the order they were numbered

    def to_json(self) -> dict[str, Any]:
        return {"pending": self.pending.value, "held": list(self.held),
                "offered": list(self.offered)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReporterState:
        held, offered = data.get("held", []), data.get("offered", [])
        if not all(isinstance(v, list) and all(isinstance(i, str) for i in v)
                   for v in (held, offered)):
            raise TypeError("reporter state: 'held' and 'offered' should be lists of strings")
        return cls(PendingChoice(data.get("pending", PendingChoice.NONE)), tuple(held),
                   tuple(offered))


@dataclass(frozen=True)
class Inbound:
    key: str  # the caller's id for this message (its inbox key)
    text: str | None
    has_attachments: bool = False
    quoted_ref: str | None = None  # the case of a bot message it quotes, if the caller found one


@dataclass(frozen=True)
class Route:
    action: Action
    state: ReporterState  # persist this
    replies: tuple[str, ...] = ()
    ref: str | None = None
    messages: tuple[str, ...] = ()  # inbox keys this decision covers


_CLEAR = ReporterState()


def route(
    cases: Sequence[OpenCase], state: ReporterState, inbound: Inbound, catalog: Catalog
) -> Route:
    """Decide what one message from a reporter with no intake in progress is for."""
    text = clean_text(inbound.text or "", len(inbound.text or ""))
    if not text.strip() and not inbound.has_attachments:
        return Route(Action.IGNORE, state)
    said = command(text)
    if said is Command.STOP:
        return _stop(state, catalog)
    if said is not None:  # HELP, or BACK, which has nothing to go back to here
        return _help(cases, state, catalog)
    if answer_key(text) in _NEW:
        return Route(Action.NEW_REPORT, _CLEAR, messages=state.held)
    if not cases:
        return Route(Action.NEW_REPORT, _CLEAR, messages=(*state.held, inbound.key))
    return _to_case(cases, state, inbound, text, catalog)


def _to_case(
    cases: Sequence[OpenCase], state: ReporterState, inbound: Inbound, text: str, catalog: Catalog
) -> Route:
    open_refs = {c.ref for c in cases}
    pending = state.pending is PendingChoice.WHICH_CASE
    held = (*state.held, inbound.key)
    if pending:
        picked = _picked(text, state.offered, open_refs)
        if picked is not None:
            return _relay(picked, state.held, catalog)
        if _is_choice(text):  # a number or reference that is not (or no longer) on the list
            held = state.held
    explicit = inbound.quoted_ref if inbound.quoted_ref in open_refs else _ref_at_start(text)
    if explicit is not None and explicit in open_refs:
        return _relay(explicit, (*state.held, inbound.key), catalog)
    if len(cases) == 1 and not pending:
        return _relay(cases[0].ref, (inbound.key,), catalog)
    asking = ReporterState(PendingChoice.WHICH_CASE, held, tuple(c.ref for c in cases))
    first: tuple[str, ...] = ()
    if pending:
        first = (catalog.render("reporter_held" if held != state.held else "not_understood"),)
    return Route(Action.ASK, asking, (_join(*first, _which(cases, catalog)),))


def _stop(state: ReporterState, catalog: Catalog) -> Route:
    if state.pending is PendingChoice.WHICH_CASE:
        reply = catalog.render("reporter_discarded")
        return Route(Action.DISCARD, _CLEAR, (reply,), messages=state.held)
    return Route(Action.STOP, _CLEAR, (catalog.render("reporter_stopped"),))


def _relay(ref: str, messages: tuple[str, ...], catalog: Catalog) -> Route:
    reply = catalog.render("reporter_relayed", ref=ref)
    return Route(Action.RELAY, _CLEAR, (reply,), ref=ref, messages=messages)


def _help(cases: Sequence[OpenCase], state: ReporterState, catalog: Catalog) -> Route:
    pending = state.pending is PendingChoice.WHICH_CASE and bool(cases)
    which = _which(cases, catalog) if pending else ""
    return Route(Action.HELP, state, (_join(catalog.render("reporter_help"), which),))


def _picked(text: str, offered: Sequence[str], open_refs: set[str]) -> str | None:
    """The case a "which report?" answer names: by its number or its reference."""
    key = answer_key(text)
    ref: str | None = None
    if key.isdecimal() and len(key) <= 3 and 1 <= int(key) <= len(offered):
        ref = offered[int(key) - 1]
    elif _REF_AT_START.fullmatch(key):
        ref = key.upper()
    return ref if ref in open_refs else None


def _is_choice(text: str) -> bool:
    key = answer_key(text)
    return (key.isdecimal() and len(key) <= 3) or _REF_AT_START.fullmatch(key) is not None


def _ref_at_start(text: str) -> str | None:
    found = _REF_AT_START.match(text)
    return found.group(1).upper() if found else None


def _which(cases: Sequence[OpenCase], catalog: Catalog) -> str:
    options = "\n".join(
        catalog.render("case_option", n=n, ref=c.ref, label=c.label)
        for n, c in enumerate(cases, 1)
    )
    return catalog.render("reporter_which_case", options=options)


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)
