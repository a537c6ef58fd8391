"""Every user-visible string of the conversations, keyed by id, with organisation overrides.

Texts use ``{name}`` placeholders. Rendering substitutes plain names only (no attribute or
index access, no format specs), so an override written in a config file can never reach
into Python objects. An override may use only the placeholders its default has.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Mapping
from types import MappingProxyType

DEFAULT_TEXTS: dict[str, str] = {
    # First contact and the fallbacks every question has.
    "greeting": (
        "Hi, this is the {org} conduct line. You can tell us about something that went wrong, "
        "and we'll pass it only to the people you choose.\n\n"
        "Who can see what:\n"
        "\u2022 Only the officers you choose will read your report.\n"
        "\u2022 The person who runs this service can see your Signal account.\n"
        "\u2022 If you stay anonymous, officers never see your number, name or profile.\n\n"
        "Send STOP at any time to stop and delete what you've written. "
        "HELP explains, BACK goes back a question."
    ),
    "reports_are_named": "Reports to {org} are named: the officers will see who you are.",
    "kept_first": "I've kept what you sent as the start of your report.",
    "kept_text": "I've kept that message with your report.",
    "help": (
        "You're making a report to the {org} conduct line. "
        "Nothing is sent until you reply SEND at the end.\n"
        "\u2022 STOP: stop and delete what you've written\n"
        "\u2022 BACK: go back a question\n"
        "If you're in danger right now, call your local emergency number."
    ),
    "not_understood": "Sorry, I didn't understand that.",
    "back_at_start": "This is the first question.",
    "answer_again": "Something has changed since you started, so please answer this again.",
    "restarted": "Sorry, I was restarted \u2014 we were at:\n\n{question}",
    "cancelled": (
        "Okay, I've stopped. Nothing was sent, and what you wrote here has been deleted. "
        "You can message again any time."
    ),
    "expired": (
        "Your unfinished report has been deleted, because it was left for a while. "
        "Nothing was sent. Send a message any time to start again."
    ),
    # Building blocks for numbered lists and the summary.
    "option": "{n}. {label}",
    "option_described": "{n}. {label}: {description}",
    "yes": "Yes",
    "no": "No",
    "not_given": "\u2014",
    "count_messages_one": "1 message",
    "count_messages": "{n} messages",
    "count_attachments_one": "1 attachment",
    "count_attachments": "{n} attachments",
    "count_and": "{first} and {second}",
    # Named or anonymous.
    "ask_identity": "Do you want to stay anonymous?\n\n{options}\n\nReply with a number.",
    "identity_anonymous": "Anonymous",
    "identity_anonymous_about": "officers won't see your number, name or profile",
    "identity_named": "Named",
    "identity_named_about": "officers will see who you are",
    "identity_anonymous_ok": "You're anonymous. Officers won't see your number, name or profile.",
    "identity_named_ok": "Okay, the officers will see who you are.",
    # Help kind and category.
    "ask_help_kind": "What kind of help would you like?\n\n{options}\n\nReply with a number.",
    "ask_category": "What is it about?\n\n{options}\n\nReply with a number.",
    "category_other": "Something else",
    # Who sees it.
    "ask_scope": (
        "Who should see your report? Only they will read it.\n\n{options}\n\nReply with a number."
    ),
    "ask_officer": (
        "Who would you like to talk to? A support person will be with them.\n\n"
        "{options}\n\nReply with a number."
    ),
    "ask_exclusions": (
        "Is there anyone who must NOT see this?\n\n{options}\n\n"
        "Reply with their number (or numbers, like 1 3), or NONE."
    ),
    "nobody_left": (
        "That would leave nobody to read your report. Please keep at least one person, "
        "or send BACK to choose differently."
    ),
    "scope_chosen_value": "{officer}, with a support person",
    "scope_except": "{scope}, but not {names}",
    # What happened.
    "ask_narrative": (
        "Tell us what happened, in your own words. Send as many messages as you like; "
        "photos and screenshots are fine too. Send DONE when you've finished."
    ),
    "ask_narrative_more": (
        "Tell us what happened, in your own words. I already have {count}. "
        "Add anything else, then send DONE."
    ),
    "narrative_got": "Got it. Keep going, or send DONE when you've finished.",
    "narrative_continue": "Keep going, or send DONE when you've finished.",
    "narrative_empty": "You haven't told me anything yet.",
    "narrative_cap": (
        "I can take up to {max} messages in one report, so I didn't add that one. "
        "Send DONE to go on. Once your report is sent, you can add more by messaging here."
    ),
    "narrative_cleared": "Okay, I've cleared what you wrote.",
    "attachments_kept": "Your attachments are still there.",
    "text_cut": (
        "That message was very long, so I kept the first {max} characters. "
        "Please send the rest in another message."
    ),
    "attachment_noted": "Got {what} \u2014 noted.",
    "what_image": "a photo",
    "what_video": "a video",
    "what_audio": "a voice message",
    "what_file": "a file",
    "what_many": "{n} attachments",
    "attachments_cap": (
        "I can take up to {max} attachments in one report, so I didn't add {n} of them. "
        "Once your report is sent, you can send more here."
    ),
    "ask_when": 'When did it happen? A rough idea is fine, like "last Friday". Or send SKIP.',
    "ask_where": (
        'Where did it happen? For example "at the meeting" or "online". Or send SKIP.'
    ),
    "ask_who": "Who was involved? Or send SKIP.",
    # Safety and check-ins.
    "ask_safety": "Are you safe right now? Reply YES or NO.",
    "urgent_help": (
        "If you're in danger right now, please call your local emergency number "
        "(112 in Europe, 911 in the US, 999 in the UK). "
        "You can carry on here whenever you're ready."
    ),
    "ask_checkin": (
        "May we check in with you in the coming days? We'd send a short message asking "
        "how you are. Reply YES or NO."
    ),
    # Confirm and edit.
    "summary_header": "Here's your report. Nothing has been sent yet.",
    "summary_row": "{field}: {value}",
    "field_identity": "Your identity",
    "field_help_kind": "Help wanted",
    "field_category": "About",
    "field_scope": "Who sees it",
    "field_narrative": "What happened",
    "field_when": "When",
    "field_where": "Where",
    "field_who": "Who was involved",
    "field_safety": "Safe right now",
    "field_checkin": "Check-ins",
    "ask_confirm": "Reply SEND to send it, EDIT to change something, or CANCEL to delete it.",
    "ask_edit": (
        "What would you like to change?\n\n{options}\n\n"
        "Reply with a number, or BACK to see your report again."
    ),
    "edit_identity": "Anonymous or named",
    "edit_help_kind": "Kind of help",
    "edit_category": "What it's about",
    "edit_scope": "Who sees it",
    "edit_narrative": "What happened",
    "edit_details": "When, where and who",
    "edit_safety": "Whether you're safe",
    "edit_checkin": "Check-ins",
    "ask_edit_narrative": "What happened:\n\n{options}\n\nReply with a number.",
    "narrative_add": "Add more to it",
    "narrative_restart": "Start again (deletes what you wrote)",
    # After sending (the receipt is sent by the caller once the case is committed).
    "receipt": "Your report has been sent. Your reference is {ref}.\n\n{next_steps}",
    "next_steps": (
        "An officer will read it and reply here. You can add to it any time by sending a "
        "message. Send NEW for a separate report, or STOP to stop check-ins."
    ),
    "intake_no_recipient": (
        "Sorry, I can't reach the people you chose right now. Reply EDIT to choose who sees "
        "it, or SEND to try again later. Nothing has been sent yet."
    ),
    # A reporter with sent reports (handlers/flows/reporter.py and its caller).
    "reporter_which_case": (
        "Which report is this about?\n\n{options}\n\n"
        "Reply with a number, or NEW to start a new report."
    ),
    "case_option": "{n}. {label}",
    "reporter_case_label": "Your report {ref}",
    "reporter_held": "I'll hold on to that until you choose.",
    "reporter_resend_attachments": (
        "I can't hold on to attachments while you choose, so please send them again after."
    ),
    "reporter_followup_sent": "Added to your report {ref}. The officers will see it.",
    "reporter_reply_from_team": "Reply from {team} about your report {ref}:\n{body}",
    "reporter_help": (
        "You can:\n"
        "\u2022 send a message here to add to your report\n"
        "\u2022 send STATUS to see where your reports are\n"
        "\u2022 send ADD to choose which report your next message goes to\n"
        "\u2022 send NEW to start a separate report\n"
        "\u2022 send REVEAL to tell the officers who you are\n"
        "\u2022 send WITHDRAW to close a report\n"
        "\u2022 send FORGET ME to close your reports and delete the link to you\n"
        "\u2022 send STOP to stop check-in messages"
    ),
    "reporter_stopped": (
        "Okay, no more check-in messages. Your report stays open, "
        "and you can message here any time."
    ),
    "reporter_discarded": "Okay, I haven't passed that on.",
    # Officers (relay/cases.py, relay/officers.py). Everything a reporter wrote arrives
    # quoted with the \u2502 prefix, so an unprefixed line is always the bot's own.
    "officer_case_message": (
        "New report {ref}\n\n"
        "About: {category}\n"
        "Help wanted: {help}\n"
        "From: {reporter}\n"
        "Who sees it: {scope}\n"
        "Safe right now: {safe}\n"
        "Check-ins: {checkin}\n\n"
        "What happened:\n{report}\n{attachments}\n\n"
        "When:\n{when}\n"
        "Where:\n{where}\n"
        "Who was involved:\n{who}\n\n"
        "To answer the reporter, quote this message or send /reply {ref} and your message."
    ),
    "officer_reporter_anonymous": "Anonymous (you won't see their number, name or profile)",
    "officer_reporter_named": "{name}, {number}",
    "officer_no_profile_name": "no profile name",
    "officer_number_hidden": "number hidden",
    "officer_not_given": "(not given)",
    "officer_other": "Something else",
    "officer_safe_yes": "Yes",
    "officer_safe_no": "NO: they were shown emergency contacts",
    "officer_yes": "Yes",
    "officer_no": "No",
    "officer_attachments": "Attachments: {count} ({kinds})",
    "officer_followup": "More from the reporter on {ref}:\n{body}",
    "officer_colleague_replied": "{name} replied on {ref}:\n{body}",
    "officer_reply_sent": "Sent to the reporter of {ref}.",
    "officer_which_case": (
        "Which case is this about? Quote the case message, or send /reply REF and your message."
    ),
    "officer_usage_reply": (
        "To reply, send /reply REF and your message, for example: /reply K7F-3Q Thank you."
    ),
    "officer_unknown_case": "There is no open case {ref} that you can answer.",
    "officer_reporter_gone": (
        "The reporter of {ref} can no longer be reached, so your reply was not sent."
    ),
    "officer_help": (
        "Commands:\n"
        "\u2022 quote a case message: reply to its reporter\n"
        "\u2022 /reply REF message \u00b7 /cases \u00b7 /case REF\n"
        "\u2022 /claim REF (or react to the case) \u00b7 /unclaim REF \u00b7 /handoff REF @name\n"
        "\u2022 /note REF text (never reaches the reporter)\n"
        "\u2022 /status REF open|waiting|in-progress|resolved\n"
        "\u2022 /close REF \u00b7 /reopen REF\n"
        "\u2022 /recuse REF: step back from a case\n"
        "\u2022 coordinators: /escalations \u00b7 /ack REF \u00b7 /stats \u00b7 /roster\n"
        "\u2022 moderators: /warn NAME | note \u00b7 /warnings NAME \u00b7 /vote V-XXXX yes|no\n"
        "\u2022 /help: this list"
    ),
    "officer_unknown_command": "I don't know that command. Send /help for the list.",
    "officer_not_registered": "Only registered officers can give commands here.",
    "officer_cases_none": "No open cases for you right now.",
    "officer_cases_header": "Open cases ({count}):",
    "officer_cases_row": (
        "{ref} \u00b7 {age} \u00b7 {category} \u00b7 {claimed} \u00b7 last activity {last}"
    ),
    "officer_unclaimed_label": "not claimed",
    "officer_claimed_by": "claimed by {name}",
    "officer_cases_more": "Cases {first}-{last}, newest first. Older ones: /cases {next}",
    "officer_cases_past_end": (
        "There is no page {page}: you have {count} open cases, {pages} pages of 20."
    ),
    "officer_usage_cases": "Usage: /cases (the newest 20 open cases) or /cases 2 (the next 20)",
    "officer_case_thread": "Case {ref} ({status}):\n\n{thread}",
    "officer_thread_entry": "[{when} \u00b7 {who}]\n{body}",
    "officer_who_reporter": "reporter",
    "officer_who_system": "relay",
    "officer_who_note": "note by {name}",
    "officer_note_added": "Note added to {ref}. The reporter never sees notes.",
    "officer_usage_note": "Usage: /note K7F-3Q your note",
    "officer_status_set": "Case {ref} is now {status}.",
    "officer_usage_status": "Usage: /status K7F-3Q open|waiting|in-progress|resolved",
    "officer_reopened": "{name} reopened case {ref}.",
    "officer_recused": (
        "{name} has stepped back from case {ref} and will receive nothing more about it."
    ),
    "officer_recuse_last": (
        "You are the only person left on {ref}; ask a coordinator to hand it over first."
    ),
    "officer_usage_handoff": "Usage: /handoff K7F-3Q @officer (a name from /roster)",
    "officer_handoff_done": "{name} handed case {ref} to {other}.",
    "officer_handoff_not_member": "{other} is not on case {ref}, so it cannot be handed to them.",
    "officer_roster": "Roster:\n{rows}",
    "officer_roster_row": "\u2022 {name}: {roles}",
    "officer_stats": (
        "Cases by state: {states}\nBy category: {categories}\nOpen cases by age: {ages}"
    ),
    "officer_escalations_none": "No open alerts.",
    "officer_escalations": "Open alerts:\n{rows}",
    "officer_escalation_row": "{ref} \u00b7 {rule} \u00b7 {scope} \u00b7 {age}",
    "officer_rule_immediate": "immediate review",
    "officer_rule_distress": "reporter needs support",
    "officer_rule_unclaimed": "unclaimed",
    "officer_handover_history": (
        "You now have case {ref}, chosen by its reporter. Send /case {ref} to read it so far."
    ),
    "reporter_reopened": "Your report {ref} has been reopened. You can write here at any time.",
    "reporter_recused_choose": (
        "The officer you chose for {ref} has stepped back. Who would you like instead?\n\n"
        "{options}\n\nReply with a number."
    ),
    "alert_stranger_in_group": (
        "relay alert: the officer group for {scope} has a member or invite that is not on "
        "the roster. Case messages to it are held until the group is clean again. Remove "
        "them, or add them to the config, then run 'relay doctor'."
    ),
    "officer_claimed": "{name} has taken case {ref}.",
    "officer_unclaimed": "{name} has let go of case {ref}; it needs someone to take it.",
    "officer_already_claimed": "Case {ref} is already taken by {name}.",
    "officer_closed": "{name} closed case {ref}.",
    "officer_usage_ref": "Usage: {command} K7F-3Q",
    "officer_acked": "Acknowledged: alerts for {ref} stop.",
    "officer_not_coordinator": "Only coordinators can acknowledge alerts.",
    "officer_update_requested": "The reporter of {ref} would like an update.",
    "officer_support_requested": (
        "The reporter of {ref} says they need support now. Please reach out to them."
    ),
    "reporter_claimed": "Someone from the team has picked up your report {ref}.",
    "reporter_claimed_named": "{name} from the team has picked up your report {ref}.",
    "reporter_closed": (
        "Your report {ref} has been closed by the team. Check-ins stop now. You can still "
        "write here at any time."
    ),
    # Check-ins: neutral enough to read over someone's shoulder.
    "checkin_question": (
        "Hi, just checking in. How are you doing?\n"
        "1. I'm okay\n2. I'd like an update\n3. I need support now\n"
        "4. Pause these messages\n5. Stop these messages"
    ),
    "checkin_ok": "Thank you for letting us know.",
    "checkin_update": "Thanks. We've asked the team to send you an update.",
    "checkin_support": (
        "We've told the team you need support now; someone will reach out to you here."
    ),
    "checkin_paused": "Okay, no more check-ins for a while.",
    "checkin_stopped": "Okay, no more check-ins. You can still write here at any time.",
    # Alerts to coordinators: never report text, never who reported.
    "alert_held_untrusted": (
        "relay alert: messages to {who} are on hold because their Signal safety number "
        "changed. Verify it with them in person, then mark it trusted in "
        "signal-cli-rest-api; held messages are retried every few minutes."
    ),
    "alert_unreachable": (
        "relay alert: {who} cannot be reached on Signal any more (not registered). "
        "{detail}"
    ),
    "alert_send_failed": (
        "relay alert: a message to {who} could not be delivered after {attempts} tries. "
        "Check that signal-cli-rest-api is running and the bot is still registered."
    ),
    "alert_quarantined": (
        "relay alert: {count} received message(s) could not be processed and are kept "
        "sealed for review (quarantine). Nothing was lost; run 'relay doctor'."
    ),
    "alert_linked_device": (
        "relay alert: the bot's Signal account sent a message from another device. The "
        "bot number must not be linked to a phone or computer: check linked devices now."
    ),
    "alert_immediate_review": (
        "relay alert: case {ref} needs immediate review (its category is marked for "
        "immediate review). Scope: {scope}. Age: {age}. Claimed: {claimed}."
    ),
    "alert_distress": (
        "relay alert: the reporter of case {ref} says they are not safe or need support "
        "now. Scope: {scope}. Age: {age}. Claimed: {claimed}."
    ),
    "alert_unclaimed": (
        "relay alert: no officer has claimed case {ref} yet. Scope: {scope}. Age: {age}. "
        "Send /ack {ref} once you have it in hand."
    ),
    "alert_same_person": (
        "relay alert: two open cases may concern the same person: {ref} and {other}. "
        "A person should compare them; relay has told nobody else."
    ),
    "alert_claimed_yes": "yes",
    "alert_claimed_no": "no",
    "alert_who_reporter": "the reporter of {ref}",
    "alert_who_officer": "{name}",
    "alert_who_group": "the group of {scope}",
    "alert_unreachable_reporter": "Check-ins for their case(s) stop; officers can still read it.",
    "alert_unreachable_officer": "Update the roster in the config.",
    # The moderation ledger: warnings and removal votes. Never the warned person's name.
    "moderation_disabled": "Moderation is not enabled for this organisation.",
    "moderation_not_moderator": "Only moderators can use this command.",
    "moderation_usage_warn": (
        "Usage: /warn NAME | what happened\n"
        "The note is sealed, the name is never stored, and relay never contacts the person."
    ),
    "moderation_usage_warnings": "Usage: /warnings NAME",
    "moderation_usage_vote": "Usage: /vote V-K7F3 yes (or no)",
    "moderation_dm_only": (
        "Send /warnings to me in a direct message: the notes are for moderators only."
    ),
    "moderation_warned": "Warning recorded: {count} active warning(s) for this person.",
    "moderation_vote_pending": "Removal vote {ref} about this person is still open.",
    "moderation_vote_opened": (
        "A removal vote is open for the person warned {count} times (vote {ref}). "
        "Reply /vote {ref} yes or /vote {ref} no by {deadline}."
    ),
    "moderation_unknown_vote": "There is no open vote {ref}.",
    "moderation_vote_is_closed": "Vote {ref} is already closed.",
    "moderation_vote_recorded": (
        "Your vote on {ref} is recorded: {choice}. You can change it until the vote closes."
    ),
    "moderation_choice_yes": "yes, remove",
    "moderation_choice_no": "no, do not remove",
    "moderation_vote_removed": (
        "Vote {ref} is closed: {yes} yes, {no} no, {absent} did not vote. The majority of the "
        "votes cast is in favour: the person is to be removed."
    ),
    "moderation_vote_kept": (
        "Vote {ref} is closed: {yes} yes, {no} no, {absent} did not vote. There is no "
        "majority of the votes cast in favour, so the person is not removed."
    ),
    "moderation_warnings_none": "No active warnings for this person.",
    "moderation_warnings_header": (
        "{count} active warning(s) for this person. They expire {days} days after the "
        "newest one."
    ),
    "moderation_warning_row": "{when} \u00b7 {name}\n{note}",
    "moderation_warnings_expired": "{count} older warning(s) have expired and no longer count.",
    "moderation_note_unreadable": "(this note can no longer be read)",
    # Reporter commands (handlers/flows/reporter.py, relay/reporters.py): STATUS, ADD,
    # REVEAL, WITHDRAW, FORGET ME. States are neutral: no content, no names.
    "reporter_status": "Your reports:\n{lines}",
    "reporter_status_line": "{ref}: {state}",
    "reporter_state_waiting": "waiting for someone to pick it up",
    "reporter_state_taken": "someone from the team has it",
    "reporter_state_resolved": "the team has marked it resolved",
    "reporter_state_closed": "closed",
    "reporter_pick_case": "{question}\n\n{options}\n\nReply with a number.",
    "reporter_add_which": "Which report would you like to add to?",
    "reporter_add_ask": "What would you like to add? Your next message goes to report {ref}.",
    "reporter_add_cancelled": "Okay, nothing was added.",
    "reporter_reveal_which": "Which report should show who you are?",
    "reporter_reveal_explain": (
        "If you reveal who you are, the officers who can see report {ref} will be shown:\n"
        "{who}\n\n"
        "You will no longer be anonymous to them. Reply YES to continue, or anything else "
        "to stay anonymous."
    ),
    "reporter_reveal_final": "This cannot be undone. Reply REVEAL to confirm.",
    "reporter_reveal_cancelled": "Okay, nothing was shared.",
    "reporter_revealed": "Done. The officers on report {ref} now know who you are.",
    "reporter_revealed_to_officers": (
        "The reporter of {ref} has chosen to tell you who they are: {who}"
    ),
    "reporter_already_named": (
        "The officers already know who you are on report {refs}, so there is nothing to "
        "reveal."
    ),
    "reporter_withdraw_which": "Which report would you like to close?",
    "reporter_withdraw_confirm": (
        "Do you want to close report {ref}? The officers will be told that you withdrew it, "
        "and check-ins will stop. Reply YES to close it, or anything else to keep it open."
    ),
    "reporter_withdraw_cancelled": "Okay, your report stays open.",
    "reporter_withdrawn": (
        "Your report {ref} is closed, and the officers have been told. Check-ins stop now. "
        "You can write here at any time if you need to."
    ),
    "reporter_withdrawn_to_officers": "The reporter withdrew case {ref}. It is now closed.",
    "reporter_forget_confirm": (
        "This closes all your reports ({refs}) and deletes the link between you and them. "
        "The officers keep what you wrote until the retention period ends, but nothing "
        "will tie it to you, and they can no longer reply to you. This cannot be undone.\n\n"
        "Reply FORGET to confirm, or anything else to keep things as they are."
    ),
    "reporter_forget_cancelled": "Okay, nothing was deleted.",
    "reporter_forgotten": (
        "Your cases are closed and the link between you and them is deleted. The officers "
        "still have what you wrote until the retention period ends. If you write here "
        "again, you will start afresh, as someone new."
    ),
    "reporter_forgotten_to_officers": (
        "The reporter withdrew case {ref} and asked relay to forget them. It is now "
        "closed, and replies can no longer reach them."
    ),
}

# Texts that stop working if an override drops one of these placeholders.
REQUIRED_PLACEHOLDERS: Mapping[str, frozenset[str]] = MappingProxyType(
    {"receipt": frozenset({"ref"}), "restarted": frozenset({"question"})}
)

_FORMATTER = string.Formatter()


class CatalogError(ValueError):
    """Overrides that cannot be used; ``problems`` has one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _fields(template: str) -> list[str]:
    """The placeholder names of a template; ValueError if it is not plain ``{name}`` style."""
    names: list[str] = []
    for _literal, name, spec, conversion in _FORMATTER.parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError("write placeholders as {name}, and a literal brace as {{ or }}")
        names.append(name)
    return names


def _braced(names: frozenset[str] | set[str]) -> str:
    return ", ".join("{" + n + "}" for n in sorted(names))


class Catalog:
    """The default texts with an organisation's overrides applied."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        overrides = overrides or {}
        problems = self.check_overrides(overrides)
        if problems:
            raise CatalogError(problems)
        self._texts: Mapping[str, str] = MappingProxyType({**DEFAULT_TEXTS, **overrides})

    @staticmethod
    def check_overrides(overrides: Mapping[str, str]) -> list[str]:
        """Problems with ``[texts]`` overrides, one readable line each (for ``config check``)."""
        problems: list[str] = []
        for msg_id, text in overrides.items():
            where = f"texts.{msg_id}"
            if msg_id not in DEFAULT_TEXTS:
                near = difflib.get_close_matches(msg_id, list(DEFAULT_TEXTS), n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                problems.append(f"{where}: unknown message id{hint}")
                continue
            if not text.strip():
                problems.append(f"{where}: is empty")
                continue
            try:
                used = set(_fields(text))
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                continue
            allowed = Catalog.placeholders(msg_id)
            if unknown := used - allowed:
                can = f"it can use {_braced(allowed)}" if allowed else "it takes no placeholders"
                problems.append(f"{where}: unknown placeholder {_braced(unknown)}; {can}")
            if missing := REQUIRED_PLACEHOLDERS.get(msg_id, frozenset()) - used:
                problems.append(f"{where}: must keep {_braced(missing)}")
        return problems

    @staticmethod
    def placeholders(msg_id: str) -> frozenset[str]:
        """The placeholder names the default text of ``msg_id`` uses."""
        return frozenset(_fields(DEFAULT_TEXTS[msg_id]))

    @staticmethod
    def ids() -> tuple[str, ...]:
        """Every message id, in catalog order."""
        return tuple(DEFAULT_TEXTS)

    def render(self, msg_id: str, **values: object) -> str:
        """The text for ``msg_id`` with ``values`` inserted verbatim (braces in them stay)."""
        out: list[str] = []
        for literal, name, _spec, _conversion in _FORMATTER.parse(self._texts[msg_id]):
            out.append(literal)
            if name is not None:
                out.append(str(values[name]))
        return "".join(out)
