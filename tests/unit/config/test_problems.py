"""A broken config is refused with one line per problem, naming the setting and the fix."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from relay.config import ConfigError, ConfigProblem, OrgConfig, load_config

ACI_A = "3f0c9a52-6a1e-4d8e-9c1b-2f5e7d4a8b10"
ACI_B = "b7d2e4f1-0c3a-4b5d-8e6f-9a1b2c3d4e5f"
ACI_C = "0a9b8c7d-6e5f-4a3b-8c1d-0e9f8a7b6c5d"
GROUP = "group.MWFBRzRMQ01kK0Z5WTdUUldodmR1TFl4TFg4MFZwVVRFVWIvL09pWVRHbz0="
OTHER_GROUP = "group.cWZmd3lRZFRGKzEvZEEwVDFUNW9JYjBTekJTcEZXZGF2YnlxalFRZTVCRT0="

VALID = f"""
[organisation]
name = "Test Org"
timezone = "Europe/London"

[signal]
service = "127.0.0.1:8080"
bot_number = "+15550100009"

[[officers]]
id = "ana"
display_name = "Ana"
aci = "{ACI_A}"
roles = ["officer", "coordinator"]

[[officers]]
id = "ben"
display_name = "Ben"
aci = "{ACI_B}"
roles = ["officer", "support"]

[[scopes]]
id = "team"
label = "The whole team"
kind = "team"
group_id = "{GROUP}"
officers = ["ana", "ben"]

[[scopes]]
id = "pick"
label = "One person plus support"
kind = "chosen"
officers = ["ana", "ben"]
support = ["ben"]

[[categories]]
id = "harassment"
label = "Harassment"
immediate_review = true
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "org.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _edit(old: str, new: str, text: str = VALID) -> str:
    assert text.count(old) == 1, f"test setup: {old!r} must occur exactly once"
    return text.replace(old, new)


def _problems(tmp_path: Path, text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    problems = caught.value.problems
    assert problems
    for problem in problems:
        assert "\n" not in str(problem), "each problem must be one line"
    return problems


def _only(tmp_path: Path, text: str) -> ConfigProblem:
    problems = _problems(tmp_path, text)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_the_base_config_is_valid(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, VALID))
    assert isinstance(config, OrgConfig)
    assert [o.id for o in config.coordinators()] == ["ana"]


def test_unknown_key_names_the_setting_and_suggests_the_spelling(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('name = "Test Org"', 'nmae = "Test Org"\nname = "Test Org"'))
    assert problem.field == "organisation.nmae"
    assert "unknown setting" in problem.message
    assert "did you mean 'name'" in problem.message


def test_misspelt_key_inside_a_list_entry(tmp_path: Path) -> None:
    problems = _problems(tmp_path, _edit('display_name = "Ben"', 'display_nam = "Ben"'))
    by_field = {p.field: p.message for p in problems}
    assert set(by_field) == {"officers[1].display_name", "officers[1].display_nam"}
    assert "did you mean 'display_name'" in by_field["officers[1].display_nam"]
    assert "add display_name = ..." in by_field["officers[1].display_name"]


def test_missing_bot_number(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('bot_number = "+15550100009"\n', ""))
    assert problem.field == "signal.bot_number"
    assert "missing" in problem.message
    assert "add bot_number" in problem.message


def test_missing_section(tmp_path: Path) -> None:
    text = _edit('[signal]\nservice = "127.0.0.1:8080"\nbot_number = "+15550100009"\n', "")
    problem = _only(tmp_path, text)
    assert problem.field == "signal"
    assert "add a [signal] section" in problem.message


@pytest.mark.parametrize("number", ["015112345678", "+44 7700 900123", "+1-555-010-0009", "+0123"])
def test_bad_e164_bot_number(tmp_path: Path, number: str) -> None:
    problem = _only(tmp_path, _edit('"+15550100009"', f'"{number}"'))
    assert problem.field == "signal.bot_number"
    assert "E.164" in problem.message
    assert "no spaces" in problem.message


def test_bad_e164_officer_number(tmp_path: Path) -> None:
    problem = _only(
        tmp_path, _edit('display_name = "Ana"', 'display_name = "Ana"\nnumber = "07700"')
    )
    assert problem.field == "officers[0].number"
    assert "E.164" in problem.message


def test_bad_aci(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit(ACI_B, "+447700900123"))
    assert problem.field == "officers[1].aci"
    assert "Signal ACI" in problem.message
    assert "UUID" in problem.message
    assert "+447700900123" not in problem.message


def test_aci_is_normalised() -> None:
    from relay.config.schema import Officer

    officer = Officer(id="x", display_name="X", aci=ACI_A.upper())
    assert officer.aci == ACI_A


def test_team_scope_without_group_id(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit(f'group_id = "{GROUP}"\n', ""))
    assert problem.field == "scopes[0]"
    assert "needs group_id" in problem.message


def test_chosen_scope_without_support(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('support = ["ben"]\n', ""))
    assert problem.field == "scopes[1]"
    assert "support person" in problem.message
    assert "'support'" in problem.message


def test_chosen_scope_with_group_id(tmp_path: Path) -> None:
    text = _edit('kind = "chosen"\n', f'kind = "chosen"\ngroup_id = "{OTHER_GROUP}"\n')
    problem = _only(tmp_path, text)
    assert problem.field == "scopes[1]"
    assert "remove group_id" in problem.message


def test_scope_references_unknown_officer(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('support = ["ben"]', 'support = ["ben", "bne"]'))
    assert problem.field == "scopes[1].support"
    assert "'bne'" in problem.message
    assert "not in [[officers]]" in problem.message
    assert "fix the spelling" in problem.message
    assert str(problem).startswith("scopes[1]")


def test_support_person_without_support_role(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('support = ["ben"]', 'support = ["ben", "ana"]'))
    assert problem.field == "scopes[1].support"
    assert "'ana'" in problem.message
    assert "lacks the 'support' role" in problem.message


def test_duplicate_officer_ids(tmp_path: Path) -> None:
    third = f"""
[[officers]]
id = "ana"
display_name = "Another Ana"
aci = "{ACI_C}"
"""
    problem = _only(tmp_path, VALID + third)
    assert problem.field == "officers[2].id"
    assert "'ana' is already used by officers[0]" in problem.message
    assert "give each entry its own id" in problem.message


def test_duplicate_acis_do_not_print_the_aci(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit(ACI_B, ACI_A))
    assert problem.field == "officers[1].aci"
    assert "same aci as 'ana'" in problem.message
    assert ACI_A[:4] not in problem.message


def test_officer_with_the_bots_own_aci(tmp_path: Path) -> None:
    text = _edit('bot_number = "+15550100009"', f'bot_number = "+15550100009"\nbot_aci = "{ACI_B}"')
    problem = _only(tmp_path, text)
    assert problem.field == "officers[1].aci"
    assert "bot's own aci" in problem.message


def test_two_team_scopes_on_one_group(tmp_path: Path) -> None:
    second = f"""
[[scopes]]
id = "team-two"
label = "Copy of the team"
kind = "team"
group_id = "{GROUP}"
officers = ["ana"]
"""
    problem = _only(tmp_path, VALID + second)
    assert problem.field == "scopes[2].group_id"
    assert "same Signal group as 'team'" in problem.message


def test_no_coordinator(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('roles = ["officer", "coordinator"]', 'roles = ["officer"]'))
    # A single cross-reference problem still gets its field (it used to be split on "; ").
    assert problem.field == "officers"
    assert "nobody has the 'coordinator' role" in problem.message
    assert "escalations reach someone" in problem.message


def test_service_with_a_scheme(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('service = "127.0.0.1:8080"', 'service = "http://x:8080"'))
    assert problem.field == "signal.service"
    assert "without a scheme" in problem.message
    assert "127.0.0.1:8080" in problem.message


def test_unknown_timezone(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('"Europe/London"', '"Europe/Londn"'))
    assert problem.field == "organisation.timezone"
    assert "unknown time zone" in problem.message
    assert "IANA" in problem.message


def test_invalid_toml_gives_the_line(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('name = "Test Org"', "name = Test Org"))
    assert problem.field == ""
    assert problem.message.startswith("not valid TOML")
    assert "line 3" in problem.message


def test_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")
    [problem] = caught.value.problems
    assert "file not found" in problem.message
    assert "--config" in problem.message
    assert caught.value.source.endswith("absent.toml")


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "org.toml"
    path.write_bytes(VALID.replace("Test Org", "Caf\xe9").encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [p.message for p in caught.value.problems] == ["file is not UTF-8 text"]


def test_several_field_problems_are_several_lines(tmp_path: Path) -> None:
    text = _edit('"+15550100009"', '"5550100009"')
    text = _edit(ACI_B, "not-a-uuid", text)
    text = _edit('"Europe/London"', '"London"', text)
    text = _edit('kind = "chosen"', 'kind = "chosen"\ncolour = "red"', text)
    problems = _problems(tmp_path, text)
    assert sorted(p.field for p in problems) == [
        "officers[1].aci",
        "organisation.timezone",
        "scopes[1].colour",
        "signal.bot_number",
    ]


def test_several_cross_reference_problems_are_several_lines(tmp_path: Path) -> None:
    text = _edit('roles = ["officer", "coordinator"]', 'roles = ["officer"]')
    text = _edit('id = "ben"', 'id = "ana"', text)
    text = _edit('support = ["ben"]', 'support = ["ghost"]', text)
    problems = _problems(tmp_path, text)
    fields = [p.field for p in problems]
    assert "officers[1].id" in fields
    assert "scopes[1].support" in fields
    assert "officers" in fields
    assert any("'ghost'" in p.message for p in problems)
    assert all(p.field and p.message for p in problems)


# --- Realistic slips the messages should explain ---------------------------------------


def test_uppercase_officer_id_explains_the_id_format(tmp_path: Path) -> None:
    text = _edit('id = "ana"', 'id = "Ana"')
    text = _edit(
        'officers = ["ana", "ben"]\n\n[[scopes]]', 'officers = ["Ana", "ben"]\n\n[[scopes]]', text
    )
    text = _edit('officers = ["ana", "ben"]\nsupport', 'officers = ["Ana", "ben"]\nsupport', text)
    problems = _problems(tmp_path, text)
    assert {p.field for p in problems} == {
        "officers[0].id",
        "scopes[0].officers[0]",
        "scopes[1].officers[0]",
    }
    assert all("lowercase id" in p.message for p in problems)


def test_invalid_only_entry_is_not_also_reported_as_empty(tmp_path: Path) -> None:
    text = _edit('roles = ["officer", "support"]', 'roles = ["officer", "supporter"]')
    problem = _only(tmp_path, text)
    assert problem.field == "officers[1].roles[1]"
    assert "'support'" in problem.message


def test_roles_written_as_a_string(tmp_path: Path) -> None:
    problem = _only(tmp_path, _edit('roles = ["officer", "support"]', 'roles = "support"'))
    assert problem.field == "officers[1].roles"
    assert "expected a list in square brackets" in problem.message


def test_list_section_written_with_single_brackets(tmp_path: Path) -> None:
    text = _edit("[[categories]]", "[categories]")
    problem = _only(tmp_path, text)
    assert problem.field == "categories"
    assert "[[categories]]" in problem.message


def test_no_categories_at_all(tmp_path: Path) -> None:
    text = VALID[: VALID.index("[[categories]]")]
    problem = _only(tmp_path, text)
    assert problem.field == "categories"
    assert "add at least one [[categories]] entry" in problem.message


def test_choice_settings_list_the_choices(tmp_path: Path) -> None:
    text = _edit('service = "127.0.0.1:8080"', 'service = "127.0.0.1:8080"\nconnection = "ws"')
    problem = _only(tmp_path, text)
    assert problem.field == "signal.connection"
    assert problem.message == "expected one of: 'http', 'https'"


def test_internal_group_id_pasted_instead_of_public_id(tmp_path: Path) -> None:
    internal = base64.b64decode(GROUP.removeprefix("group.")).decode()
    problem = _only(tmp_path, _edit(GROUP, internal))
    assert problem.field == "scopes[0].group_id"
    assert "'group.'" in problem.message
    assert "internal_id" in problem.message


def test_group_ids_made_like_signal_cli_rest_api_are_accepted() -> None:
    # "group." + base64 of the internal id (itself base64 of 32 bytes). Base64 of base64
    # text never contains '+' or '/', so the strict pattern accepts every real id.
    from relay.config.schema import PUBLIC_GROUP_ID

    for seed in range(500):
        internal = base64.b64encode(hashlib.sha256(str(seed).encode()).digest())
        public = "group." + base64.b64encode(internal).decode()
        assert PUBLIC_GROUP_ID.match(public), public


def test_coordination_group_id_is_checked(tmp_path: Path) -> None:
    problem = _only(tmp_path, VALID + '\n[coordination]\nchannel = "group"\ngroup_id = "abc"\n')
    assert problem.field == "coordination.group_id"
    assert "public group id" in problem.message


def test_coordination_group_needs_group_id(tmp_path: Path) -> None:
    problem = _only(tmp_path, VALID + '\n[coordination]\nchannel = "group"\n')
    assert problem.field == "coordination"
    assert "needs group_id" in problem.message
