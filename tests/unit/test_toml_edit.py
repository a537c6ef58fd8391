"""Text edits of a config keep every comment and touch only the one setting."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from relay.setup.toml_edit import (
    TomlEditError,
    prepend_comment,
    remove_value,
    set_value,
    toml_string,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
GROUP = "group.MWFBRzRMQ01kK0Z5WTdUUldodmR1TFl4TFg4MFZwVVRFVWIvL09pWVRHbz0="

TEXT = '''\
# top comment
[organisation]
name = "Old"  # the name
timezone = "UTC"

[texts]
greeting = """
[[scopes]]
id = "not-a-scope"
kind = "team"
"""

# --- scopes ---
[[scopes]]
id = "a"
kind = "chosen"
officers = [
  "ana",  # first
  "ben",
]
support = ["ben"]

[[scopes]]
id = "b"
kind = "team"
officers = ["ana"]

# --- categories ---
[[categories]]
id = "other"
'''


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    old, new = before.splitlines(), after.splitlines()
    return [line for line in old if line not in new], [line for line in new if line not in old]


def test_replacing_a_value_keeps_its_comment_and_everything_else() -> None:
    out = set_value(TEXT, "organisation", "name", 'New "Org"')
    assert _changed_lines(TEXT, out) == (['name = "Old"  # the name'],
                                         ['name = "New \\"Org\\""  # the name'])
    assert tomllib.loads(out)["organisation"]["name"] == 'New "Org"'


def test_insert_into_the_right_array_entry_after_kind() -> None:
    out = set_value(TEXT, "scopes", "group_id", GROUP, index=1, after="kind")
    data = tomllib.loads(out)
    assert data["scopes"][1]["group_id"] == GROUP
    assert "group_id" not in data["scopes"][0]
    assert 'kind = "team"\ngroup_id = "' + GROUP + '"\nofficers = ["ana"]' in out
    # the look-alike block inside the multi-line string is text, not a table
    assert data["texts"]["greeting"].count("kind") == 1
    assert _changed_lines(TEXT, out)[0] == []


def test_insert_after_a_multi_line_array_goes_after_its_end() -> None:
    out = set_value(TEXT, "scopes", "label", "A", index=0)
    assert 'support = ["ben"]\nlabel = "A"\n' in out
    assert tomllib.loads(out)["scopes"][0]["officers"] == ["ana", "ben"]


def test_replacing_an_existing_array_entry_value() -> None:
    first = set_value(TEXT, "scopes", "group_id", GROUP, index=1, after="kind")
    other = GROUP.replace("MWFB", "QWFB")
    second = set_value(first, "scopes", "group_id", other, index=1, after="kind")
    assert second.count("group_id") == 1
    assert tomllib.loads(second)["scopes"][1]["group_id"] == other


def test_a_missing_table_is_appended() -> None:
    out = set_value(TEXT, "coordination", "group_id", GROUP)
    assert out.startswith(TEXT)
    assert tomllib.loads(out)["coordination"] == {"group_id": GROUP}


def test_a_missing_array_entry_is_an_error() -> None:
    with pytest.raises(TomlEditError, match="no \\[\\[scopes\\]\\] entry number 3"):
        set_value(TEXT, "scopes", "group_id", GROUP, index=2)


def test_remove_leaves_a_note_that_a_later_set_replaces() -> None:
    with_group = set_value(TEXT, "scopes", "group_id", GROUP, index=1, after="kind")
    removed = remove_value(with_group, "scopes", "group_id", index=1,
                           note="group_id: none yet")
    assert "group_id" not in tomllib.loads(removed)["scopes"][1]
    assert 'kind = "team"\n# group_id: none yet\nofficers' in removed
    again = set_value(removed, "scopes", "group_id", GROUP, index=1, after="officers")
    assert "# group_id: none yet" not in again
    assert 'kind = "team"\ngroup_id = "' in again  # on the note's line, not after officers


def test_remove_of_an_absent_key_changes_nothing() -> None:
    assert remove_value(TEXT, "scopes", "group_id", index=0) == TEXT


def test_crlf_line_endings_are_kept() -> None:
    crlf = TEXT.replace("\n", "\r\n")
    out = set_value(crlf, "scopes", "group_id", GROUP, index=1, after="kind")
    assert "\n" not in out.replace("\r\n", "")
    assert tomllib.loads(out)["scopes"][1]["group_id"] == GROUP


def test_toml_string_round_trips() -> None:
    tricky = 'a "quote", a \\ backslash, a\ttab, é and \x01'
    assert tomllib.loads(f"v = {toml_string(tricky)}")["v"] == tricky


def test_prepend_comment() -> None:
    out = prepend_comment(TEXT, ["one", "", "two"])
    assert out.startswith("# one\n#\n# two\n\n# top comment\n")
    assert tomllib.loads(out) == tomllib.loads(TEXT)


def test_every_example_keeps_all_comments_when_group_ids_move() -> None:
    for path in sorted(EXAMPLES.glob("*.toml")):
        text = path.read_text("utf-8")
        data = tomllib.loads(text)
        out = text
        for index, scope in enumerate(data["scopes"]):
            if scope["kind"] == "team":
                out = remove_value(out, "scopes", "group_id", index=index, note="group_id: x")
                out = set_value(out, "scopes", "group_id", scope["group_id"], index=index)
        assert tomllib.loads(out) == data, path.name
        comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
        assert comments == [line for line in out.splitlines() if line.lstrip().startswith("#")]
