"""The catalog: every string by id, overrides checked against the defaults' placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.flows import intake
from handlers.flows.catalog import DEFAULT_TEXTS, Catalog, CatalogError
from tests.unit.flows.chat import T0, context

FLOWS = Path(intake.__file__).parent
ROOT = FLOWS.parent.parent
SOURCES = "".join(
    p.read_text(encoding="utf-8")
    for folder in ("handlers", "relay")
    for p in (ROOT / folder).rglob("*.py")
    if p.name != "catalog.py"
)


def test_the_ids_the_lead_relies_on_exist_with_their_placeholders() -> None:
    assert Catalog.placeholders("greeting") == {"org"}
    assert Catalog.placeholders("receipt") == {"ref", "next_steps"}
    assert Catalog.placeholders("urgent_help") == frozenset()
    assert Catalog.placeholders("next_steps") == frozenset()
    assert Catalog.ids() == tuple(DEFAULT_TEXTS)


@pytest.mark.parametrize("msg_id", list(DEFAULT_TEXTS))
def test_every_text_renders_and_is_used(msg_id: str) -> None:
    values = {name: f"<{name}>" for name in Catalog.placeholders(msg_id)}
    rendered = Catalog().render(msg_id, **values)
    assert "{" not in rendered
    assert "}" not in rendered
    for value in values.values():
        assert value in rendered
    assert f'"{msg_id}"' in SOURCES, f"{msg_id} is never said"


def test_values_are_inserted_verbatim() -> None:
    assert Catalog().render("reporter_case_label", ref="{org}") == "Your report {org}"


def test_overrides_replace_defaults() -> None:
    ctx = context(texts={"greeting": "Welcome to {org}'s line.", "urgent_help": "Call 0800 123"})
    result = intake.start(ctx, intake.IntakeInput("hi"), T0)
    assert result.replies[0] == "Welcome to Riverside Branch's line."


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"greting": "Hi"}, "texts.greting: unknown message id; did you mean 'greeting'?"),
    ({"greeting": "Hi {name}"}, "texts.greeting: unknown placeholder {name}; it can use {org}"),
    ({"urgent_help": "Call {org}"}, "texts.urgent_help: unknown placeholder {org}; it takes no"),
    ({"greeting": "Hi {org.__class__}"}, "texts.greeting: write placeholders as {name}"),
    ({"greeting": "Hi {0}"}, "texts.greeting: write placeholders as {name}"),
    ({"greeting": "Hi {org!r}"}, "texts.greeting: write placeholders as {name}"),
    ({"greeting": "Hi {org:>10}"}, "texts.greeting: write placeholders as {name}"),
    ({"greeting": "Hi {org"}, "texts.greeting:"),
    ({"greeting": "  "}, "texts.greeting: is empty"),
    ({"receipt": "Thanks! {next_steps}"}, "texts.receipt: must keep {ref}"),
])
def test_bad_overrides_are_named(overrides: dict[str, str], problem: str) -> None:
    problems = Catalog.check_overrides(overrides)
    assert len(problems) == 1
    assert problems[0].startswith(problem)
    with pytest.raises(CatalogError):
        Catalog(overrides)


def test_good_overrides_pass() -> None:
    good = {"greeting": "Hello from {org}. {{braces}} are fine.", "urgent_help": "Call 116 123."}
    assert Catalog.check_overrides(good) == []
    assert Catalog(good).render("greeting", org="X") == "Hello from X. {braces} are fine."
