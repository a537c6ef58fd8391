"""The config text `relay init` writes: an example with this organisation's settings, or
a commented minimal file ("blank").

Team scopes and the coordination group start without group_id: the groups do not exist
until `relay groups create`, and the config loads with pending groups until then.
"""

from __future__ import annotations

import tomllib
from typing import Any

from relay.setup.answers import Answers, example_path, officer_id
from relay.setup.toml_edit import prepend_comment, remove_value, set_value, toml_string


class TemplateError(Exception):
    """The example file is missing or not shaped as expected."""


def render(answers: Answers) -> str:
    """The full config text for these (complete, checked) answers."""
    if (answers.example or "blank") == "blank":
        return blank(answers)
    return from_example(answers.example or "", answers)


def pending_note(scope_id: str | None) -> str:
    target = "--coordination" if scope_id is None else scope_id
    return f"group_id: none yet; `relay groups create {target}` creates the group and fills it in"


def from_example(name: str, answers: Answers) -> str:
    """The example's text, comments kept, with this organisation's settings."""
    path = example_path(name)
    if path is None:
        raise TemplateError(f"example {name}.toml not found; reinstall relay or use 'blank'")
    text = path.read_text("utf-8")
    edits: list[tuple[str, str, str | None, str]] = [
        ("organisation", "name", None, answers.org_name or ""),
        ("organisation", "short_name", "name", answers.short_name or ""),
        ("organisation", "timezone", "short_name", answers.timezone or "UTC"),
        ("signal", "service", None, answers.service or ""),
        ("signal", "bot_number", "service", answers.bot_number or ""),
        ("storage", "url", None, answers.storage_url or ""),
        ("keys", "directory", None, answers.keys_dir or ""),
        ("keys", "source", "directory", answers.key_source or "directory"),
    ]
    if answers.webhook_listen:
        edits.append(("signal", "webhook_listen", "bot_number", answers.webhook_listen))
    for section, key, after, value in edits:
        text = set_value(text, section, key, value, after=after)
    data: dict[str, Any] = tomllib.loads(text)
    for index, scope in enumerate(data.get("scopes", [])):
        if scope.get("kind") == "team":
            text = remove_value(text, "scopes", "group_id", index=index,
                                note=pending_note(str(scope.get("id"))))
    text = remove_value(text, "coordination", "group_id", note=pending_note(None))
    return prepend_comment(text, [
        f'Written by `relay init` from the "{name}" example.',
        "",
        "PLACEHOLDERS: the [[officers]] below are the example's made-up people. Replace each",
        "one's display_name and aci with your real officers (and the scopes' officer lists)",
        "before `relay groups create` and `relay run`.",
        "-" * 86,
    ])


def blank(answers: Answers) -> str:
    """A commented minimal config: one coordinator, one team scope, a few categories."""
    name = answers.coordinator_name or ""
    officer = officer_id(name)
    webhook = ("" if not answers.webhook_listen else
               "# Where relay receives messages pushed by RECEIVE_WEBHOOK_URL (host:port).\n"
               f"webhook_listen = {toml_string(answers.webhook_listen)}\n")
    return _BLANK.format(
        org_name=toml_string(answers.org_name or ""),
        short_name=toml_string(answers.short_name or ""),
        timezone=toml_string(answers.timezone or "UTC"),
        service=toml_string(answers.service or ""),
        bot_number=toml_string(answers.bot_number or ""),
        webhook=webhook,
        storage_url=toml_string(answers.storage_url or ""),
        keys_dir=toml_string(answers.keys_dir or ""),
        key_source=toml_string(answers.key_source or "directory"),
        officer_id=toml_string(officer),
        officer_name=toml_string(name),
        officer_aci=toml_string(answers.coordinator_aci or ""),
        officer_ref=officer,
        pending=pending_note("team"),
    )


_BLANK = """\
# relay configuration, written by `relay init`.
#
# How to edit this file:
#   - Lines starting with # are comments; relay ignores them.
#   - Text in "quotes" is a value. Keep the quotes.
#   - [section] starts a group of settings. [[officers]] (double brackets) starts ONE
#     entry in a list: copy the whole block to add another.
#   - `relay config check relay.toml` prints one line per problem, naming the setting.
# The examples in deploy/examples show every setting with comments.

# --- Who you are -----------------------------------------------------------------
[organisation]
name = {org_name}
# Short name used in messages. At most 24 characters.
short_name = {short_name}
# Local time zone (an IANA name) for times shown to officers and check-in timing.
timezone = {timezone}
language = "en"

# --- The Signal account the bot uses ----------------------------------------------
[signal]
# Where signal-cli-rest-api listens, as host:port (no "http://").
service = {service}
# The phone number registered for the bot: "+", country code, number, no spaces.
bot_number = {bot_number}
{webhook}# "http", or "https" if signal-cli-rest-api is behind TLS.
connection = "http"

# --- Where relay keeps its data ----------------------------------------------------
[storage]
# Reports are stored encrypted. Back the database up together with the keys directory.
url = {storage_url}

[keys]
# The encryption keys. Whoever has them and the database can read the reports; losing
# them makes the stored reports unreadable. Keep a separate, encrypted backup.
directory = {keys_dir}
# "directory" (a key file in the directory above), "credentials" (systemd credentials)
# or "passphrase" (typed in at start).
source = {key_source}

# --- Alerts to coordinators ------------------------------------------------------------
[coordination]
# "dm": each coordinator gets alerts one-to-one. "group": alerts go to one Signal group
# (then run `relay groups create --coordination`).
channel = "dm"

# --- Officers ----------------------------------------------------------------------
# One [[officers]] block per person.
#   id            a short lowercase name used inside this file (a-z, 0-9, -)
#   display_name  what reporters and other officers see
#   aci           the person's Signal account id (a UUID)
#   roles         "officer" (receives cases), "support" (can be chosen as the support
#                 person), "coordinator" (receives alerts; at least one person)
[[officers]]
id = {officer_id}
display_name = {officer_name}
aci = {officer_aci}
roles = ["officer", "support", "coordinator"]

# --- Who may see a report: the reporter picks one of these -------------------------
# kind = "team"    the whole team sees the case in its Signal group (group_id).
# kind = "chosen"  the reporter picks one person from officers and a support person
#                  from support; delivered one-to-one. Add it once you have more people:
#
# [[scopes]]
# id = "chosen-person"
# label = "One person you choose, plus a support person"
# kind = "chosen"
# officers = ["{officer_ref}"]
# support = ["{officer_ref}"]

[[scopes]]
id = "team"
label = "The whole conduct team"
kind = "team"
# {pending}
officers = ["{officer_ref}"]

# --- What happened: the reporter picks a category -------------------------------------
# immediate_review = true alerts the coordinators as soon as the report arrives.
# The kinds of help a reporter can ask for are relay's defaults; see the examples to
# write your own ([[help_kinds]]).
[[categories]]
id = "harassment"
label = "Harassment or intimidation"
immediate_review = true

[[categories]]
id = "violence"
label = "Physical violence or threats of violence"
immediate_review = true

[[categories]]
id = "discrimination"
label = "Discrimination"

[[categories]]
id = "other"
label = "Something else"
"""
