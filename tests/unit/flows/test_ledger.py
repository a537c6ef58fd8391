"""The moderation ledger's pure rules: warning series, expiry, vote tallies, strict parsing."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers.flows.ledger import (
    VOTE_ALPHABET,
    VoteResult,
    active_warnings,
    current_series,
    local_day,
    local_time,
    parse_name,
    parse_vote,
    parse_vote_ref,
    parse_warn,
    should_open_vote,
    vote_deadline,
    vote_result,
)
from relay.config import ConfigError, Role, parse_config

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
EXPIRY = timedelta(days=182)
MODS = {"ana", "ben", "cy"}
CLOSES = T0 + timedelta(hours=72)


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


# -- warning series ----------------------------------------------------------------------
def test_no_warnings_count_zero() -> None:
    assert active_warnings([], T0, EXPIRY) == 0


def test_warnings_within_the_expiry_all_count() -> None:
    dates = [days(0), days(30), days(100)]
    assert active_warnings(dates, days(100), EXPIRY) == 3
    assert active_warnings(reversed(dates), days(200), EXPIRY) == 3  # order does not matter


def test_expiry_boundary_runs_from_the_newest_warning() -> None:
    dates = [days(0), days(100)]
    just_before = days(100) + EXPIRY - timedelta(seconds=1)
    assert active_warnings(dates, just_before, EXPIRY) == 2
    assert active_warnings(dates, days(100) + EXPIRY, EXPIRY) == 0  # six months: expired
    assert active_warnings(dates, days(100) + EXPIRY + timedelta(days=1), EXPIRY) == 0


def test_a_warning_after_six_months_without_one_starts_a_new_series() -> None:
    old = [days(0), days(10), days(20)]
    fresh = days(20) + timedelta(days=183)
    assert active_warnings([*old, fresh], fresh, EXPIRY) == 1
    assert current_series([*old, fresh], fresh, EXPIRY) == [fresh]
    second = fresh + timedelta(days=5)
    assert active_warnings([*old, fresh, second], second, EXPIRY) == 2


def test_a_gap_of_exactly_the_expiry_also_resets() -> None:
    first = days(0)
    again = first + EXPIRY
    assert active_warnings([first, again], again, EXPIRY) == 1
    almost = first + EXPIRY - timedelta(minutes=1)
    assert active_warnings([first, almost], almost, EXPIRY) == 2


def test_each_warning_keeps_the_series_alive() -> None:
    # every gap is under six months, so the series spans more than a year
    dates = [days(0), days(150), days(300), days(450)]
    assert active_warnings(dates, days(451), EXPIRY) == 4


def test_future_dates_are_not_counted() -> None:
    assert active_warnings([days(0), days(10)], days(5), EXPIRY) == 1


@pytest.mark.parametrize(("active", "is_open", "expected"), [
    (2, False, False), (3, False, True), (4, False, True), (3, True, False), (0, False, False),
])
def test_a_vote_opens_at_the_threshold_unless_one_is_open(active: int, is_open: bool,
                                                          expected: bool) -> None:
    assert should_open_vote(active, 3, vote_open=is_open) is expected


# -- vote tallies --------------------------------------------------------------------------
def test_everyone_voted_early_closes_the_vote() -> None:
    result = vote_result({"ana": True, "ben": True, "cy": False}, MODS, CLOSES, T0)
    assert result == VoteResult(closed=True, removed=True, yes=2, no=1)
    closed, removed, yes, no = result  # a plain tuple as well
    assert (closed, removed, yes, no) == (True, True, 2, 1)


def test_not_everyone_voted_before_the_deadline_stays_open() -> None:
    result = vote_result({"ana": True, "ben": True}, MODS, CLOSES, CLOSES - timedelta(seconds=1))
    assert result == VoteResult(closed=False, removed=False, yes=2, no=0)


def test_at_the_deadline_the_votes_cast_decide() -> None:
    assert vote_result({"ana": True}, MODS, CLOSES, CLOSES) == VoteResult(True, True, 1, 0)
    assert vote_result({"ana": False}, MODS, CLOSES, CLOSES) == VoteResult(True, False, 0, 1)


def test_a_tie_is_not_a_majority() -> None:
    result = vote_result({"ana": True, "ben": False}, MODS, CLOSES, CLOSES)
    assert result == VoteResult(closed=True, removed=False, yes=1, no=1)
    four = {"ana", "ben", "cy", "dee"}
    tie = vote_result({"ana": True, "ben": True, "cy": False, "dee": False}, four, CLOSES, T0)
    assert tie == VoteResult(closed=True, removed=False, yes=2, no=2)


def test_no_votes_at_the_deadline_is_not_removal() -> None:
    assert vote_result({}, MODS, CLOSES, CLOSES + timedelta(days=1)) == VoteResult(
        closed=True, removed=False, yes=0, no=0)


def test_ballots_of_non_moderators_do_not_count() -> None:
    result = vote_result({"ana": False, "mallory": True, "eve": True}, MODS, CLOSES, T0)
    assert result == VoteResult(closed=False, removed=False, yes=0, no=1)


def test_deadline_adds_the_vote_hours() -> None:
    assert vote_deadline(T0, 72) == T0 + timedelta(days=3)


# -- parsing ---------------------------------------------------------------------------------
def test_warn_takes_a_name_and_a_note() -> None:
    assert parse_warn("Alex Example | shouted in #general", max_name=120, max_note=2000) == (
        "Alex Example", "shouted in #general")
    assert parse_warn("  alex  EXAMPLE|again ", max_name=120, max_note=2000) == (
        "alex EXAMPLE", "again")
    assert parse_warn("Alex | a | b", max_name=120, max_note=2000) == ("Alex", "a | b")


@pytest.mark.parametrize("args", [
    "", "Alex Example", "Alex Example |", "| a note", "  |  ", "\u200b\u202e | note",
    "!!! | note",
])
def test_warn_without_a_name_or_a_note_is_refused(args: str) -> None:
    assert parse_warn(args, max_name=120, max_note=2000) is None


def test_warn_strips_invisible_characters_and_caps_lengths() -> None:
    parsed = parse_warn("Al\u200bex\u202e | " + "n" * 50, max_name=120, max_note=10)
    assert parsed == ("Alex", "n" * 10)


def test_names_must_have_a_letter_or_digit() -> None:
    assert parse_name("  Alex   Example ", 120) == "Alex Example"
    assert parse_name("...", 120) is None
    assert parse_name("", 120) is None


@pytest.mark.parametrize(("args", "expected"), [
    ("V-K7F3 yes", ("V-K7F3", True)),
    ("v-k7f3 NO", ("V-K7F3", False)),
    ("  V-K7F3   Yes  ", ("V-K7F3", True)),
])
def test_vote_parses_a_reference_and_yes_or_no(args: str, expected: tuple[str, bool]) -> None:
    assert parse_vote(args) == expected


@pytest.mark.parametrize("args", [
    "", "V-K7F3", "yes", "V-K7F3 maybe", "V-K7F3 yes please", "K7F-3Q yes", "V-K7F yes",
    "V-K7F33 yes", "V-K7F0 yes", "V-K7FI yes", "VK7F3 yes", "V-K7F3\u200b yes", "V-K7F3 y",
])
def test_malformed_votes_are_refused(args: str) -> None:
    assert parse_vote(args) is None


def test_vote_refs_use_the_unambiguous_alphabet() -> None:
    assert not set("ILO01") & set(VOTE_ALPHABET)
    assert parse_vote_ref("v-abcd") == "V-ABCD"
    assert parse_vote_ref("V-ABCD\n") == "V-ABCD"
    assert parse_vote_ref("V-ABCDE") is None


# -- times on the organisation's clock ----------------------------------------------------------
def test_deadline_is_shown_in_local_time() -> None:
    assert local_time(T0, "America/New_York") == "Mon 5 Jan 2026, 10:00 EST"
    assert local_time(datetime(2026, 7, 1, 3, 30, tzinfo=UTC), "America/New_York") == (
        "Tue 30 Jun 2026, 23:30 EDT")
    assert local_day(datetime(2026, 7, 1, 3, 30, tzinfo=UTC), "America/New_York") == (
        "30 Jun 2026")
    assert local_time(T0, "UTC") == "Mon 5 Jan 2026, 15:00 UTC"


# -- the [moderation] config section -----------------------------------------------------------
LABOUR = Path(__file__).resolve().parents[3] / "deploy" / "examples" / "labour.toml"


def _config(moderation: dict[str, object]) -> dict[str, object]:
    data = tomllib.loads(LABOUR.read_text("utf-8"))
    data["moderation"] = moderation
    return data


def test_moderation_is_off_by_default_and_defaults_to_every_officer() -> None:
    cfg = parse_config(_config({}))
    assert not cfg.moderation.enabled
    assert (cfg.moderation.warning_expiry_days, cfg.moderation.warnings_for_vote,
            cfg.moderation.vote_hours) == (182, 3, 72)
    assert cfg.moderation.moderator_ids(cfg.officers) == tuple(
        o.id for o in cfg.officers if Role.OFFICER in o.roles)


def test_moderators_must_be_officers() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config({"enabled": True, "moderators": ["ct-harriet", "ct-nobody"]}))
    assert [str(p) for p in caught.value.problems] == [
        ("moderation: 'ct-nobody' in moderators is not in [[officers]]; add an [[officers]] "
         'entry with id = "ct-nobody" or fix the spelling'),
    ]
    cfg = parse_config(_config({"enabled": True, "moderators": ["ct-harriet", "ct-harriet"]}))
    assert cfg.moderation.moderator_ids(cfg.officers) == ("ct-harriet",)


@pytest.mark.parametrize("bad", [
    {"warning_expiry_days": 0}, {"warnings_for_vote": 0}, {"vote_hours": 0},
    {"moderators": ["Not A Slug"]}, {"enabeld": True},
])
def test_bad_moderation_settings_are_named(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(bad))
    assert all(p.field.startswith("moderation") for p in caught.value.problems)
