"""intake.md is the diagram drawn from the transition table, and the table is complete."""

from __future__ import annotations

from pathlib import Path

from handlers.flows import intake
from handlers.flows.intake import ENDED, TABLE, IntakeState, markdown, mermaid

DIAGRAM = Path(intake.__file__).with_name("intake.md")


def test_intake_md_is_up_to_date() -> None:
    assert DIAGRAM.read_text(encoding="utf-8") == markdown(), (
        "handlers/flows/intake.md is stale; regenerate it with the command written in it"
    )


def test_every_open_state_has_a_row_and_every_edge_a_target() -> None:
    assert set(TABLE) == set(IntakeState) - ENDED
    for state, node in TABLE.items():
        assert node.then, state
        for to in node.then:
            assert to in TABLE or to in ENDED, (state, to)


def test_every_state_is_drawn() -> None:
    drawn = mermaid()
    for state in IntakeState:
        assert f" {state.value} " in drawn or f" {state.value}\n" in drawn, state
    assert drawn.startswith("stateDiagram-v2\n")
