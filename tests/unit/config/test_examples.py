"""The example configs in deploy/examples load cleanly and reproduce each code as written."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from relay.config import OrgConfig, Role, ScopeKind, load_config

EXAMPLES = Path(__file__).resolve().parents[3] / "deploy" / "examples"
ORGS = ("mpp", "score", "caracol", "labour")
TEXT_IDS = {"greeting": {"org"}, "urgent_help": set(), "next_steps": set()}


def _load(org: str) -> OrgConfig:
    return load_config(EXAMPLES / f"{org}.toml")


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _immediate(config: OrgConfig) -> set[str]:
    return {c.id for c in config.categories if c.immediate_review}


def _scopes_by_kind(config: OrgConfig) -> dict[ScopeKind, list[str]]:
    out: dict[ScopeKind, list[str]] = {}
    for scope in config.scopes:
        out.setdefault(scope.kind, []).append(scope.id)
    return out


def test_every_org_has_an_example() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.toml")) == sorted(ORGS)


@pytest.mark.parametrize("org", ORGS)
def test_example_loads_without_problems(org: str) -> None:
    config = _load(org)
    assert config.organisation.name
    assert config.storage.url == f"sqlite:///relay-data/{org}.db"
    assert config.keys.directory == Path("relay-keys") / org


@pytest.mark.parametrize("org", ORGS)
def test_example_texts_use_only_known_ids_and_placeholders(org: str) -> None:
    texts = _load(org).texts
    assert set(texts) == set(TEXT_IDS)
    for text_id, allowed in TEXT_IDS.items():
        assert _placeholders(texts[text_id]) <= allowed, text_id
        assert texts[text_id] == texts[text_id].strip()


@pytest.mark.parametrize("org", ORGS)
def test_greeting_says_who_reads_what_and_how_to_stop(org: str) -> None:
    greeting = _load(org).texts["greeting"]
    assert "{org}" in greeting
    assert "STOP" in greeting
    assert "the person running this service can see your Signal account" in greeting
    assert "officers never see your number or name if you stay anonymous" in greeting


@pytest.mark.parametrize("org", ORGS)
def test_urgent_help_names_emergency_services_and_org_contacts(org: str) -> None:
    config = _load(org)
    urgent = config.texts["urgent_help"]
    emergency = "999" if config.organisation.timezone == "Europe/London" else "911"
    assert f"you can call {emergency}" in urgent
    assert "To reach" in urgent
    assert "directly" in urgent


@pytest.mark.parametrize("org", ORGS)
def test_coordinators_exist_and_every_scope_member_is_an_officer(org: str) -> None:
    config = _load(org)
    assert config.coordinators()
    for scope in config.scopes:
        for officer_id in scope.officers:
            assert Role.OFFICER in config.officer(officer_id).roles, (scope.id, officer_id)


def test_examples_do_not_share_numbers_accounts_or_groups() -> None:
    configs = [_load(org) for org in ORGS]
    numbers = [c.signal.bot_number for c in configs]
    acis = [o.aci for c in configs for o in c.officers]
    groups = [s.group_id for c in configs for s in c.scopes if s.group_id] + [
        c.coordination.group_id for c in configs if c.coordination.group_id
    ]
    for values in (numbers, acis, groups):
        assert len(values) == len(set(values))


def test_time_zones_are_local_to_each_org() -> None:
    zones = {org: _load(org).organisation.timezone for org in ORGS}
    assert zones == {
        "mpp": "America/New_York",
        "score": "America/New_York",
        "caracol": "America/Los_Angeles",
        "labour": "Europe/London",
    }


# --- MPP -------------------------------------------------------------------------------

MPP_HELP = {
    "Support": "A person to talk to when you're having a hard time with someone or feeling "
    "overwhelmed",
    "Prevention": "I am concerned about this person's behavior.",
    "Intervention": "Help me talk to this person.",
    "Redress": "I have hard feelings towards this person.",
    "Transformation": "We address challenges from a restorative perspective in all cases.",
}
MPP_IMMEDIATE = {
    "sexual-assault-harassment",
    "undisclosed-history",
    "physical-violence",
    "emotional-violence",
    "repeated-behavior",
    "health-safety",
}


def test_mpp_offers_exactly_the_two_confidentiality_choices() -> None:
    config = _load("mpp")
    assert _scopes_by_kind(config) == {
        ScopeKind.TEAM: ["regen-group"],
        ScopeKind.CHOSEN: ["connected-person"],
    }
    team, chosen = config.scope("regen-group"), config.scope("connected-person")
    assert "entire Regenerative Culture group" in team.label
    assert "the person you connected with and another support person" in chosen.label
    # Any member of the group can be the person you connected with.
    assert set(chosen.officers) == set(team.officers) == {o.id for o in config.officers}
    assert len(chosen.support) >= 2


def test_mpp_has_the_five_kinds_of_help_in_its_own_words() -> None:
    config = _load("mpp")
    assert {h.label: h.description for h in config.help_kinds} == MPP_HELP
    assert [h.label for h in config.help_kinds] == list(MPP_HELP)


def test_mpp_flags_exactly_the_six_immediate_review_behaviours() -> None:
    config = _load("mpp")
    assert _immediate(config) == MPP_IMMEDIATE
    others = {c.id for c in config.categories} - MPP_IMMEDIATE
    assert {
        "discrimination",
        "consent",
        "online-dispute",
        "security-culture",
        "conflict",
        "other",
    } <= others


def test_mpp_coordinators_stay_inside_the_regen_group() -> None:
    config = _load("mpp")
    team = set(config.scope("regen-group").officers)
    assert len(config.coordinators()) >= 2
    assert {o.id for o in config.coordinators()} <= team


# --- SCORE -----------------------------------------------------------------------------


def test_score_team_scope_is_the_two_internal_grievance_officers() -> None:
    config = _load("score")
    igos = [o.id for o in config.officers if "Internal Grievance Officer" in o.display_name]
    assert len(igos) == 2
    assert _scopes_by_kind(config) == {ScopeKind.TEAM: ["igo-team"], ScopeKind.CHOSEN: ["one-igo"]}
    assert sorted(config.scope("igo-team").officers) == sorted(igos)
    chosen = config.scope("one-igo")
    assert sorted(chosen.officers) == sorted(igos)
    assert chosen.support
    assert not set(chosen.support) & set(igos)


def test_score_steering_committee_receives_alerts_but_no_reports() -> None:
    config = _load("score")
    in_scope = {ref for s in config.scopes for ref in (*s.officers, *s.support)}
    steering = [o for o in config.officers if "Steering Committee" in o.display_name]
    assert steering
    assert all(o.roles == (Role.COORDINATOR,) for o in steering)
    assert not {o.id for o in steering} & in_scope


def test_score_violence_self_harm_and_sexual_offences_need_immediate_review() -> None:
    config = _load("score")
    assert "self-harm" in config.category("violence-threats").label
    assert {"violence-threats", "sexual-offenses"} <= _immediate(config)
    assert not config.category("doxing").immediate_review


def test_score_categories_cover_the_nine_behaviours_and_non_members() -> None:
    ids = {c.id for c in _load("score").categories}
    assert {
        "discriminatory-language",
        "personal-attacks",
        "lifestyle-comments",
        "sexual-offenses",
        "inappropriate-contact",
        "doxing",
        "violence-threats",
        "undermining",
        "fascist-support",
        "non-member",
        "other",
    } <= ids


def test_score_wording_points_to_the_internal_grievance_procedures() -> None:
    texts = _load("score").texts
    assert "SCORE Internal Grievance Procedures" in texts["greeting"]
    assert "someone else is being harassed" in texts["greeting"]
    assert "only discuss the incident with the people who have signed on" in texts["next_steps"]


# --- Caracol ---------------------------------------------------------------------------


def test_caracol_offers_one_on_one_first_then_the_harm_redress_team() -> None:
    config = _load("caracol")
    assert [(s.id, s.kind) for s in config.scopes] == [
        ("one-on-one", ScopeKind.CHOSEN),
        ("harm-redress-team", ScopeKind.TEAM),
    ]
    assert config.scope("one-on-one").support


def test_caracol_categories_come_from_its_code() -> None:
    config = _load("caracol")
    ids = {c.id for c in config.categories}
    assert {
        "petty-bad-behavior",
        "minor-prejudice",
        "interpersonal-harm",
        "confidentiality",
        "disparaging-members",
        "other",
    } <= ids
    assert "Chatham House Rule" in config.category("confidentiality").label
    # The code names nothing that needs an immediate review.
    assert _immediate(config) == set()


def test_caracol_explains_national_referral_and_chatham_house() -> None:
    steps = _load("caracol").texts["next_steps"]
    assert "one-on-one" in steps
    assert "harm redress process" in steps
    assert "DSA National grievance process" in steps
    assert "Chatham House Rule" in steps
    assert "will not name you or other members" in steps


# --- Labour ----------------------------------------------------------------------------


def test_labour_greeting_invites_witnesses_and_bystanders() -> None:
    greeting = _load("labour").texts["greeting"]
    assert "witnesses" in greeting
    assert "bystanders" in greeting
    assert "collective responsibility" in greeting
    assert "not limited to those who have been subjected to abuse" in greeting


def test_labour_reports_go_to_the_party_complaints_team() -> None:
    config = _load("labour")
    assert _scopes_by_kind(config) == {ScopeKind.TEAM: ["complaints-team"]}
    assert config.intake.ask_exclusions


def test_labour_categories_follow_the_nec_statement() -> None:
    config = _load("labour")
    assert {
        "harassment",
        "intimidation",
        "hateful-language",
        "bullying",
        "discrimination",
        "sexual",
        "private-information",
        "trolling",
        "anonymous-abuse",
        "online-abuse",
    } <= {c.id for c in config.categories}
    assert _immediate(config) == {"sexual"}
    for ground in ("gender", "race", "religion", "age", "sexual orientation", "disability"):
        assert ground in config.category("discrimination").label
