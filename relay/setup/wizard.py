"""Completing `relay init`'s answers: from flags alone, or by asking on the terminal.

Interactive: each missing value is asked with its default shown, an invalid answer is
re-asked with the reason, and a summary is shown before anything is written.
Non-interactive: every required value must come from a flag; each missing or invalid
one is one line naming the flag.
"""

from __future__ import annotations

from dataclasses import replace

import typer

from relay.setup.answers import (
    EXAMPLE_NAMES,
    PROMPTS,
    SECRET_LIKE,
    Answers,
    asked,
    check,
    defaults,
    flag,
    required,
)

_HINTS = {
    "org_name": "the organisation's name",
    "bot_number": "the bot's Signal number, e.g. +4915112345678",
    "coordinator_name": "the first coordinator's display name",
    "coordinator_aci": "the first coordinator's Signal account id (a UUID)",
}


class AnswersError(Exception):
    """Flags missing or invalid: one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _flag_problems(answers: Answers) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, value in vars(answers).items():
        if value is not None:
            problem = check(name, value)
            if problem is not None:
                problems.append((name, problem))
    if answers.example in EXAMPLE_NAMES:
        problems.extend(
            (name, (f"only used with --example blank; with --example {answers.example}, "
                    "replace the example's [[officers]] in the written file instead"))
            for name in ("coordinator_name", "coordinator_aci")
            if getattr(answers, name) is not None
        )
    return problems


def complete_from_flags(given: Answers) -> Answers:
    """Non-interactive: check the flags and fill in defaults; AnswersError if incomplete."""
    answers = replace(given, example=given.example or "blank")
    problems = [f"{flag(name)}: {problem}" for name, problem in _flag_problems(answers)]
    if any(line.startswith("--example:") for line in problems):
        raise AnswersError(problems)
    problems.extend(
        f"{flag(name)} is required with --non-interactive ({_HINTS.get(name, name)})"
        for name in required(answers)
        if getattr(answers, name) is None
    )
    if problems:
        raise AnswersError(problems)
    return _with_defaults(answers)


def ask_missing(given: Answers) -> Answers:
    """Interactive: ask for every value not given (or given but invalid)."""
    answers = replace(given)
    for name, problem in _flag_problems(answers):
        typer.echo(f"{flag(name)}: {problem}", err=True)
        setattr(answers, name, None)
    done: set[str] = set()
    while True:
        pending = [n for n in asked(answers) if n not in done and getattr(answers, n) is None]
        if not pending:
            break
        name = pending[0]
        setattr(answers, name, _ask(name, defaults(answers).get(name)))
        done.add(name)
    return _with_defaults(answers)


def _ask(name: str, default: str | None) -> str:
    if name == "example" and default is None:
        default = "blank"
    while True:
        value = str(typer.prompt(PROMPTS[name], default=default,
                                 show_default=bool(default))).strip()
        problem = check(name, value)
        if problem is None:
            return value
        typer.echo(f"  {problem}; please try again", err=True)


def _with_defaults(answers: Answers) -> Answers:
    filled = replace(answers)
    for name, value in defaults(filled).items():
        if getattr(filled, name) is None:
            setattr(filled, name, value)
    if filled.webhook_listen == "":
        filled.webhook_listen = None
    return filled


def summary(answers: Answers) -> list[str]:
    """What will be written, one line per answer (numbers and ACIs not echoed)."""
    lines = []
    for name in [*asked(answers), "webhook_listen"]:
        value = getattr(answers, name)
        if value is None:
            continue
        shown = "(given, not shown)" if name in SECRET_LIKE else (value or "(none)")
        lines.append(f"  {flag(name)[2:]:<18} {shown}")
    return lines
