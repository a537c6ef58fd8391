"""Routing a reporter's message after submission: relay, ask which case, new report, help, stop."""

from __future__ import annotations

import json

import pytest

from handlers.flows.catalog import Catalog
from handlers.flows.reporter import (
    Action,
    Decision,
    OpenCase,
    PendingChoice,
    RouterInput,
    RouterMemory,
    decide,
)

CAT = Catalog()
ONE = (OpenCase("K7F-3Q", "Your report K7F-3Q"),)
TWO = (OpenCase("K7F-3Q", "Your report K7F-3Q"), OpenCase("A2B-9Z", "Your report A2B-9Z"))


def say(cases: tuple[OpenCase, ...], text: str | None, memory: RouterMemory | None = None, *,
        attachments: bool = False, quoted: str | None = None) -> Decision:
    return decide(RouterInput(text, attachments, quoted), cases, memory, CAT)


# (open cases, reporter says, action, ref, text, keep_message, reply contains)
Row = tuple[tuple[OpenCase, ...], str, Action, str | None, str | None, bool, str]
TABLE: list[Row] = [
    ((), "Hello, something else happened", Action.NEW_REPORT, None, None, True, ""),
    ((), "help", Action.NEW_REPORT, None, None, True, ""),
    ((), "STOP", Action.NEW_REPORT, None, None, True, ""),
    (ONE, "He messaged me again last night.", Action.RELAY, "K7F-3Q", None, False, ""),
    (ONE, "new report", Action.NEW_REPORT, None, None, False, ""),
    (ONE, " NEW ", Action.NEW_REPORT, None, None, False, ""),
    (ONE, "report", Action.NEW_REPORT, None, None, False, ""),
    (ONE, "HELP", Action.HELP, None, None, False, "send NEW to start a separate report"),
    (ONE, "back", Action.HELP, None, None, False, "send NEW"),
    (ONE, "STOP", Action.STOP, None, None, False, "no more check-in messages"),
    (TWO, "a2b-9z: and another thing", Action.RELAY, "A2B-9Z", "a2b-9z: and another thing",
     False, ""),
    (TWO, "He messaged me again.", Action.ASK, None, None, False, "1. Your report K7F-3Q"),
]


@pytest.mark.parametrize("row", TABLE, ids=lambda row: f"{len(row[0])}-{row[1]}")
def test_routing_table(row: Row) -> None:
    cases, text, action, ref, relayed, keep, reply = row
    result = say(cases, text)
    assert (result.action, result.ref, result.text, result.keep_message) == (
        action, ref, relayed, keep)
    assert reply in "\n".join(result.replies)


def test_several_cases_ask_then_the_answer_relays_the_held_messages() -> None:
    asked = say(TWO, "He messaged me again.")
    assert asked.action is Action.ASK
    assert asked.memory == RouterMemory(("He messaged me again.",), ("K7F-3Q", "A2B-9Z"))
    assert "2. Your report A2B-9Z" in asked.replies[0]
    assert "He messaged" not in asked.replies[0]
    more = say(TWO, "And he called.", asked.memory)
    assert more.action is Action.ASK
    assert more.memory is not None
    assert more.memory.held == ("He messaged me again.", "And he called.")
    assert "I'll hold on to that" in more.replies[0]
    picked = say(TWO, " 2. ", more.memory)
    assert (picked.action, picked.ref, picked.memory) == (Action.RELAY, "A2B-9Z", None)
    assert picked.text == "He messaged me again.\n\nAnd he called."


def test_the_answer_can_be_the_reference() -> None:
    asked = say(TWO, "More.")
    picked = say(TWO, "k7f-3q", asked.memory)
    assert (picked.action, picked.ref, picked.text) == (Action.RELAY, "K7F-3Q", "More.")


def test_a_wrong_number_re_asks_without_holding_it() -> None:
    asked = say(TWO, "More.")
    again = say(TWO, "7", asked.memory)
    assert again.action is Action.ASK
    assert again.memory is not None
    assert again.memory.held == ("More.",)
    assert "Sorry, I didn't understand that." in again.replies[0]


def test_a_case_closed_meanwhile_is_not_picked() -> None:
    asked = say(TWO, "More.")
    again = say((TWO[1],), "1", asked.memory)  # K7F-3Q was number 1, now closed
    assert again.action is Action.ASK
    assert again.memory == RouterMemory(("More.",), ("A2B-9Z",))


def test_new_while_asked_starts_a_report_with_the_held_text() -> None:
    asked = say(TWO, "Something different happened.")
    new = say(TWO, "new", asked.memory)
    assert (new.action, new.text, new.keep_message, new.memory) == (
        Action.NEW_REPORT, "Something different happened.", False, None)


def test_stop_while_asked_discards_the_held_text() -> None:
    asked = say(TWO, "Oops, wrong chat.")
    stop = say(TWO, "Stop", asked.memory)
    assert (stop.action, stop.memory) == (Action.DISCARD, None)
    assert "I haven't passed that on" in stop.replies[0]


def test_help_while_asked_keeps_the_question_open() -> None:
    asked = say(TWO, "More.")
    helped = say(TWO, "help", asked.memory)
    assert helped.action is Action.HELP
    assert helped.memory == asked.memory
    assert "Which report is this about?" in helped.replies[0]


def test_a_quote_of_a_case_message_relays_to_that_case() -> None:
    quoted = say(TWO, "Yes, that one.", quoted="A2B-9Z")
    assert (quoted.action, quoted.ref, quoted.text) == (Action.RELAY, "A2B-9Z", "Yes, that one.")
    asked = say(TWO, "More.")
    quoted = say(TWO, "and this", asked.memory, quoted="K7F-3Q")
    assert (quoted.ref, quoted.text) == ("K7F-3Q", "More.\n\nand this")


def test_a_quote_of_a_closed_case_is_not_trusted() -> None:
    assert say(TWO, "More.", quoted="ZZZ-99").action is Action.ASK


def test_attachments_alone() -> None:
    photo = say(ONE, None, attachments=True)
    assert (photo.action, photo.ref, photo.text) == (Action.RELAY, "K7F-3Q", None)
    asked = say(TWO, None, attachments=True)
    assert asked.action is Action.ASK
    assert "please send them again" in asked.replies[0]


def test_empty_messages_are_ignored_and_keep_the_question() -> None:
    asked = say(TWO, "More.")
    empty = say(TWO, "  ", asked.memory)
    assert (empty.action, empty.replies, empty.memory) == (Action.IGNORE, (), asked.memory)


def test_memory_survives_json() -> None:
    asked = say(TWO, "More.")
    assert asked.memory is not None
    stored = json.dumps(asked.memory.to_json())
    assert RouterMemory.from_json(json.loads(stored)) == asked.memory
    assert RouterMemory.from_json({}) == RouterMemory()
    assert [p.value for p in PendingChoice] == ["which_case"]
    with pytest.raises(TypeError):
        RouterMemory.from_json({"held": "More."})
