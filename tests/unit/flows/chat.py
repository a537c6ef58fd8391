"""Config fixtures and a transcript runner: a test reads like the chat it checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.flows.intake import (
    TABLE,
    AttachmentNote,
    Draft,
    FlowContext,
    IntakeInput,
    IntakeState,
    StepResult,
    command,
    start,
    step,
)
from relay.config import OrgConfig

S = IntakeState
T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
GROUP = "group.MWFBRzRMQ01kK0Z5WTdUUldodmR1TFl4TFg4MFZwVVRFVWIvL09pWVRHbz0="
PHOTO = AttachmentNote("image/jpeg", 120_000)
PDF = AttachmentNote("application/pdf", 40_000)

# Numbers as the reporter sees them with `config()`:
#   identity     1 Anonymous, 2 Named
#   scope        1 whole group (team: Jane, Sam, Robin), 2 one person (chosen: Jane or Sam,
#                support Alex and Robin)
#   category     1 Harassment, 2 Sexual assault, 3 Disrespectful behaviour, 4 Something else
#   edit menu    1 identity, 2 help kind, 3 category, 4 scope, 5 what happened, 6 details,
#                7 safety, 8 check-ins


def config(**overrides: Any) -> OrgConfig:
    data: dict[str, Any] = {
        "organisation": {"name": "Riverside Branch"},
        "signal": {"bot_number": "+15550100009"},
        "officers": [
            {"id": "jane", "display_name": "Jane Doe",
             "aci": "3f0c9a52-6a1e-4d8e-9c1b-2f5e7d4a8b10", "roles": ["officer", "coordinator"]},
            {"id": "sam", "display_name": "Sam Rivera",
             "aci": "b7d2e4f1-0c3a-4b5d-8e6f-9a1b2c3d4e5f"},
            {"id": "alex", "display_name": "Alex Kim",
             "aci": "0a9b8c7d-6e5f-4a3b-8c1d-0e9f8a7b6c5d", "roles": ["support"]},
            {"id": "robin", "display_name": "Robin Lee",
             "aci": "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d", "roles": ["officer", "support"]},
        ],
        "scopes": [
            {"id": "regen", "label": "The whole Regenerative Culture group", "kind": "team",
             "group_id": GROUP, "officers": ["jane", "sam", "robin"]},
            {"id": "one", "label": "One person you choose, plus a support person",
             "kind": "chosen", "officers": ["jane", "sam"], "support": ["alex", "robin"]},
        ],
        "categories": [
            {"id": "harassment", "label": "Harassment"},
            {"id": "assault", "label": "Sexual assault", "immediate_review": True},
            {"id": "conduct", "label": "Disrespectful behaviour"},
        ],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return OrgConfig.model_validate(data)


def context(**overrides: Any) -> FlowContext:
    return FlowContext.from_config(config(**overrides))


Says = str | IntakeInput
Expect = str | tuple[str, ...]
Row = tuple[Says, IntakeState, Expect]


@dataclass
class Chat:
    """One reporter's intake, stepped through rows of (reporter says, state, reply contains)."""

    ctx: FlowContext
    state: IntakeState
    draft: Draft
    last: StepResult
    now: datetime = T0
    log: list[str] = field(default_factory=list)

    @property
    def reply(self) -> str:
        return "\n".join(self.last.replies)

    def say(self, says: Says, *, after: timedelta = timedelta(minutes=1)) -> StepResult:
        inp = IntakeInput(says) if isinstance(says, str) else says
        self.now += after
        before = self.state
        result = step(self.state, self.draft, inp, self.ctx, self.now)
        if inp.text is not None and command(inp.text) is None and result.state is not before:
            drawn = (result.state in TABLE[before].then or before is S.CONFIRM  # a gap
                     or result.state is S.EXPIRED)
            assert drawn, f"{before} -> {result.state} is not drawn in TABLE"
        self.state, self.draft, self.last = result.state, result.draft, result
        self.log.extend(result.replies)
        return result

    def play(self, rows: Sequence[Row]) -> Chat:
        for says, state, expect in rows:
            self.say(says)
            shown = says if isinstance(says, str) else says.text
            assert self.state is state, f"after {shown!r}: {self.state}, wanted {state}"
            for part in (expect,) if isinstance(expect, str) else expect:
                assert part in self.reply, f"after {shown!r}: {part!r} not in {self.reply!r}"
        return self


def begin(ctx: FlowContext, first: Says = "hi") -> Chat:
    inp = IntakeInput(first) if isinstance(first, str) else first
    result = start(ctx, inp, T0)
    return Chat(ctx, result.state, result.draft, result, log=list(result.replies))


# A path through every question, with the chosen scope (so CHOOSE_OFFICER is on it), to
# CONFIRM, then EDIT and "what happened" (so EDIT and EDIT_NARRATIVE are too).
FULL_PATH: tuple[tuple[str, IntakeState], ...] = (
    ("1", S.HELP_KIND),
    ("1", S.CATEGORY),
    ("1", S.SCOPE),
    ("2", S.CHOOSE_OFFICER),
    ("1", S.EXCLUSIONS),
    ("none", S.NARRATIVE),
    ("He shouted at me after the meeting.", S.NARRATIVE),
    ("done", S.WHEN),
    ("skip", S.WHERE),
    ("skip", S.WHO),
    ("skip", S.SAFETY),
    ("yes", S.CHECKIN),
    ("yes", S.CONFIRM),
    ("edit", S.EDIT),
    ("5", S.EDIT_NARRATIVE),
)
OPEN_STATES = tuple(s for s in IntakeState if s not in {S.SUBMITTED, S.CANCELLED, S.EXPIRED})


def at(ctx: FlowContext, target: IntakeState) -> Chat:
    """A chat standing at `target` on FULL_PATH (first arrival)."""
    chat = begin(ctx)
    for says, state in FULL_PATH:
        if chat.state is target:
            break
        chat.say(says)
        assert chat.state is state
    assert chat.state is target
    return chat


def previous_on_path(target: IntakeState) -> IntakeState:
    """Where BACK from `target` leads on FULL_PATH."""
    order = [S.IDENTITY, *(state for _, state in FULL_PATH)]
    index = order.index(target)
    return order[index - 1] if index else S.IDENTITY
