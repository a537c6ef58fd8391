"""Routing a reporter's message after submission: relay, ask which case, new report, help, stop."""

from __future__ import annotations

import json

import pytest

from handlers.flows.catalog import Catalog
from handlers.flows.reporter import (
    Action,
    CaseState,
    Decision,
    OpenCase,
    PendingChoice,
    ReporterCommand,
    RouterInput,
    RouterMemory,
    decide,
    reporter_command,
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
    assert [p.value for p in PendingChoice] == [  # a storage format: add, never rename
        "which_case", "add_which", "add_target", "reveal_which", "reveal_confirm",
        "reveal_final", "withdraw_which", "withdraw_confirm", "forget_confirm"]
    with pytest.raises(TypeError):
        RouterMemory.from_json({"held": "More."})


# -- reporter commands: STATUS, ADD, REVEAL, WITHDRAW, FORGET ME ------------------------------

NAME, NUMBER = "Alice Example", "+15550001111"
NAMED = (OpenCase("K7F-3Q", "Your report K7F-3Q", named=True),)
STATES = (OpenCase("K7F-3Q", "Your report K7F-3Q", CaseState.TAKEN),
          OpenCase("A2B-9Z", "Your report A2B-9Z", CaseState.WAITING))


def chat(cases: tuple[OpenCase, ...], *texts: str | None, memory: RouterMemory | None = None,
         name: str | None = NAME, number: str | None = NUMBER,
         finished: tuple[OpenCase, ...] = ()) -> list[Decision]:
    """A transcript: each message is decided with the memory the previous one left, as the
    desk persists it (kept when set, cleared when None)."""
    out: list[Decision] = []
    for text in texts:
        decision = decide(RouterInput(text, profile_name=name, number=number), cases, memory,
                          CAT, finished=finished)
        memory = decision.memory
        out.append(decision)
    return out


def reply(decision: Decision) -> str:
    return "\n".join(decision.replies)


def pending(decision: Decision) -> PendingChoice | None:
    return decision.memory.pending if decision.memory is not None else None


def test_status_lists_each_case_in_neutral_words() -> None:
    closed = (OpenCase("ZZ9-11", "Your report ZZ9-11", CaseState.CLOSED),)
    [status] = chat(STATES, "status", finished=closed)
    assert (status.action, status.memory) == (Action.REPLY, None)
    assert status.replies == (("Your reports:\n"
                              "K7F-3Q: someone from the team has it\n"
                              "A2B-9Z: waiting for someone to pick it up\n"
                              "ZZ9-11: closed"),)


@pytest.mark.parametrize("text", ["STATUS", "status?", " Status. ", "status 🙂", "my status"])
def test_status_tolerates_case_punctuation_and_emoji(text: str) -> None:
    [status] = chat(ONE, text)
    assert status.action is Action.REPLY
    assert reply(status) == "Your reports:\nK7F-3Q: waiting for someone to pick it up"


def test_status_while_asked_which_keeps_the_question_and_the_held_text() -> None:
    asked, status = chat(TWO, "He called again.", "status")
    assert status.memory == asked.memory
    assert "Your reports:" in reply(status)
    assert "Which report is this about?" in reply(status)


def test_add_with_one_case_sends_the_next_message_there() -> None:
    add, message = chat(ONE, "add", "He called me twice last night.")
    assert add.replies == (("What would you like to add? Your next message goes to report "
                           "K7F-3Q."),)
    assert add.memory == RouterMemory(pending=PendingChoice.ADD_TARGET, ref="K7F-3Q")
    assert (message.action, message.ref, message.text, message.memory) == (
        Action.RELAY, "K7F-3Q", None, None)
    assert message.replies == ()


def test_add_with_several_cases_asks_which_first() -> None:
    add, picked, message = chat(TWO, "Add", "2", "One more thing.")
    assert pending(add) is PendingChoice.ADD_WHICH
    assert "Which report would you like to add to?" in reply(add)
    assert "2. Your report A2B-9Z" in reply(add)
    assert "Your next message goes to report A2B-9Z." in reply(picked)
    assert picked.memory == RouterMemory(pending=PendingChoice.ADD_TARGET, ref="A2B-9Z")
    assert (message.action, message.ref) == (Action.RELAY, "A2B-9Z")


def test_add_can_name_the_case() -> None:
    [add] = chat(TWO, "add a2b-9z")
    assert add.memory == RouterMemory(pending=PendingChoice.ADD_TARGET, ref="A2B-9Z")


def test_add_then_an_attachment_goes_to_the_case() -> None:
    add = chat(ONE, "add")[0]
    photo = decide(RouterInput(None, has_attachments=True), ONE, add.memory, CAT)
    assert (photo.action, photo.ref, photo.text) == (Action.RELAY, "K7F-3Q", None)


def test_add_cancelled() -> None:
    for no in ("stop", "no", "never mind"):
        _add, cancel = chat(ONE, "add", no)
        assert (cancel.action, cancel.memory) == (Action.REPLY, None)
        assert cancel.replies == ("Okay, nothing was added.",)  # check-ins are not stopped


def test_add_which_with_a_wrong_number_asks_again() -> None:
    _add, wrong = chat(TWO, "add", "7")
    assert pending(wrong) is PendingChoice.ADD_WHICH
    assert "Sorry, I didn't understand that." in reply(wrong)
    assert "Which report would you like to add to?" in reply(wrong)


def test_add_which_answered_with_the_message_itself_keeps_it() -> None:
    _add, message = chat(TWO, "add", "He followed me home.")
    assert message.action is Action.ASK
    assert message.memory is not None
    assert message.memory.held == ("He followed me home.",)
    assert "Which report is this about?" in reply(message)


def test_add_then_another_command_runs_that_command() -> None:
    _add, status = chat(ONE, "add", "status")
    assert (status.action, status.memory) == (Action.REPLY, None)
    assert "Your reports:" in reply(status)


def test_reveal_explains_asks_twice_then_reveals() -> None:
    reveal, yes, final = chat(ONE, "reveal", "yes", "REVEAL")
    explained = reply(reveal)
    assert "report K7F-3Q" in explained
    assert "Alice Example, +15550001111" in explained
    assert "Reply YES" in explained
    assert reveal.memory == RouterMemory(pending=PendingChoice.REVEAL_CONFIRM, ref="K7F-3Q")
    assert yes.replies == ("This cannot be undone. Reply REVEAL to confirm.",)
    assert yes.memory == RouterMemory(pending=PendingChoice.REVEAL_FINAL, ref="K7F-3Q")
    assert (final.action, final.ref, final.memory) == (Action.REVEAL, "K7F-3Q", None)
    assert "now know who you are" in reply(final)


def test_reveal_says_what_is_unknown() -> None:
    [reveal] = chat(ONE, "reveal", name=None, number=None)
    assert "no profile name, number hidden" in reply(reveal)


@pytest.mark.parametrize("answer", ["no", "stop", "later", "okay", "REVEAL"])
def test_reveal_cancelled_at_the_first_step(answer: str) -> None:
    _reveal, cancel = chat(ONE, "reveal", answer)
    assert (cancel.action, cancel.memory) == (Action.REPLY, None)
    assert cancel.replies == ("Okay, nothing was shared.",)


def test_reveal_first_step_takes_any_yes() -> None:
    _reveal, yes = chat(ONE, "reveal", "Yes please!!")
    assert pending(yes) is PendingChoice.REVEAL_FINAL


@pytest.mark.parametrize("answer", ["no", "yes", "reveal me", "STOP", "cancel", "🙂 ok"])
def test_reveal_cancelled_at_the_second_step(answer: str) -> None:
    *_, cancel = chat(ONE, "reveal", "yes", answer)
    assert cancel.action is Action.REPLY
    assert cancel.replies == ("Okay, nothing was shared.",)
    assert cancel.memory is None


def test_a_message_instead_of_a_confirmation_cancels_and_is_passed_on() -> None:
    *_, cancel = chat(ONE, "reveal", "yes", "Actually, he did it again today.")
    assert (cancel.action, cancel.ref, cancel.text) == (Action.RELAY, "K7F-3Q", None)
    assert cancel.replies == ("Okay, nothing was shared.",)


def test_reveal_when_already_named() -> None:
    [reveal] = chat(NAMED, "reveal")
    assert (reveal.action, reveal.memory) == (Action.REPLY, None)
    assert reveal.replies == (("The officers already know who you are on report K7F-3Q, so "
                              "there is nothing to reveal."),)


def test_reveal_offers_only_anonymous_cases() -> None:
    mixed = (NAMED[0], TWO[1])
    [reveal] = chat(mixed, "reveal")
    assert reveal.memory == RouterMemory(pending=PendingChoice.REVEAL_CONFIRM, ref="A2B-9Z")
    which, picked, yes, final = chat(TWO, "reveal", "k7f-3q", "Yes", "reveal")
    assert pending(which) is PendingChoice.REVEAL_WHICH
    assert "Which report should show who you are?" in reply(which)
    assert pending(picked) is PendingChoice.REVEAL_CONFIRM
    assert pending(yes) is PendingChoice.REVEAL_FINAL
    assert (final.action, final.ref) == (Action.REVEAL, "K7F-3Q")


def test_reveal_which_cancelled() -> None:
    _which, cancel = chat(TWO, "reveal", "no")
    assert (cancel.action, cancel.replies, cancel.memory) == (
        Action.REPLY, ("Okay, nothing was shared.",), None)


def test_withdraw_confirmed() -> None:
    ask, yes = chat(ONE, "withdraw", "YES")
    assert "close report K7F-3Q" in reply(ask)
    assert "Reply YES" in reply(ask)
    assert ask.memory == RouterMemory(pending=PendingChoice.WITHDRAW_CONFIRM, ref="K7F-3Q")
    assert (yes.action, yes.ref, yes.memory) == (Action.WITHDRAW, "K7F-3Q", None)
    assert "Your report K7F-3Q is closed" in reply(yes)


@pytest.mark.parametrize("answer", ["no", "No thanks.", "stop", "withdraw", "yess"])
def test_withdraw_cancelled(answer: str) -> None:
    _ask, cancel = chat(ONE, "withdraw", answer)
    assert cancel.action is not Action.WITHDRAW
    assert cancel.replies[0] == "Okay, your report stays open."
    assert cancel.memory is None or answer == "yess"


def test_withdraw_with_several_cases_asks_which() -> None:
    which, picked, yes = chat(TWO, "withdraw", "1", "yes")
    assert "Which report would you like to close?" in reply(which)
    assert pending(which) is PendingChoice.WITHDRAW_WHICH
    assert picked.memory == RouterMemory(pending=PendingChoice.WITHDRAW_CONFIRM, ref="K7F-3Q")
    assert (yes.action, yes.ref) == (Action.WITHDRAW, "K7F-3Q")
    [direct] = chat(TWO, "Withdraw A2B-9Z.")
    assert direct.memory == RouterMemory(pending=PendingChoice.WITHDRAW_CONFIRM, ref="A2B-9Z")


def test_help_at_a_confirmation_cancels_and_helps() -> None:
    _ask, helped = chat(ONE, "withdraw", "help")
    assert helped.action is Action.HELP
    assert helped.replies[0] == "Okay, your report stays open."
    assert "send WITHDRAW to close a report" in helped.replies[1]
    assert helped.memory is None


def test_a_case_closed_meanwhile_is_not_withdrawn() -> None:
    ask = chat(TWO, "withdraw", "1")[-1]
    late = decide(RouterInput("yes"), (TWO[1],), ask.memory, CAT)  # K7F-3Q closed meanwhile
    assert (late.action, late.memory) == (Action.REPLY, None)
    assert late.replies == ("Okay, your report stays open.",)


def test_forget_me_confirmed() -> None:
    ask, forget = chat(TWO, "Forget me", "FORGET")
    assert "K7F-3Q, A2B-9Z" in reply(ask)
    assert "Reply FORGET to confirm" in reply(ask)
    assert ask.memory == RouterMemory(pending=PendingChoice.FORGET_CONFIRM)
    assert (forget.action, forget.memory) == (Action.FORGET, None)
    assert "link between you and them is deleted" in reply(forget)
    assert "until the retention period ends" in reply(forget)


@pytest.mark.parametrize("answer", ["yes", "no", "forget me", "stop", "forgot"])
def test_forget_me_cancelled(answer: str) -> None:
    _ask, cancel = chat(ONE, "forget me", answer)
    assert cancel.action is not Action.FORGET
    assert cancel.replies[0] == "Okay, nothing was deleted."


def test_forget_me_cancelled_by_a_message_passes_it_on() -> None:
    _ask, cancel = chat(ONE, "forget me", "Sorry, I meant to say he called again.")
    assert (cancel.action, cancel.ref) == (Action.RELAY, "K7F-3Q")
    assert cancel.replies == ("Okay, nothing was deleted.",)


def test_a_command_while_asked_which_says_the_held_text_was_not_passed_on() -> None:
    _asked, withdraw = chat(TWO, "Wrong chat, sorry.", "withdraw")
    assert withdraw.replies[0] == "Okay, I haven't passed that on."
    assert pending(withdraw) is PendingChoice.WITHDRAW_WHICH


@pytest.mark.parametrize("text", [
    "I want to withdraw from the committee because of him.",
    "Can I add that he was drunk?",
    "status update: he apologised",
    "Please don't reveal my name to Rowan",
    "forget it",
    "Forget me not",
    "add: he called",
    "withdraw?? no, I just want it to stop",
])
def test_commands_never_swallow_a_report(text: str) -> None:
    assert reporter_command(text) is None
    [said] = chat(ONE, text)
    assert (said.action, said.ref, said.text, said.replies) == (
        Action.RELAY, "K7F-3Q", None, ())


@pytest.mark.parametrize(("text", "expected"), [
    ("STATUS", (ReporterCommand.STATUS, None)),
    ("  Withdraw! ", (ReporterCommand.WITHDRAW, None)),
    ("withdraw 🙏", (ReporterCommand.WITHDRAW, None)),
    ("Forget me.", (ReporterCommand.FORGET, None)),
    ("reveal\u2026", (ReporterCommand.REVEAL, None)),
    ("ADD", (ReporterCommand.ADD, None)),
    ("add k7f-3q", (ReporterCommand.ADD, "K7F-3Q")),
    ("status k7f-3q", None),  # STATUS takes no case
    ("forget", None),
])
def test_command_words(text: str, expected: object) -> None:
    assert reporter_command(text) == expected


def test_commands_need_an_open_case() -> None:
    for text in ("status", "withdraw", "forget me"):
        [said] = chat((), text)
        assert said.action is Action.NEW_REPORT


def test_help_lists_the_commands() -> None:
    [helped] = chat(ONE, "help")
    for word in ("STATUS", "ADD", "NEW", "REVEAL", "WITHDRAW", "FORGET ME", "STOP"):
        assert f"send {word} " in reply(helped)


def test_command_memory_survives_json() -> None:
    reveal = chat(ONE, "reveal")[0]
    assert reveal.memory is not None
    stored = json.loads(json.dumps(reveal.memory.to_json()))
    assert stored["pending"] == "reveal_confirm"
    assert RouterMemory.from_json(stored) == reveal.memory
    assert "ref" not in RouterMemory().to_json()  # old rows and new rows read the same
    with pytest.raises(TypeError):
        RouterMemory.from_json({"pending": "reveal_final", "ref": 7})
