"""The intake conversation as transcripts: (reporter says, state after, reply contains)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from handlers.flows.intake import (
    CATEGORY_OTHER,
    MAX_PART_CHARS,
    TABLE,
    ConversationEndedError,
    Draft,
    DraftFormatError,
    IntakeInput,
    IntakeState,
    Outcome,
    excludable,
    reask,
    receipt,
    recipients,
    start,
    step,
    summary,
)
from tests.unit.flows.chat import (
    FULL_PATH,
    OPEN_STATES,
    PDF,
    PHOTO,
    T0,
    at,
    begin,
    config,
    context,
    previous_on_path,
)

S = IntakeState
CTX = context()


def question(chat_state: IntakeState, draft: Draft) -> str:
    return TABLE[chat_state].ask(draft, CTX)


# --- whole conversations ---------------------------------------------------------------------


def test_anonymous_report_to_the_whole_team_minus_one_officer() -> None:
    chat = begin(CTX, "hi")
    assert chat.state is S.IDENTITY
    greeting, first_question = chat.last.replies
    assert "Riverside Branch conduct line" in greeting
    assert "STOP" in greeting
    assert "can see your Signal account" in greeting
    assert "never see your number, name or profile" in greeting
    assert "1. Anonymous" in first_question
    chat.play([
        (" Anonymous 🙂", S.HELP_KIND, ("You're anonymous", "1. Support: A person to talk to")),
        ("2", S.CATEGORY, ("What is it about?", "4. Something else")),
        ("harassment", S.SCOPE, "1. The whole Regenerative Culture group"),
        ("1", S.EXCLUSIONS, ("must NOT see", "1. Jane Doe", "2. Sam Rivera", "3. Robin Lee")),
        ("2", S.NARRATIVE, "Send DONE"),
        ("At the branch meeting on Tuesday he kept interrupting me.", S.NARRATIVE, "Got it"),
        ("Then he followed me to the bus stop.", S.NARRATIVE, "Got it"),
        (IntakeInput(None, (PHOTO,)), S.NARRATIVE, "Got a photo \u2014 noted."),
        ("DONE", S.WHEN, "When did it happen?"),
        ("last Tuesday", S.WHERE, "Where did it happen?"),
        ("skip", S.WHO, "Who was involved?"),
        ("SKIP", S.SAFETY, "Are you safe right now?"),
        ("y", S.CHECKIN, "check in"),
        ("no", S.CONFIRM, ("Nothing has been sent yet", "Your identity: Anonymous",
                           "Help wanted: Prevention", "About: Harassment",
                           "Who sees it: The whole Regenerative Culture group, but not Sam Rivera",
                           "What happened: 2 messages and 1 attachment",
                           "When: last Tuesday", "Where: \u2014", "Check-ins: No", "SEND")),
    ])
    result = chat.say("send")
    assert result.state is S.SUBMITTED
    assert result.outcome is Outcome.SUBMIT
    assert result.replies == ()  # the caller sends the receipt once the case is committed
    d = result.draft
    assert (d.named, d.help_kind, d.category, d.scope_id) == (False, "prevention", "harassment",
                                                              "regen")
    assert d.excluded == ("sam",)
    assert d.narrative == ("At the branch meeting on Tuesday he kept interrupting me.",
                           "Then he followed me to the bus stop.")
    assert d.attachments == (PHOTO,)
    assert (d.when, d.where, d.who, d.safe, d.checkin_ok) == ("last Tuesday", None, None, True,
                                                              False)
    assert recipients(d, CTX) == ("jane", "robin")
    assert "He kept" not in "\n".join(chat.log)  # report text is never echoed back


def test_named_report_to_one_chosen_officer() -> None:
    chat = begin(CTX, "Hello")
    chat.play([
        ("named", S.HELP_KIND, "the officers will see who you are"),
        ("support", S.CATEGORY, ""),
        ("4", S.SCOPE, ""),
        ("one person", S.CHOOSE_OFFICER, ("Who would you like to talk to?", "1. Jane Doe",
                                          "2. Sam Rivera")),
        ("sam", S.EXCLUSIONS, ("1. Jane Doe", "2. Alex Kim", "3. Robin Lee")),
        ("1 and 2", S.NARRATIVE, ""),
        ("It happened online.\nDONE", S.WHEN, ""),
        ("March", S.WHERE, ""),
        ("the group chat", S.WHO, ""),
        ("someone from the east branch", S.SAFETY, ""),
        ("I'm safe", S.CHECKIN, ""),
        ("yes please", S.CONFIRM, ("Your identity: Named", "About: Something else",
                                   ("Who sees it: Sam Rivera, with a support person, but not "
                                    "Jane Doe, Alex Kim"),
                                   "What happened: 1 message", "Safe right now: Yes")),
        ("SEND", S.SUBMITTED, ()),
    ])
    d = chat.draft
    assert (d.named, d.category, d.scope_id, d.chosen_officer) == (True, CATEGORY_OTHER, "one",
                                                                   "sam")
    assert d.excluded == ("jane", "alex")
    assert d.narrative == ("It happened online.",)
    assert recipients(d, CTX) == ("sam", "robin")


def test_reports_are_named_when_anonymity_is_off() -> None:
    ctx = context(intake={"allow_anonymous": False})
    result = start(ctx, IntakeInput("hi"), T0)
    assert result.state is S.HELP_KIND
    assert result.draft.named is True
    assert "Reports to Riverside Branch are named" in result.replies[1]
    assert "Anonymous" not in "\n".join(result.replies[1:])
    back = step(result.state, result.draft, IntakeInput("back"), ctx, T0)
    assert back.state is S.HELP_KIND
    assert "first question" in back.replies[0]
    chat = begin(ctx)
    for says in ("1", "1", "1", "2", "Nothing else to add. DONE", "skip", "skip", "skip", "yes"):
        chat.say(says)
    chat.say("no")
    assert chat.state is S.CONFIRM
    chat.say("edit")
    assert "Anonymous or named" not in chat.reply
    assert "1. Kind of help" in chat.reply


def test_exclusions_are_not_asked_when_the_org_turns_them_off() -> None:
    ctx = context(intake={"ask_exclusions": False})
    chat = begin(ctx)
    chat.play([("1", S.HELP_KIND, ""), ("1", S.CATEGORY, ""), ("1", S.SCOPE, ""),
               ("1", S.NARRATIVE, "Tell us what happened")])
    chat = begin(ctx)
    chat.play([("1", S.HELP_KIND, ""), ("1", S.CATEGORY, ""), ("1", S.SCOPE, ""),
               ("2", S.CHOOSE_OFFICER, ""), ("2", S.NARRATIVE, "")])


# --- the global fallbacks in every state ------------------------------------------------------


@pytest.mark.parametrize("state", OPEN_STATES)
@pytest.mark.parametrize("says", ["STOP", "stop", " Cancel! ", "cancel"])
def test_stop_or_cancel_deletes_the_draft_in_every_state(state: IntakeState, says: str) -> None:
    chat = at(CTX, state)
    result = chat.say(says)
    assert result.state is S.CANCELLED
    assert result.outcome is Outcome.CANCELLED
    assert result.draft == Draft()
    assert "Nothing was sent" in result.replies[0]
    assert "deleted" in result.replies[0]


@pytest.mark.parametrize("state", OPEN_STATES)
def test_help_explains_and_asks_the_same_question_again(state: IntakeState) -> None:
    chat = at(CTX, state)
    before = chat.draft
    result = chat.say("HELP")
    assert result.state is state
    assert len(result.replies) == 1
    assert "Nothing is sent until you reply SEND" in result.replies[0]
    assert result.replies[0].endswith(question(state, before))
    assert replace(result.draft, updated_at=None) == replace(before, updated_at=None)


@pytest.mark.parametrize("state", OPEN_STATES)
def test_back_returns_to_the_previous_question(state: IntakeState) -> None:
    chat = at(CTX, state)
    result = chat.say("back")
    expected = previous_on_path(state)
    assert result.state is expected
    assert result.replies[0].endswith(question(expected, result.draft))
    if state is S.IDENTITY:
        assert "This is the first question." in result.replies[0]


def test_back_twice_then_forward_keeps_every_answer() -> None:
    chat = at(CTX, S.EXCLUSIONS)
    chat.play([
        ("back", S.CHOOSE_OFFICER, "Who would you like to talk to?"),
        ("back", S.SCOPE, "Who should see your report?"),
        ("2", S.CHOOSE_OFFICER, ""),
        ("2", S.EXCLUSIONS, "1. Jane Doe"),
    ])
    assert (chat.draft.named, chat.draft.help_kind, chat.draft.category) == (False, "support",
                                                                             "harassment")


GARBAGE: dict[IntakeState, tuple[str, ...]] = {
    S.EXCLUSIONS: ("xyzzy", "99", "\U0001f642", "yes no"),  # "0" means nobody
    S.NARRATIVE: ("done",),  # nothing written yet: DONE is re-asked
    S.WHEN: ("\U0001f642", "..."),
    S.WHERE: ("\U0001f642",),
    S.WHO: ("?!",),
}


@pytest.mark.parametrize("state", OPEN_STATES)
def test_anything_not_understood_re_asks_and_keeps_the_draft(state: IntakeState) -> None:
    for says in GARBAGE.get(state, ("xyzzy", "99", "\U0001f642", "0", "yes no")):
        chat = at(CTX, state)
        if state is S.NARRATIVE:
            assert chat.draft.narrative == ()
        before = chat.draft
        result = chat.say(says)
        assert result.state is state, says
        assert result.outcome is Outcome.CONTINUE
        assert replace(result.draft, updated_at=None) == replace(before, updated_at=None), says
        assert result.replies[0].endswith(question(state, before)), says
        assert says not in result.replies[0].replace(question(state, before), "")


@pytest.mark.parametrize("state", OPEN_STATES)
def test_empty_input_needs_no_reply(state: IntakeState) -> None:
    chat = at(CTX, state)
    for inp in (IntakeInput(None), IntakeInput(""), IntakeInput("  \n")):
        result = step(state, chat.draft, inp, CTX, chat.now + timedelta(minutes=1))
        assert (result.state, result.draft, result.replies, result.outcome) == (
            state, chat.draft, (), Outcome.CONTINUE)


@pytest.mark.parametrize("state", OPEN_STATES)
def test_restart_re_asks_the_same_question(state: IntakeState) -> None:
    chat = at(CTX, state)
    result = reask(state, chat.draft, CTX)
    assert (result.state, result.draft, result.outcome) == (state, chat.draft, Outcome.CONTINUE)
    (reply,) = result.replies
    assert reply.startswith("Sorry, I was restarted \u2014 we were at:\n\n")
    assert reply.endswith(question(state, chat.draft))


@pytest.mark.parametrize("state", OPEN_STATES)
def test_every_draft_survives_json(state: IntakeState) -> None:
    chat = at(CTX, state)
    chat.say(IntakeInput("a note\u200d with ZWJ", (PHOTO,)))
    stored = json.dumps(chat.draft.to_json())
    assert Draft.from_json(json.loads(stored)) == chat.draft


@pytest.mark.parametrize("ended", [S.SUBMITTED, S.CANCELLED, S.EXPIRED])
def test_an_ended_intake_cannot_be_stepped(ended: IntakeState) -> None:
    with pytest.raises(ConversationEndedError):
        step(ended, Draft(), IntakeInput("hello"), CTX, T0)
    with pytest.raises(ConversationEndedError):
        reask(ended, Draft(), CTX)


# --- first contact ----------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["hi", "Hello!", "help", "hey, I need help", "I want to report",
                                   "Is this the conduct line?", "", None])
def test_a_short_hello_is_not_kept_as_report_text(first: str | None) -> None:
    result = start(CTX, IntakeInput(first), T0)
    assert result.draft.narrative == ()
    assert "kept" not in "\n".join(result.replies)
    assert result.draft.started_at == result.draft.updated_at == T0


@pytest.mark.parametrize("first", [
    "Someone at the May meeting grabbed my arm and wouldn't let go.",
    "I was assaulted",
    "Hi. He keeps texting me.",
])
def test_a_first_message_that_is_the_report_is_kept(first: str) -> None:
    chat = begin(CTX, first)
    assert chat.draft.narrative == (first,)
    assert "I've kept what you sent as the start of your report." in chat.last.replies[1]
    for says, _ in FULL_PATH[:6]:
        chat.say(says)
    assert chat.state is S.NARRATIVE
    assert "I already have 1 message" in chat.reply
    chat.play([("done", S.WHEN, "")])
    assert chat.draft.narrative == (first,)


def test_a_first_message_with_a_photo_keeps_the_photo() -> None:
    result = start(CTX, IntakeInput(None, (PHOTO, PDF)), T0)
    assert result.draft.attachments == (PHOTO, PDF)
    assert "Got 2 attachments \u2014 noted." in result.replies[1]


def test_stop_as_the_first_message_ends_at_once() -> None:
    result = start(CTX, IntakeInput("STOP"), T0)
    assert (result.state, result.outcome) == (S.CANCELLED, Outcome.CANCELLED)


# --- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("says", "named"), [
    ("1", False), ("1.", False), ("  2  ", True), ("ANONYMOUS", False), ("anon", False),
    ("Named!", True), ("2\ufe0f\u20e3", True), ("\uff12", True), ("my name", True),
])
def test_identity_by_number_or_word(says: str, named: bool) -> None:
    result = begin(CTX).say(says)
    assert result.state is S.HELP_KIND
    assert result.draft.named is named


@pytest.mark.parametrize("says", ["yes", "no", "not anonymous", "3", "maybe"])
def test_identity_is_never_guessed(says: str) -> None:
    result = begin(CTX).say(says)
    assert result.state is S.IDENTITY
    assert result.draft.named is None


@pytest.mark.parametrize(("says", "scope"), [
    ("1", "regen"), ("whole group", "regen"), ("regenerative culture", "regen"),
    ("one person", "one"), ("support person", "one"), ("2", "one"),
])
def test_scope_by_number_or_words_from_its_label(says: str, scope: str) -> None:
    chat = at(CTX, S.SCOPE)
    chat.say(says)
    assert chat.draft.scope_id == scope


@pytest.mark.parametrize(("state", "says"), [(S.SCOPE, "the"), (S.SCOPE, "plus a"),
                                             (S.EDIT, "what")])
def test_filler_or_ambiguous_words_re_ask(state: IntakeState, says: str) -> None:
    chat = at(CTX, state)
    chat.play([(says, state, "Sorry, I didn't understand that.")])


@pytest.mark.parametrize(("says", "excluded"), [
    ("none", ()), ("0", ()), ("No", ()), ("nobody", ()), ("2", ("sam",)),
    ("1 3", ("jane", "robin")), ("1, 3", ("jane", "robin")), ("3 and 1", ("robin", "jane")),
    ("2 2", ("sam",)), ("Sam", ("sam",)), ("robin lee", ("robin",)),
])
def test_exclusions_by_numbers_names_or_none(says: str, excluded: tuple[str, ...]) -> None:
    chat = begin(CTX)
    chat.play([("1", S.HELP_KIND, ""), ("1", S.CATEGORY, ""), ("1", S.SCOPE, ""),
               ("1", S.EXCLUSIONS, ""), (says, S.NARRATIVE, "")])
    assert chat.draft.excluded == excluded


@pytest.mark.parametrize("says", ["4", "1 4", "0 1", "1 x", "jane and sam"])
def test_exclusions_out_of_range_re_ask(says: str) -> None:
    chat = at(CTX, S.EXCLUSIONS)
    chat.play([(says, S.EXCLUSIONS, ("Sorry, I didn't understand that.", "must NOT see"))])
    assert chat.draft.excluded == ()


def test_excluding_everyone_is_refused() -> None:
    chat = begin(CTX)
    chat.play([("1", S.HELP_KIND, ""), ("1", S.CATEGORY, ""), ("1", S.SCOPE, ""),
               ("1", S.EXCLUSIONS, ""),
               ("1 2 3", S.EXCLUSIONS, ("would leave nobody to read your report",
                                        "must NOT see")),
               ("1 2", S.NARRATIVE, "")])
    assert recipients(chat.draft, CTX) == ("robin",)


def test_the_chosen_officer_cannot_be_excluded() -> None:
    chat = at(CTX, S.EXCLUSIONS)  # chose Jane Doe
    assert chat.draft.chosen_officer == "jane"
    assert "Jane Doe" not in chat.reply
    assert [p.id for p in excludable(chat.draft, CTX)] == ["sam", "alex", "robin"]
    chat.play([("1 2 3", S.NARRATIVE, "")])
    assert recipients(chat.draft, CTX) == ("jane",)
    forged = replace(chat.draft, excluded=("jane", "alex", "robin"))
    assert recipients(forged, CTX) == ("jane",)


def test_narrative_many_messages_attachments_and_done() -> None:
    chat = at(CTX, S.NARRATIVE)
    chat.play([
        ("First part.", S.NARRATIVE, "Got it. Keep going"),
        (IntakeInput("Here is the screenshot", (PHOTO,)), S.NARRATIVE,
         ("Got a photo \u2014 noted.", "Got it")),
        (IntakeInput(None, (PDF,)), S.NARRATIVE,
         ("Got a file \u2014 noted.", "Keep going")),
        (IntakeInput("", (replace(PHOTO, content_type="audio/aac"),)), S.NARRATIVE,
         "Got a voice message"),
        (" Done. ", S.WHEN, "When did it happen?"),
    ])
    assert chat.draft.narrative == ("First part.", "Here is the screenshot")
    assert [a.content_type for a in chat.draft.attachments] == [
        "image/jpeg", "application/pdf", "audio/aac"]


def test_done_on_the_last_line_finishes_and_keeps_the_rest() -> None:
    chat = at(CTX, S.NARRATIVE)
    chat.play([("It was at the social.\nHe would not stop.\ndone", S.WHEN, "")])
    assert chat.draft.narrative == ("It was at the social.\nHe would not stop.",)


def test_a_message_that_only_says_stop_inside_a_line_is_report_text() -> None:
    chat = at(CTX, S.NARRATIVE)
    chat.play([("I told him to stop", S.NARRATIVE, "Got it")])
    assert chat.draft.narrative == ("I told him to stop",)


def test_done_with_nothing_written_re_asks() -> None:
    chat = at(CTX, S.NARRATIVE)
    chat.play([("DONE", S.NARRATIVE, ("You haven't told me anything yet.", "Tell us what"))])


def test_attachments_alone_are_enough_to_finish() -> None:
    chat = at(CTX, S.NARRATIVE)
    chat.play([(IntakeInput(None, (PHOTO,)), S.NARRATIVE, ""), ("done", S.WHEN, "")])


def test_narrative_is_capped_with_a_clear_message() -> None:
    ctx = context(intake={"max_report_messages": 2})
    chat = at(ctx, S.NARRATIVE)
    chat.play([
        ("one", S.NARRATIVE, "Got it"),
        ("two", S.NARRATIVE, "Got it"),
        ("three", S.NARRATIVE, ("up to 2 messages", "didn't add that one", "Send DONE")),
        (IntakeInput(None, (PHOTO, PHOTO, PHOTO)), S.NARRATIVE,
         ("Got 2 attachments", "didn't add 1 of them")),
        ("done", S.WHEN, ""),
    ])
    assert chat.draft.narrative == ("one", "two")
    assert len(chat.draft.attachments) == 2


def test_a_very_long_message_is_cut_with_a_notice() -> None:
    chat = at(CTX, S.NARRATIVE)
    chat.play([("x" * (MAX_PART_CHARS + 5), S.NARRATIVE, "kept the first 20000 characters")])
    assert len(chat.draft.narrative[0]) == MAX_PART_CHARS


def test_attachments_in_any_question_are_kept_and_the_question_repeated() -> None:
    chat = at(CTX, S.SCOPE)
    result = chat.say(IntakeInput(None, (PHOTO,)))
    assert result.state is S.SCOPE
    assert "Got a photo \u2014 noted." in result.replies[0]
    assert result.replies[0].endswith(question(S.SCOPE, chat.draft))
    result = chat.say(IntakeInput("2", (PDF,)))
    assert result.state is S.CHOOSE_OFFICER
    assert chat.draft.attachments == (PHOTO, PDF)


def test_a_report_written_instead_of_an_answer_is_kept() -> None:
    chat = at(CTX, S.CATEGORY)
    text = "He cornered me in the kitchen at the fundraiser and would not let me leave."
    chat.play([(text, S.CATEGORY, ("I've kept that message with your report.",
                                   "Sorry, I didn't understand that.", "What is it about?"))])
    assert chat.draft.narrative == (text,)
    assert text not in chat.reply


@pytest.mark.parametrize(("says", "field"), [("when", "when"), ("where", "where"),
                                              ("who", "who")])
def test_when_where_who_are_optional(says: str, field: str) -> None:
    chat = at(CTX, S.WHEN)
    answers = {"when": "skip", "where": "skip", "who": "skip", field: f"my {says} answer"}
    chat.play([(answers["when"], S.WHERE, ""), (answers["where"], S.WHO, ""),
               (answers["who"], S.SAFETY, "")])
    values = {"when": chat.draft.when, "where": chat.draft.where, "who": chat.draft.who}
    assert values == {k: (f"my {says} answer" if k == field else None) for k in values}


@pytest.mark.parametrize("says", ["no", "NO.", "n", "not sure", "I don't know", "not safe"])
def test_not_safe_shows_urgent_help_then_continues(says: str) -> None:
    chat = at(CTX, S.SAFETY)
    result = chat.say(says)
    assert result.state is S.CHECKIN
    urgent, rest = result.replies
    assert "emergency number" in urgent
    assert "check in" in rest
    assert result.draft.safe is False


@pytest.mark.parametrize("says", ["yes", "Y", "I'm safe", "yeah"])
def test_safe_goes_straight_on(says: str) -> None:
    result = at(CTX, S.SAFETY).say(says)
    assert result.state is S.CHECKIN
    assert len(result.replies) == 1
    assert result.draft.safe is True


@pytest.mark.parametrize(("says", "ok"), [("yes", True), ("ok", True), ("please", True),
                                          ("no thanks", False), ("N", False)])
def test_check_in_consent(says: str, ok: bool) -> None:
    result = at(CTX, S.CHECKIN).say(says)
    assert result.state is S.CONFIRM
    assert result.draft.checkin_ok is ok


# --- confirm and edit -------------------------------------------------------------------------


def test_cancel_at_confirm_discards() -> None:
    result = at(CTX, S.CONFIRM).say("CANCEL")
    assert (result.state, result.outcome, result.draft) == (S.CANCELLED, Outcome.CANCELLED,
                                                            Draft())


def test_edit_one_answer_returns_to_confirm() -> None:
    chat = at(CTX, S.CONFIRM)
    chat.play([
        ("edit", S.EDIT, ("What would you like to change?", "3. What it's about")),
        ("3", S.CATEGORY, "What is it about?"),
        ("2", S.CONFIRM, "About: Sexual assault"),
        ("change", S.EDIT, ""),
        ("1", S.IDENTITY, ""),
        ("2", S.CONFIRM, ("Okay, the officers will see who you are.", "Your identity: Named")),
        ("edit", S.EDIT, ""),
        ("safety", S.SAFETY, ""),
        ("no", S.CONFIRM, ("emergency number", "Safe right now: No")),
        ("edit", S.EDIT, ""),
        ("8", S.CHECKIN, ""),
        ("no", S.CONFIRM, "Check-ins: No"),
        ("edit", S.EDIT, ""),
        ("2", S.HELP_KIND, ""),
        ("redress", S.CONFIRM, "Help wanted: Redress"),
    ])


def test_edit_who_sees_it_asks_the_follow_on_questions() -> None:
    chat = at(CTX, S.CONFIRM)
    chat.play([
        ("edit", S.EDIT, ""),
        ("4", S.SCOPE, ""),
        ("1", S.EXCLUSIONS, "1. Jane Doe"),
        ("3", S.CONFIRM, "The whole Regenerative Culture group, but not Robin Lee"),
    ])
    assert (chat.draft.scope_id, chat.draft.chosen_officer, chat.draft.excluded) == (
        "regen", None, ("robin",))
    chat.play([("edit", S.EDIT, ""), ("who sees it", S.SCOPE, ""), ("2", S.CHOOSE_OFFICER, ""),
               ("2", S.EXCLUSIONS, ""), ("none", S.CONFIRM, "Sam Rivera, with a support person")])


def test_edit_details_asks_when_where_and_who() -> None:
    chat = at(CTX, S.CONFIRM)
    chat.play([
        ("edit", S.EDIT, ""),
        ("6", S.WHEN, ""),
        ("in June", S.WHERE, ""),
        ("skip", S.WHO, ""),
        ("a steward", S.CONFIRM, ("When: in June", "Who was involved: a steward")),
    ])


def test_edit_what_happened_append() -> None:
    chat = at(CTX, S.EDIT_NARRATIVE)
    chat.play([
        ("1", S.NARRATIVE, "I already have 1 message"),
        ("He also sent me messages afterwards.", S.NARRATIVE, "Got it"),
        ("done", S.CONFIRM, "What happened: 2 messages"),
    ])
    assert chat.draft.narrative == ("He shouted at me after the meeting.",
                                    "He also sent me messages afterwards.")


def test_edit_what_happened_start_again() -> None:
    chat = at(CTX, S.CONFIRM)
    chat.say(IntakeInput(None, (PHOTO,)))
    chat.play([
        ("edit", S.EDIT, ""),
        ("what happened", S.EDIT_NARRATIVE, "2. Start again (deletes what you wrote)"),
        ("start again", S.NARRATIVE, ("I've cleared what you wrote.",
                                      "Your attachments are still there.",
                                      "I already have 1 attachment")),
        ("It was worse than I said.", S.NARRATIVE, ""),
        ("done", S.CONFIRM, "What happened: 1 message and 1 attachment"),
    ])
    assert chat.draft.narrative == ("It was worse than I said.",)


def test_back_from_the_edit_menu_and_after_an_edit() -> None:
    chat = at(CTX, S.CONFIRM)
    chat.play([
        ("edit", S.EDIT, ""),
        ("back", S.CONFIRM, "Here's your report"),
        ("edit", S.EDIT, ""),
        ("3", S.CATEGORY, ""),
        ("3", S.CONFIRM, ""),
        ("back", S.CATEGORY, ""),
        ("back", S.CHECKIN, ""),
        ("yes", S.CONFIRM, ""),
    ])
    assert len(chat.draft.history) <= len(FULL_PATH)


def test_send_with_an_answer_that_left_the_config_asks_it_again() -> None:
    chat = at(CTX, S.CONFIRM)
    ctx = context(categories=[{"id": "bullying", "label": "Bullying"}])
    result = step(chat.state, chat.draft, IntakeInput("send"), ctx, chat.now)
    assert result.state is S.CATEGORY
    assert "please answer this again" in result.replies[0]
    result = step(result.state, result.draft, IntakeInput("1"), ctx, chat.now)
    assert result.state is S.CONFIRM
    result = step(result.state, result.draft, IntakeInput("send"), ctx, chat.now)
    assert (result.state, result.outcome) == (S.SUBMITTED, Outcome.SUBMIT)


def test_a_scope_that_left_the_config_is_asked_again() -> None:
    chat = at(CTX, S.CHOOSE_OFFICER)
    ctx = context(scopes=[{"id": "regen", "label": "Everyone", "kind": "team",
                           "group_id": config().scopes[0].group_id, "officers": ["jane"]}])
    result = step(chat.state, chat.draft, IntakeInput("1"), ctx, chat.now)
    assert result.state is S.SCOPE
    assert "1. Everyone" in result.replies[0]
    again = reask(S.CHOOSE_OFFICER, chat.draft, ctx)
    assert again.state is S.SCOPE


def test_summary_shows_counts_not_report_text() -> None:
    chat = at(CTX, S.CONFIRM)
    text = summary(chat.draft, CTX)
    assert "He shouted" not in text
    assert "What happened: 1 message" in text
    long_when = replace(chat.draft, when="a" * 200 + "\nsecond line")
    assert "When: " + "a" * 79 + "\u2026" in summary(long_when, CTX)


def test_receipt_carries_the_reference_and_next_steps() -> None:
    text = receipt(CTX, "K7F-3Q")
    assert "K7F-3Q" in text
    assert "reply here" in text


# --- expiry -----------------------------------------------------------------------------------


def test_a_draft_idle_past_expiry_is_deleted() -> None:
    chat = at(CTX, S.NARRATIVE)
    idle = CTX.draft_expiry + timedelta(seconds=1)
    result = chat.say("Something", after=idle)
    assert (result.state, result.outcome, result.draft) == (S.EXPIRED, Outcome.EXPIRED, Draft())
    assert "deleted" in result.replies[0]
    assert "start again" in result.replies[0]


def test_a_draft_used_within_expiry_lives_on() -> None:
    chat = at(CTX, S.NARRATIVE)
    for _ in range(3):
        result = chat.say("More.", after=CTX.draft_expiry)
        assert result.state is S.NARRATIVE
    assert chat.draft.updated_at == chat.now


# --- storage format ---------------------------------------------------------------------------


def test_state_values_are_a_stable_storage_format() -> None:
    assert {s.name: s.value for s in IntakeState} == {
        "IDENTITY": "identity", "HELP_KIND": "help_kind", "CATEGORY": "category",
        "SCOPE": "scope", "CHOOSE_OFFICER": "choose_officer", "EXCLUSIONS": "exclusions",
        "NARRATIVE": "narrative", "WHEN": "when", "WHERE": "where", "WHO": "who",
        "SAFETY": "safety", "CHECKIN": "checkin", "CONFIRM": "confirm", "EDIT": "edit",
        "EDIT_NARRATIVE": "edit_narrative", "SUBMITTED": "submitted",
        "CANCELLED": "cancelled", "EXPIRED": "expired",
    }


def test_old_or_partial_drafts_load_with_defaults() -> None:
    assert Draft.from_json({}) == Draft()
    draft = Draft.from_json({"named": True, "history": ["identity", "no-such-state"],
                             "future_field": 1})
    assert (draft.named, draft.history) == (True, ("identity",))


@pytest.mark.parametrize("bad", [
    {"named": "yes"}, {"narrative": "text"}, {"narrative": [1]},
    {"attachments": [{"content_type": "image/png"}]}, {"attachments": ["x"]},
    {"attachments": [{"content_type": "image/png", "size": True}]},
    {"updated_at": "last tuesday"},
])
def test_a_corrupt_draft_names_the_field_not_the_value(bad: dict[str, object]) -> None:
    with pytest.raises(DraftFormatError) as info:
        Draft.from_json(bad)
    assert next(iter(bad)) in str(info.value)
    assert "text" not in str(info.value).replace("content_type", "")


def test_replies_stay_short_enough_for_a_phone() -> None:
    chat = at(CTX, S.CONFIRM)
    for reply in chat.log:
        assert len(reply) <= 700, reply


def test_a_configured_something_else_is_not_listed_twice() -> None:
    ctx = context(categories=[{"id": "harassment", "label": "Harassment"},
                              {"id": "other", "label": "Something else"}])
    ask = TABLE[S.CATEGORY].ask(begin(ctx).draft, ctx)
    assert ask.count("Something else") == 1
    assert "2. Something else" in ask
    assert "3." not in ask
    plain = TABLE[S.CATEGORY].ask(begin(CTX).draft, CTX)
    assert "4. Something else" in plain  # without one, relay adds its own
