"""The intake conversation, from first message to SEND, as one pure transition table.

``TABLE`` maps every open state to its question, its answer reader and where an answer can
lead. Global fallbacks work in every state: STOP/CANCEL, HELP, BACK. Anything not understood
re-asks the same question with its options and keeps the draft. The caller persists
``(state, draft)`` after every step; ``IntakeState`` values are a storage format.

Pure: no I/O, no clock (``now`` is an argument), no randomness. ``intake.md`` beside this
file is drawn from ``TABLE`` by ``mermaid()``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeAlias, TypeVar

from handlers.flows.catalog import Catalog
from handlers.flows.text import answer_key, clean_name, clean_text
from relay.config.schema import OrgConfig, ScopeKind

DRAFT_FORMAT = 1
MAX_PART_CHARS = 20_000  # one narrative message or one when/where/who answer
CATEGORY_OTHER = "_other"  # "Something else": not a valid config slug, so it never collides
_SHORT_VALUE = 80  # how much of a when/where/who answer the summary shows
_GREETING_CHARS = 40  # a first message longer than this is taken as the start of a report


class IntakeState(StrEnum):
    """Where an intake is. Values are a storage format: never rename one, only add."""

    IDENTITY = "identity"
    HELP_KIND = "help_kind"
    CATEGORY = "category"
    SCOPE = "scope"
    CHOOSE_OFFICER = "choose_officer"
    EXCLUSIONS = "exclusions"
    NARRATIVE = "narrative"
    WHEN = "when"
    WHERE = "where"
    WHO = "who"
    SAFETY = "safety"
    CHECKIN = "checkin"
    CONFIRM = "confirm"
    EDIT = "edit"
    EDIT_NARRATIVE = "edit_narrative"
    SUBMITTED = "submitted"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


S = IntakeState
ENDED = frozenset({S.SUBMITTED, S.CANCELLED, S.EXPIRED})


class Outcome(StrEnum):
    CONTINUE = "continue"
    SUBMIT = "submit"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Command(StrEnum):
    """The global fallbacks, understood in every state (and by the reporter router)."""

    STOP = "stop"
    HELP = "help"
    BACK = "back"


class ConversationEndedError(ValueError):
    """``step``/``reask`` was called for an intake that is already submitted or discarded."""


class DraftFormatError(ValueError):
    """A stored draft cannot be read; the message names the field, never its value."""


_COMMAND_WORDS: Mapping[str, Command] = MappingProxyType({
    "stop": Command.STOP, "cancel": Command.STOP, "quit": Command.STOP, "exit": Command.STOP,
    "help": Command.HELP, "back": Command.BACK, "go back": Command.BACK,
})


def command(text: str) -> Command | None:
    """STOP/CANCEL, HELP or BACK when that is the whole message (any case, any punctuation)."""
    if text.strip() == "?":
        return Command.HELP
    return _COMMAND_WORDS.get(answer_key(text))


# ---------------------------------------------------------------------------------------------
# Data the caller stores and passes in.


@dataclass(frozen=True)
class AttachmentNote:
    """What a report records about an attachment: never its file name (it can identify people)."""

    content_type: str
    size: int


@dataclass(frozen=True)
class Draft:
    """Everything answered so far. ``to_json`` is JSON-safe; the store seals it."""

    named: bool | None = None
    help_kind: str | None = None
    category: str | None = None
    scope_id: str | None = None
    chosen_officer: str | None = None
    excluded: tuple[str, ...] = ()
    narrative: tuple[str, ...] = ()
    attachments: tuple[AttachmentNote, ...] = ()
    when: str | None = None
    where: str | None = None
    who: str | None = None
    safe: bool | None = None
    checkin_ok: bool | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    history: tuple[str, ...] = ()  # previous states, for BACK

    def to_json(self) -> dict[str, Any]:
        return {
            "v": DRAFT_FORMAT,
            "named": self.named,
            "help_kind": self.help_kind,
            "category": self.category,
            "scope_id": self.scope_id,
            "chosen_officer": self.chosen_officer,
            "excluded": list(self.excluded),
            "narrative": list(self.narrative),
            "attachments": [
                {"content_type": a.content_type, "size": a.size} for a in self.attachments
            ],
            "when": self.when,
            "where": self.where,
            "who": self.who,
            "safe": self.safe,
            "checkin_ok": self.checkin_ok,
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
            "history": list(self.history),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Draft:
        """Read ``to_json`` output; missing keys take their defaults, unknown keys are ignored.

        Errors name the field, never its value (values are report text).
        """
        return cls(
            named=_opt(data, "named", bool),
            help_kind=_opt(data, "help_kind", str),
            category=_opt(data, "category", str),
            scope_id=_opt(data, "scope_id", str),
            chosen_officer=_opt(data, "chosen_officer", str),
            excluded=_strs(data, "excluded"),
            narrative=_strs(data, "narrative"),
            attachments=tuple(_attachment(a) for a in _list(data, "attachments")),
            when=_opt(data, "when", str),
            where=_opt(data, "where", str),
            who=_opt(data, "who", str),
            safe=_opt(data, "safe", bool),
            checkin_ok=_opt(data, "checkin_ok", bool),
            started_at=_time(data, "started_at"),
            updated_at=_time(data, "updated_at"),
            history=tuple(h for h in _strs(data, "history") if h in _STATE_VALUES),
        )


_STATE_VALUES = frozenset(s.value for s in IntakeState)
_T = TypeVar("_T")


def _opt(data: Mapping[str, Any], key: str, kind: type[_T]) -> _T | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, kind):
        return value
    raise DraftFormatError(f"draft field '{key}' should be {kind.__name__} or null")


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise DraftFormatError(f"draft field '{key}' should be a list")
    return value


def _strs(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = _list(data, key)
    if not all(isinstance(v, str) for v in values):
        raise DraftFormatError(f"draft field '{key}' should be a list of strings")
    return tuple(values)


def _attachment(value: Any) -> AttachmentNote:
    if not isinstance(value, Mapping):
        raise DraftFormatError("draft field 'attachments' should hold objects")
    kind, size = value.get("content_type"), value.get("size")
    if not isinstance(kind, str) or not isinstance(size, int) or isinstance(size, bool):
        raise DraftFormatError("draft field 'attachments' needs content_type and size")
    return AttachmentNote(kind, size)


def _time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = _opt(data, key, str)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise DraftFormatError(f"draft field '{key}' should be an ISO 8601 time") from None


@dataclass(frozen=True)
class IntakeInput:
    text: str | None
    attachments: tuple[AttachmentNote, ...] = ()


@dataclass(frozen=True)
class StepResult:
    state: IntakeState
    draft: Draft
    replies: tuple[str, ...]  # messages to send, in order
    outcome: Outcome


@dataclass(frozen=True)
class Person:
    id: str
    name: str


@dataclass(frozen=True)
class Choice:
    id: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class ScopeChoice:
    id: str
    label: str
    kind: ScopeKind
    officers: tuple[Person, ...]
    support: tuple[Person, ...] = ()


@dataclass(frozen=True)
class FlowContext:
    """What the flows need from the organisation config, cleaned for display once."""

    org: str
    allow_anonymous: bool
    ask_exclusions: bool
    scopes: tuple[ScopeChoice, ...]
    categories: tuple[Choice, ...]
    help_kinds: tuple[Choice, ...]
    catalog: Catalog
    draft_expiry: timedelta
    max_report_messages: int

    @classmethod
    def from_config(cls, cfg: OrgConfig) -> FlowContext:
        names = {o.id: clean_name(o.display_name) for o in cfg.officers}

        def people(ids: Iterable[str]) -> tuple[Person, ...]:
            return tuple(Person(i, names[i]) for i in ids)

        return cls(
            org=clean_name(cfg.organisation.name, 120),
            allow_anonymous=cfg.intake.allow_anonymous,
            ask_exclusions=cfg.intake.ask_exclusions,
            scopes=tuple(
                ScopeChoice(s.id, clean_name(s.label, 160), s.kind, people(s.officers),
                            people(s.support))
                for s in cfg.scopes
            ),
            categories=tuple(Choice(c.id, clean_name(c.label, 120)) for c in cfg.categories),
            help_kinds=tuple(
                Choice(h.id, clean_name(h.label, 60), clean_name(h.description, 200))
                for h in cfg.help_kinds
            ),
            catalog=Catalog(cfg.texts),
            draft_expiry=timedelta(hours=cfg.intake.draft_expiry_hours),
            max_report_messages=cfg.intake.max_report_messages,
        )

    def scope(self, scope_id: str | None) -> ScopeChoice | None:
        return next((s for s in self.scopes if s.id == scope_id), None)

    def say(self, msg_id: str, **values: object) -> str:
        return self.catalog.render(msg_id, **values)


# ---------------------------------------------------------------------------------------------
# Reading answers.

_YES = frozenset({"yes", "y", "yeah", "yep", "yup", "yes please", "sure", "ok", "okay"})
_NO = frozenset({"no", "n", "nope", "nah", "no thanks", "no thank you", "not really"})
_SAFE = frozenset({"safe", "i'm safe", "im safe", "i am safe", "yes i'm safe", "yes i am"})
_NOT_SAFE = frozenset({
    "not safe", "i'm not safe", "im not safe", "i am not safe", "not sure", "unsure",
    "i don't know", "don't know", "dont know", "idk", "maybe",
})
_NONE = frozenset({
    "none", "no", "n", "nope", "nah", "0", "nobody", "no one", "noone", "none of them",
    "no thanks", "skip",
})
_SKIP = frozenset({
    "skip", "pass", "none", "no", "n/a", "na", "don't know", "dont know", "i don't know",
    "idk", "not sure", "rather not say", "prefer not to say",
})
_DONE = frozenset({
    "done", "i'm done", "im done", "all done", "finished", "i'm finished", "that's all",
    "thats all", "that is all", "end",
})
_SEND = frozenset({"send", "send it", "send now", "submit", "yes send", "send please"})
_EDIT = frozenset({"edit", "change", "change something", "edit something"})
_OPENING = frozenset({
    "hi", "hello", "hey", "hiya", "heya", "yo", "good", "morning", "afternoon", "evening",
    "help", "please", "i", "i'm", "im", "need", "want", "would", "like", "to", "make", "a",
    "an", "report", "talk", "speak", "with", "someone", "somebody", "anyone", "there", "is",
    "this", "the", "conduct", "line", "can", "you", "how", "does", "it", "work", "what", "ok",
    "okay", "thanks", "thank", "new", "start",
})
# Words that never pick an option on their own ("the" must not choose "The whole group").
_FILLER = frozenset({
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "plus", "you",
    "your", "my", "me", "i", "it", "is", "be", "please",
})
_WORDS = re.compile(r"[\w']+")
_SENTENCES = re.compile(r"[.!?\n]+")
_LIST_SEPARATORS = re.compile(r"[\s,;&+/]+|\band\b")


@dataclass(frozen=True)
class _Option:
    key: str  # what is stored when picked
    label: str
    description: str = ""
    words: frozenset[str] = frozenset()  # other answers that pick it (answer_key form)


def _pick(text: str, options: Sequence[_Option]) -> _Option | None:
    """By number, by label, key or extra word, or by words found in exactly one label."""
    key = answer_key(text)
    if key.isdecimal() and len(key) <= 3:
        number = int(key)
        return options[number - 1] if 1 <= number <= len(options) else None
    exact = [o for o in options if key in {answer_key(o.label), o.key, *o.words}]
    if exact:
        return exact[0] if len(exact) == 1 else None
    said = set(_WORDS.findall(key))
    if not said - _FILLER:
        return None
    hits = [o for o in options if said <= set(_WORDS.findall(answer_key(o.label)))]
    return hits[0] if len(hits) == 1 else None


def _yes_no(
    text: str, ctx: FlowContext, yes: frozenset[str] = frozenset(), no: frozenset[str] = frozenset()
) -> bool | None:
    key = answer_key(text)
    if key in _YES or key in yes or key == answer_key(ctx.say("yes")):
        return True
    if key in _NO or key in no or key == answer_key(ctx.say("no")):
        return False
    return None


def _is_opening(text: str) -> bool:
    """A short hello ("hi", "I need help") rather than the report itself."""
    words = _WORDS.findall(answer_key(text))
    return len(text.strip()) <= _GREETING_CHARS and all(w in _OPENING for w in words)


def _looks_like_report(text: str) -> bool:
    """An unexpected answer that is worth keeping: long, or several sentences."""
    sentences = [s for s in _SENTENCES.split(text) if _WORDS.search(s)]
    return len(text.strip()) > _GREETING_CHARS or (len(sentences) > 1 and not _is_opening(text))


def _clean(text: str | None) -> str:
    return clean_text(text or "", len(text or ""))


# ---------------------------------------------------------------------------------------------
# Options and who would see the report.


def _listing(ctx: FlowContext, options: Sequence[_Option]) -> str:
    return "\n".join(
        ctx.say("option_described", n=n, label=o.label, description=o.description)
        if o.description
        else ctx.say("option", n=n, label=o.label)
        for n, o in enumerate(options, 1)
    )


def _identity_options(ctx: FlowContext) -> tuple[_Option, ...]:
    return (
        _Option("anonymous", ctx.say("identity_anonymous"), ctx.say("identity_anonymous_about"),
                frozenset({"anon", "anonymously", "stay anonymous"})),
        _Option("named", ctx.say("identity_named"), ctx.say("identity_named_about"),
                frozenset({"name", "my name", "with my name", "give my name"})),
    )


def _choice_options(choices: Sequence[Choice]) -> tuple[_Option, ...]:
    return tuple(_Option(c.id, c.label, c.description) for c in choices)


def _category_options(ctx: FlowContext) -> tuple[_Option, ...]:
    """The organisation's categories, then "Something else" unless one of them already
    says exactly that (two identical lines would make the reporter wonder which to pick)."""
    configured = _choice_options(ctx.categories)
    label = ctx.say("category_other")
    if any(c.label.casefold() == label.casefold() for c in configured):
        return configured
    return (*configured, _Option(CATEGORY_OTHER, label, words=frozenset({"other"})))


def _people_options(people: Sequence[Person]) -> tuple[_Option, ...]:
    return tuple(_Option(p.id, p.name) for p in people)


_EDIT_MENU: tuple[tuple[str, IntakeState, frozenset[str]], ...] = (
    ("edit_identity", S.IDENTITY, frozenset({"identity", "anonymous", "named", "name"})),
    ("edit_help_kind", S.HELP_KIND, frozenset({"help kind", "kind"})),
    ("edit_category", S.CATEGORY, frozenset({"category", "about"})),
    ("edit_scope", S.SCOPE, frozenset({"scope", "who sees"})),
    ("edit_narrative", S.EDIT_NARRATIVE, frozenset({"narrative", "story", "what happened"})),
    ("edit_details", S.WHEN, frozenset({"when", "where", "who", "details"})),
    ("edit_safety", S.SAFETY, frozenset({"safety", "safe"})),
    ("edit_checkin", S.CHECKIN, frozenset({"checkin", "check-in", "check in", "check-ins"})),
)


def _edit_options(ctx: FlowContext) -> tuple[_Option, ...]:
    return tuple(
        _Option(state.value, ctx.say(msg_id), words=words)
        for msg_id, state, words in _EDIT_MENU
        if state is not S.IDENTITY or ctx.allow_anonymous
    )


def _narrative_edit_options(ctx: FlowContext) -> tuple[_Option, ...]:
    return (
        _Option("add", ctx.say("narrative_add"), words=frozenset({"add", "more", "add more"})),
        _Option("restart", ctx.say("narrative_restart"),
                words=frozenset({"restart", "again", "start again"})),
    )


def excludable(draft: Draft, ctx: FlowContext) -> tuple[Person, ...]:
    """Who would otherwise see the report and may be left out: never the officer they chose."""
    scope = ctx.scope(draft.scope_id)
    if scope is None:
        return ()
    pool = {p.id: p for p in (*scope.officers, *scope.support) if p.id != draft.chosen_officer}
    return tuple(pool.values())


def recipients(draft: Draft, ctx: FlowContext) -> tuple[str, ...]:
    """Officer ids the report would reach: the chosen officer or the team, less exclusions."""
    scope = ctx.scope(draft.scope_id)
    if scope is None:
        return ()
    if scope.kind is ScopeKind.CHOSEN:
        if draft.chosen_officer is None:
            return ()
        pool = (draft.chosen_officer, *(p.id for p in scope.support))
    else:
        pool = tuple(p.id for p in (*scope.officers, *scope.support))
    kept = (i for i in pool if i == draft.chosen_officer or i not in draft.excluded)
    return tuple(dict.fromkeys(kept))


# ---------------------------------------------------------------------------------------------
# Questions.


def _ask_identity(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_identity", options=_listing(ctx, _identity_options(ctx)))


def _ask_help_kind(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_help_kind", options=_listing(ctx, _choice_options(ctx.help_kinds)))


def _ask_category(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_category", options=_listing(ctx, _category_options(ctx)))


def _ask_scope(_draft: Draft, ctx: FlowContext) -> str:
    options = tuple(_Option(s.id, s.label) for s in ctx.scopes)
    return ctx.say("ask_scope", options=_listing(ctx, options))


def _scope_officers(draft: Draft, ctx: FlowContext) -> tuple[Person, ...]:
    scope = ctx.scope(draft.scope_id)
    return () if scope is None else scope.officers


def _ask_officer(draft: Draft, ctx: FlowContext) -> str:
    options = _people_options(_scope_officers(draft, ctx))
    return ctx.say("ask_officer", options=_listing(ctx, options))


def _ask_exclusions(draft: Draft, ctx: FlowContext) -> str:
    options = _people_options(excludable(draft, ctx))
    return ctx.say("ask_exclusions", options=_listing(ctx, options))


def _count(draft: Draft, ctx: FlowContext) -> str:
    texts, files = len(draft.narrative), len(draft.attachments)
    said = ctx.say("count_messages_one") if texts == 1 else ctx.say("count_messages", n=texts)
    sent = ctx.say("count_attachments_one") if files == 1 else ctx.say("count_attachments", n=files)
    if texts and files:
        return ctx.say("count_and", first=said, second=sent)
    return sent if files else said


def _ask_narrative(draft: Draft, ctx: FlowContext) -> str:
    if not draft.narrative and not draft.attachments:
        return ctx.say("ask_narrative")
    return ctx.say("ask_narrative_more", count=_count(draft, ctx))


def _ask_when(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_when")


def _ask_where(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_where")


def _ask_who(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_who")


def _ask_safety(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_safety")


def _ask_checkin(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_checkin")


def _ask_edit(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_edit", options=_listing(ctx, _edit_options(ctx)))


def _ask_edit_narrative(_draft: Draft, ctx: FlowContext) -> str:
    return ctx.say("ask_edit_narrative", options=_listing(ctx, _narrative_edit_options(ctx)))


def summary(draft: Draft, ctx: FlowContext) -> str:
    """The confirm screen: every answer on one line, report text only counted, then SEND/EDIT."""
    if draft.category == CATEGORY_OTHER:
        category = ctx.say("category_other")
    else:
        category = _label(ctx.categories, draft.category, ctx)
    rows = (
        ("field_identity", _identity_value(draft.named, ctx)),
        ("field_help_kind", _label(ctx.help_kinds, draft.help_kind, ctx)),
        ("field_category", category),
        ("field_scope", _scope_value(draft, ctx)),
        ("field_narrative", _count(draft, ctx)),
        ("field_when", _short(draft.when, ctx)),
        ("field_where", _short(draft.where, ctx)),
        ("field_who", _short(draft.who, ctx)),
        ("field_safety", _yes_no_value(draft.safe, ctx)),
        ("field_checkin", _yes_no_value(draft.checkin_ok, ctx)),
    )
    table = "\n".join(ctx.say("summary_row", field=ctx.say(f), value=v) for f, v in rows)
    return _join(ctx.say("summary_header"), table, ctx.say("ask_confirm"))


def _label(choices: Sequence[Choice], choice_id: str | None, ctx: FlowContext) -> str:
    return next((c.label for c in choices if c.id == choice_id), ctx.say("not_given"))


def _identity_value(named: bool | None, ctx: FlowContext) -> str:
    if named is None:
        return ctx.say("not_given")
    return ctx.say("identity_named" if named else "identity_anonymous")


def _yes_no_value(value: bool | None, ctx: FlowContext) -> str:
    if value is None:
        return ctx.say("not_given")
    return ctx.say("yes" if value else "no")


def _short(value: str | None, ctx: FlowContext) -> str:
    if value is None:
        return ctx.say("not_given")
    flat = " ".join(value.split())
    return flat if len(flat) <= _SHORT_VALUE else flat[: _SHORT_VALUE - 1] + "\u2026"


def _scope_value(draft: Draft, ctx: FlowContext) -> str:
    scope = ctx.scope(draft.scope_id)
    if scope is None:
        return ctx.say("not_given")
    value = scope.label
    chosen = next((p.name for p in scope.officers if p.id == draft.chosen_officer), None)
    if scope.kind is ScopeKind.CHOSEN and chosen is not None:
        value = ctx.say("scope_chosen_value", officer=chosen)
    left_out = [p.name for p in excludable(draft, ctx) if p.id in draft.excluded]
    if left_out:
        value = ctx.say("scope_except", scope=value, names=", ".join(left_out))
    return value


# ---------------------------------------------------------------------------------------------
# Answers. Each returns _Go (answer taken), _Stay (stay on this question) or None (not
# understood: the caller re-asks with the options).


@dataclass(frozen=True)
class _Go:
    draft: Draft
    to: IntakeState | None = None  # None: the usual next question
    say: tuple[str, ...] = ()  # lines before the next question, in the same message
    alone: tuple[str, ...] = ()  # messages of their own before it (urgent help)


@dataclass(frozen=True)
class _Stay:
    draft: Draft
    say: tuple[str, ...]
    ask: bool = True  # repeat the question after `say`


_Move: TypeAlias = _Go | _Stay | None


def _on_identity(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    picked = _pick(text, _identity_options(ctx))
    if picked is None:
        return None
    named = picked.key == "named"
    ack = ctx.say("identity_named_ok" if named else "identity_anonymous_ok")
    return _Go(replace(draft, named=named), say=(ack,))


def _on_help_kind(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    picked = _pick(text, _choice_options(ctx.help_kinds))
    return None if picked is None else _Go(replace(draft, help_kind=picked.key))


def _on_category(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    picked = _pick(text, _category_options(ctx))
    return None if picked is None else _Go(replace(draft, category=picked.key))


def _on_scope(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    picked = _pick(text, tuple(_Option(s.id, s.label) for s in ctx.scopes))
    if picked is None:
        return None
    return _Go(replace(draft, scope_id=picked.key, chosen_officer=None, excluded=()))


def _on_officer(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    picked = _pick(text, _people_options(_scope_officers(draft, ctx)))
    return None if picked is None else _Go(replace(draft, chosen_officer=picked.key, excluded=()))


def _on_exclusions(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    people = excludable(draft, ctx)
    key = answer_key(text)
    parts = [p for p in _LIST_SEPARATORS.split(key) if p]
    if key in _NONE:
        left_out: tuple[str, ...] = ()
    elif parts and all(p.isdecimal() and len(p) <= 3 for p in parts):
        numbers = [int(p) for p in parts]
        if not all(1 <= n <= len(people) for n in numbers):
            return None
        left_out = tuple(dict.fromkeys(people[n - 1].id for n in numbers))
    else:
        picked = _pick(text, _people_options(people))
        if picked is None:
            return None
        left_out = (picked.key,)
    updated = replace(draft, excluded=left_out)
    if not recipients(updated, ctx):
        return _Stay(draft, (ctx.say("nobody_left"),))
    return _Go(updated)


def _add_part(draft: Draft, text: str, ctx: FlowContext) -> tuple[Draft, tuple[str, ...]]:
    """One more narrative message, within the configured cap; says if it was refused or cut."""
    if len(draft.narrative) >= ctx.max_report_messages:
        return draft, (ctx.say("narrative_cap", max=ctx.max_report_messages),)
    part = text.strip()
    said: tuple[str, ...] = ()
    if len(part) > MAX_PART_CHARS:
        part, said = part[:MAX_PART_CHARS], (ctx.say("text_cut", max=MAX_PART_CHARS),)
    return replace(draft, narrative=(*draft.narrative, part)), said


def _split_done(text: str) -> tuple[str, bool]:
    """The report text and whether it ends with DONE as its own sentence or line."""
    body = text.strip()
    trimmed = body.rstrip(".!? \n")
    cut = max(trimmed.rfind(mark) for mark in ".!?\n")
    if answer_key(trimmed[cut + 1 :]) in _DONE:
        return body[: cut + 1].strip(), True
    return body, False


def _on_narrative(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    part, finished = _split_done(text)  # "DONE", "...the end of it. Done." or a last line DONE
    said: tuple[str, ...] = ()
    if part:
        draft, said = _add_part(draft, part, ctx)
    if not finished:
        return _Stay(draft, said or (ctx.say("narrative_got"),), ask=False)
    if not draft.narrative and not draft.attachments:
        return _Stay(draft, (*said, ctx.say("narrative_empty")))
    return _Go(draft, say=said)


def _detail(text: str) -> str | None:
    """A when/where/who answer: the text, "" for SKIP, None if it has no letters or digits."""
    key = answer_key(text)
    if not key:
        return None
    return "" if key in _SKIP else text.strip()[:MAX_PART_CHARS]


def _on_when(text: str, draft: Draft, _ctx: FlowContext) -> _Move:
    value = _detail(text)
    return None if value is None else _Go(replace(draft, when=value or None))


def _on_where(text: str, draft: Draft, _ctx: FlowContext) -> _Move:
    value = _detail(text)
    return None if value is None else _Go(replace(draft, where=value or None))


def _on_who(text: str, draft: Draft, _ctx: FlowContext) -> _Move:
    value = _detail(text)
    return None if value is None else _Go(replace(draft, who=value or None))


def _on_safety(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    safe = _yes_no(text, ctx, yes=_SAFE, no=_NOT_SAFE)
    if safe is None:
        return None
    urgent = () if safe else (ctx.say("urgent_help"),)
    return _Go(replace(draft, safe=safe), alone=urgent)


def _on_checkin(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    ok = _yes_no(text, ctx, yes=frozenset({"please"}))
    return None if ok is None else _Go(replace(draft, checkin_ok=ok))


def _on_confirm(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    key = answer_key(text)
    if key in _EDIT:
        return _Go(draft, to=S.EDIT)
    if key not in _SEND:
        return None
    gap = _first_gap(draft, ctx)
    if gap is not None:
        return _Go(draft, to=gap, say=(ctx.say("answer_again"),))
    return _Go(draft, to=S.SUBMITTED)


def _on_edit(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    picked = _pick(text, _edit_options(ctx))
    if picked is None:
        return None
    to = S(picked.key)
    if to is S.EDIT_NARRATIVE and not draft.narrative:
        to = S.NARRATIVE
    return _Go(draft, to=to)


def _on_edit_narrative(text: str, draft: Draft, ctx: FlowContext) -> _Move:
    picked = _pick(text, _narrative_edit_options(ctx))
    if picked is None:
        return None
    if picked.key == "add":
        return _Go(draft, to=S.NARRATIVE)
    kept = (ctx.say("attachments_kept"),) if draft.attachments else ()
    said = (ctx.say("narrative_cleared"), *kept)
    return _Go(replace(draft, narrative=()), to=S.NARRATIVE, say=said)


def _first_gap(draft: Draft, ctx: FlowContext) -> IntakeState | None:
    """The first question whose answer is missing or no longer in the config, if any."""
    scope = ctx.scope(draft.scope_id)
    officers = {p.id for p in scope.officers} if scope else set()
    checks = (
        (S.IDENTITY, draft.named is None),
        (S.HELP_KIND, draft.help_kind not in {h.id for h in ctx.help_kinds}),
        (S.CATEGORY, draft.category not in {CATEGORY_OTHER, *(c.id for c in ctx.categories)}),
        (S.SCOPE, scope is None),
        (S.CHOOSE_OFFICER, scope is not None and scope.kind is ScopeKind.CHOSEN
         and draft.chosen_officer not in officers),
        (S.EXCLUSIONS, not recipients(draft, ctx)),
        (S.NARRATIVE, not draft.narrative and not draft.attachments),
        (S.SAFETY, draft.safe is None),
        (S.CHECKIN, draft.checkin_ok is None),
    )
    return next((state for state, missing in checks if missing), None)


# ---------------------------------------------------------------------------------------------
# The transition table.


@dataclass(frozen=True)
class Node:
    """One question: how it is asked, how an answer is read, where an answer can lead."""

    ask: Callable[[Draft, FlowContext], str]
    answer: Callable[[str, Draft, FlowContext], _Move]
    then: tuple[IntakeState, ...]  # the first is the usual next question


TABLE: Mapping[IntakeState, Node] = MappingProxyType({
    S.IDENTITY:       Node(_ask_identity, _on_identity, (S.HELP_KIND, S.CONFIRM)),
    S.HELP_KIND:      Node(_ask_help_kind, _on_help_kind, (S.CATEGORY, S.CONFIRM)),
    S.CATEGORY:       Node(_ask_category, _on_category, (S.SCOPE, S.CONFIRM)),
    S.SCOPE:          Node(_ask_scope, _on_scope,
                           (S.CHOOSE_OFFICER, S.EXCLUSIONS, S.NARRATIVE, S.CONFIRM)),
    S.CHOOSE_OFFICER: Node(_ask_officer, _on_officer, (S.EXCLUSIONS, S.NARRATIVE, S.CONFIRM)),
    S.EXCLUSIONS:     Node(_ask_exclusions, _on_exclusions, (S.NARRATIVE, S.CONFIRM)),
    S.NARRATIVE:      Node(_ask_narrative, _on_narrative, (S.WHEN, S.CONFIRM)),
    S.WHEN:           Node(_ask_when, _on_when, (S.WHERE,)),
    S.WHERE:          Node(_ask_where, _on_where, (S.WHO,)),
    S.WHO:            Node(_ask_who, _on_who, (S.SAFETY, S.CONFIRM)),
    S.SAFETY:         Node(_ask_safety, _on_safety, (S.CHECKIN, S.CONFIRM)),
    S.CHECKIN:        Node(_ask_checkin, _on_checkin, (S.CONFIRM,)),
    S.CONFIRM:        Node(summary, _on_confirm, (S.SUBMITTED, S.EDIT)),
    S.EDIT:           Node(_ask_edit, _on_edit,
                           (S.IDENTITY, S.HELP_KIND, S.CATEGORY, S.SCOPE, S.EDIT_NARRATIVE,
                            S.NARRATIVE, S.WHEN, S.SAFETY, S.CHECKIN)),
    S.EDIT_NARRATIVE: Node(_ask_edit_narrative, _on_edit_narrative, (S.NARRATIVE,)),
})  # fmt: skip
# Questions that finish an answer begun by the one before (scope -> officer -> exclusions,
# when -> where -> who). After EDIT they still follow; any other next question is CONFIRM.
FOLLOW_ONS = frozenset({S.CHOOSE_OFFICER, S.EXCLUSIONS, S.WHERE, S.WHO})


def _applies(state: IntakeState, draft: Draft, ctx: FlowContext) -> bool:
    if state is S.CHOOSE_OFFICER:
        scope = ctx.scope(draft.scope_id)
        return scope is not None and scope.kind is ScopeKind.CHOSEN
    if state is S.EXCLUSIONS:
        return ctx.ask_exclusions and bool(excludable(draft, ctx))
    return True


def _after(state: IntakeState, draft: Draft, ctx: FlowContext) -> IntakeState:
    """The usual next question, skipping ones that do not apply; CONFIRM once reviewing."""
    nxt = TABLE[state].then[0]
    while not _applies(nxt, draft, ctx):
        nxt = TABLE[nxt].then[0]
    reviewing = draft.checkin_ok is not None  # every question answered once: back to confirm
    return S.CONFIRM if reviewing and nxt not in FOLLOW_ONS else nxt


def _push(draft: Draft, came_from: IntakeState, to: IntakeState) -> Draft:
    """Record where we came from for BACK; arriving at CONFIRM forgets the edit detour."""
    history = draft.history
    if to is S.CONFIRM and S.CONFIRM.value in history:
        history = history[: history.index(S.CONFIRM.value)]
    return replace(draft, history=(*history, came_from.value))


# ---------------------------------------------------------------------------------------------
# The public steps.


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def _question(state: IntakeState, draft: Draft, ctx: FlowContext) -> str:
    return TABLE[state].ask(draft, ctx)


def _asking(state: IntakeState, draft: Draft, ctx: FlowContext, *said: str) -> StepResult:
    reply = _join(*said, _question(state, draft, ctx))
    return StepResult(state, draft, (reply,), Outcome.CONTINUE)


def _first_state(ctx: FlowContext) -> IntakeState:
    return S.IDENTITY if ctx.allow_anonymous else S.HELP_KIND


def _require_open(state: IntakeState) -> None:
    if state in ENDED:
        raise ConversationEndedError(f"this intake is already {state}; start a new one")


def _repaired(state: IntakeState, draft: Draft, ctx: FlowContext) -> IntakeState:
    """SCOPE again if the chosen scope left the config while the draft was open."""
    needs_scope = state in {S.CHOOSE_OFFICER, S.EXCLUSIONS}
    return S.SCOPE if needs_scope and ctx.scope(draft.scope_id) is None else state


def _add_attachments(
    draft: Draft, notes: Sequence[AttachmentNote], ctx: FlowContext
) -> tuple[Draft, tuple[str, ...]]:
    if not notes:
        return draft, ()
    room = max(0, ctx.max_report_messages - len(draft.attachments))
    kept, dropped = tuple(notes[:room]), len(notes) - room
    said: list[str] = []
    if kept:
        said.append(ctx.say("attachment_noted", what=_what(kept, ctx)))
    if dropped > 0:
        said.append(ctx.say("attachments_cap", max=ctx.max_report_messages, n=dropped))
    return replace(draft, attachments=(*draft.attachments, *kept)), tuple(said)


def _what(notes: Sequence[AttachmentNote], ctx: FlowContext) -> str:
    if len(notes) > 1:
        return ctx.say("what_many", n=len(notes))
    kind = notes[0].content_type.split("/", 1)[0].strip().lower()
    return ctx.say({"image": "what_image", "video": "what_video", "audio": "what_audio"}.get(
        kind, "what_file"))


def is_expired(draft: Draft, ctx: FlowContext, now: datetime) -> bool:
    """Idle for longer than the configured draft expiry (also usable by a purge timer)."""
    last = draft.updated_at or draft.started_at
    return last is not None and now - last > ctx.draft_expiry


def _cancelled(ctx: FlowContext) -> StepResult:
    return StepResult(S.CANCELLED, Draft(), (ctx.say("cancelled"),), Outcome.CANCELLED)


def start(ctx: FlowContext, first: IntakeInput, now: datetime) -> StepResult:
    """First contact: the greeting, then the first question.

    A first message that is more than a short hello is kept as the start of the report.
    """
    text = _clean(first.text)
    if command(text) is Command.STOP:
        return _cancelled(ctx)
    draft = Draft(started_at=now, updated_at=now)
    said: list[str] = []
    if not _is_opening(text):
        draft, cut = _add_part(draft, text, ctx)
        said += [ctx.say("kept_first"), *cut]
    draft, noted = _add_attachments(draft, first.attachments, ctx)
    said += noted
    if not ctx.allow_anonymous:
        draft = replace(draft, named=True)
        said.append(ctx.say("reports_are_named", org=ctx.org))
    state = _first_state(ctx)
    greeting = ctx.say("greeting", org=ctx.org)
    return StepResult(state, draft, (greeting, _join(*said, _question(state, draft, ctx))),
                      Outcome.CONTINUE)


def step(
    state: IntakeState, draft: Draft, inp: IntakeInput, ctx: FlowContext, now: datetime
) -> StepResult:
    """One inbound message in an open intake: the fallbacks first, then the state's answer."""
    _require_open(state)
    if is_expired(draft, ctx, now):
        return StepResult(S.EXPIRED, Draft(), (ctx.say("expired"),), Outcome.EXPIRED)
    text = _clean(inp.text)
    if not text.strip() and not inp.attachments:
        return StepResult(state, draft, (), Outcome.CONTINUE)  # e.g. a disappearing-timer change
    draft, noted = _add_attachments(replace(draft, updated_at=now), inp.attachments, ctx)
    if _repaired(state, draft, ctx) is not state:
        return _asking(S.SCOPE, draft, ctx, *noted, ctx.say("answer_again"))
    if not text.strip():
        return _attachments_only(state, draft, ctx, noted)
    fallback = command(text)
    if fallback is not None:
        return _fallback(fallback, state, draft, ctx, noted)
    return _take(state, draft, text, ctx, noted)


def _attachments_only(
    state: IntakeState, draft: Draft, ctx: FlowContext, noted: tuple[str, ...]
) -> StepResult:
    if state is S.NARRATIVE:
        reply = _join(*noted, ctx.say("narrative_continue"))
        return StepResult(state, draft, (reply,), Outcome.CONTINUE)
    return _asking(state, draft, ctx, *noted)


def _fallback(
    fallback: Command, state: IntakeState, draft: Draft, ctx: FlowContext, noted: tuple[str, ...]
) -> StepResult:
    if fallback is Command.STOP:
        return _cancelled(ctx)
    if fallback is Command.HELP:
        return _asking(state, draft, ctx, *noted, ctx.say("help", org=ctx.org))
    if not draft.history:
        return _asking(_first_state(ctx), draft, ctx, *noted, ctx.say("back_at_start"))
    previous = IntakeState(draft.history[-1])
    return _asking(previous, replace(draft, history=draft.history[:-1]), ctx, *noted)


def _take(
    state: IntakeState, draft: Draft, text: str, ctx: FlowContext, noted: tuple[str, ...]
) -> StepResult:
    move = TABLE[state].answer(text, draft, ctx)
    if move is None:
        said = list(noted)
        if _looks_like_report(text) and len(draft.narrative) < ctx.max_report_messages:
            draft, cut = _add_part(draft, text, ctx)
            said += [ctx.say("kept_text"), *cut]
        return _asking(state, draft, ctx, *said, ctx.say("not_understood"))
    if isinstance(move, _Stay):
        if move.ask:
            return _asking(state, move.draft, ctx, *noted, *move.say)
        return StepResult(state, move.draft, (_join(*noted, *move.say),), Outcome.CONTINUE)
    to = move.to or _after(state, move.draft, ctx)
    draft = _push(move.draft, state, to)
    if to is S.SUBMITTED:
        said_last = _join(*noted, *move.say)
        return StepResult(to, draft, (said_last,) if said_last else (), Outcome.SUBMIT)
    reply = _join(*noted, *move.say, _question(to, draft, ctx))
    return StepResult(to, draft, (*move.alone, reply), Outcome.CONTINUE)


def reask(state: IntakeState, draft: Draft, ctx: FlowContext) -> StepResult:
    """After a restart: "Sorry, I was restarted — we were at:" and the same open question."""
    _require_open(state)
    state = _repaired(state, draft, ctx)
    question = _question(state, draft, ctx)
    return StepResult(state, draft, (ctx.say("restarted", question=question),), Outcome.CONTINUE)


def receipt(ctx: FlowContext, ref: str) -> str:
    """The message sent once the case is committed: its reference and what happens next."""
    return ctx.say("receipt", ref=ref, next_steps=ctx.say("next_steps"))


# ---------------------------------------------------------------------------------------------
# The diagram in intake.md.

_EDGE_LABELS: Mapping[tuple[IntakeState, IntakeState], str] = MappingProxyType({
    (S.CONFIRM, S.SUBMITTED): "SEND",
    (S.CONFIRM, S.EDIT): "EDIT",
})


def mermaid() -> str:
    """A Mermaid state diagram drawn from ``TABLE`` and the fallbacks."""
    lines = [
        "stateDiagram-v2",
        f"    [*] --> {S.IDENTITY}",
        f"    [*] --> {S.HELP_KIND}: reports are always named",
    ]
    for state, node in TABLE.items():
        for to in node.then:
            label = _EDGE_LABELS.get((state, to), "")
            if to is S.CONFIRM and node.then[0] is not S.CONFIRM:
                label = "after EDIT"
            lines.append(f"    {state} --> {to}" + (f": {label}" if label else ""))
    lines += [
        '    state "any open question" as any_question',
        f"    {S.CONFIRM} --> any_question: SEND with an answer missing",
        "    any_question --> any_question: HELP, BACK, not understood (re-ask)",
        f"    any_question --> {S.CANCELLED}: STOP or CANCEL",
        f"    any_question --> {S.EXPIRED}: idle longer than the draft expiry",
        f"    {S.SUBMITTED} --> [*]",
        f"    {S.CANCELLED} --> [*]",
        f"    {S.EXPIRED} --> [*]",
    ]
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """The whole of intake.md."""
    regenerate = (
        "python -c 'import pathlib, handlers.flows.intake as i; "
        'pathlib.Path("handlers/flows/intake.md").write_text(i.markdown())\''
    )
    return (
        "# Intake conversation\n\n"
        "Generated from `TABLE` in `intake.py` by `mermaid()`; "
        "`tests/unit/flows/test_intake_diagram.py` fails when this file is out of date.\n"
        f"Regenerate with `{regenerate}`.\n\n"
        "State names are the stored values of `IntakeState`. Every open question also takes "
        "STOP/CANCEL, HELP and BACK, and re-asks anything it does not understand.\n\n"
        "```mermaid\n" + mermaid() + "```\n"
    )
