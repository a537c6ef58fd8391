"""Check-in and SLA scheduling math (SECURITY.md section 6.5): pure, fixed aware datetimes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from handlers.flows.schedule import (
    CheckinPolicy,
    SlaPolicy,
    next_checkin,
    nominal_due,
    out_of_quiet_hours,
    resume_after_pause,
    sla_first_due,
    sla_next_due,
)
from relay.config.schema import Checkins, Escalation

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = (LONDON, NEW_YORK)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def policy(zone: ZoneInfo = LONDON, **changes: Any) -> CheckinPolicy:
    base = CheckinPolicy.from_config(Checkins(), zone.key)
    return replace(base, **changes)


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0,
    second: int = 0, *, fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone, fold=fold)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
        ) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def quiet(when: datetime, p: CheckinPolicy) -> bool:
    """An independent oracle for 'inside quiet hours' (local wall clock, [start, end))."""
    t = when.astimezone(p.zone).time()
    if p.quiet_start == p.quiet_end:
        return False
    if p.quiet_start < p.quiet_end:
        return p.quiet_start <= t < p.quiet_end
    return t >= p.quiet_start or t < p.quiet_end


def window_length(p: CheckinPolicy) -> timedelta:
    start = datetime.combine(date(2000, 1, 1), p.quiet_start)
    end = datetime.combine(date(2000, 1, 1), p.quiet_end)
    return (end - start) % DAY


# -- config ---------------------------------------------------------------------------------


def test_from_config_reads_the_defaults() -> None:
    p = CheckinPolicy.from_config(Checkins(), "Europe/London")
    assert p.offsets == (DAY, 3 * DAY, 7 * DAY, 14 * DAY)
    assert p.repeat == 14 * DAY
    assert p.quiet_start == time(21, 0)
    assert p.quiet_end == time(9, 0)
    assert p.pause == 14 * DAY
    assert p.zone == LONDON


def test_from_config_reads_custom_values() -> None:
    cfg = Checkins(offsets_days=(2, 5), repeat_days=30, quiet_start="22:15", quiet_end="07:45",
                   pause_days=3)
    p = CheckinPolicy.from_config(cfg, "America/New_York")
    assert p.offsets == (2 * DAY, 5 * DAY)
    assert p.repeat == 30 * DAY
    assert (p.quiet_start, p.quiet_end) == (time(22, 15), time(7, 45))
    assert p.pause == 3 * DAY
    assert p.zone == NEW_YORK


def test_from_config_rejects_an_unknown_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        CheckinPolicy.from_config(Checkins(), "Mars/Olympus_Mons")


@pytest.mark.parametrize(
    "changes",
    [
        {"offsets": ()},
        {"offsets": (DAY, DAY)},
        {"offsets": (3 * DAY, DAY)},
        {"offsets": (timedelta(0), DAY)},
        {"repeat": timedelta(0)},
        {"pause": -DAY},
        {"quiet_start": time(21, 0, tzinfo=UTC)},
    ],
)
def test_a_bad_policy_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        policy(**changes)


def test_sla_from_config_reads_the_defaults() -> None:
    s = SlaPolicy.from_config(Escalation())
    assert s == SlaPolicy(first=24 * HOUR, realert=12 * HOUR, immediate_first=2 * HOUR,
                          immediate_realert=2 * HOUR)
    assert SlaPolicy.from_config(Escalation(sla_hours=1.5)).first == timedelta(minutes=90)
    with pytest.raises(ValueError, match="positive"):
        SlaPolicy(first=timedelta(0), realert=HOUR, immediate_first=HOUR, immediate_realert=HOUR)


# -- cadence --------------------------------------------------------------------------------


def test_default_cadence_is_1_3_7_14_then_every_14_days() -> None:
    p = policy()
    submitted = utc(2024, 1, 10, 12, 0)  # noon in London in winter: never quiet
    days = [(nominal_due(submitted, n, p) - submitted) / DAY for n in range(8)]
    assert days == [1, 3, 7, 14, 28, 42, 56, 70]
    dues = [next_checkin(submitted, submitted, p, start=n) for n in range(8)]
    assert dues == [(n, submitted + d * DAY) for n, d in enumerate(days)]


def test_walking_the_schedule_one_check_in_at_a_time() -> None:
    p = policy()
    submitted = utc(2024, 1, 10, 12, 0)
    seen = []
    n, due = next_checkin(submitted, submitted, p)
    for _ in range(6):
        seen.append((due - submitted) / DAY)
        n, due = next_checkin(submitted, due, p, start=n + 1)
    assert seen == [1, 3, 7, 14, 28, 42]


def test_nominal_due_is_in_utc_and_refuses_a_negative_n() -> None:
    p = policy()
    submitted = local(NEW_YORK, 2024, 1, 10, 7, 0)
    assert nominal_due(submitted, 0, p) == utc(2024, 1, 11, 12, 0)
    assert nominal_due(submitted, 0, p).tzinfo is UTC
    with pytest.raises(ValueError, match="n must"):
        nominal_due(submitted, -1, p)


def test_a_custom_cadence() -> None:
    p = policy(offsets=(2 * HOUR,), repeat=DAY, quiet_start=time(0), quiet_end=time(0))
    submitted = utc(2024, 1, 1, 23, 0)
    assert [nominal_due(submitted, n, p) for n in range(3)] == [
        utc(2024, 1, 2, 1, 0), utc(2024, 1, 3, 1, 0), utc(2024, 1, 4, 1, 0)]


# -- quiet hours ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ((2024, 1, 15, 23, 30), (2024, 1, 16, 9, 0)),  # late evening -> next morning
        ((2024, 1, 15, 21, 0), (2024, 1, 16, 9, 0)),  # quiet_start itself is quiet
        ((2024, 1, 15, 0, 0), (2024, 1, 15, 9, 0)),  # after midnight -> same morning
        ((2024, 1, 15, 8, 59), (2024, 1, 15, 9, 0)),  # one minute early -> same day
        ((2024, 1, 15, 9, 0), (2024, 1, 15, 9, 0)),  # quiet_end itself is not quiet
        ((2024, 1, 15, 20, 59), (2024, 1, 15, 20, 59)),  # the last allowed minute
        ((2024, 1, 15, 14, 0), (2024, 1, 15, 14, 0)),
        ((2024, 12, 31, 22, 0), (2025, 1, 1, 9, 0)),  # across a year end
    ],
)
@pytest.mark.parametrize("zone", ZONES, ids=lambda z: z.key)
def test_quiet_hours_default_window(
    zone: ZoneInfo, wall: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    shifted = out_of_quiet_hours(local(zone, *wall), policy(zone))
    assert shifted == local(zone, *expected)
    assert shifted.tzinfo is UTC


def test_quiet_hours_take_seconds_into_account() -> None:
    p = policy()
    assert out_of_quiet_hours(local(LONDON, 2024, 1, 15, 8, 59, 59), p) == utc(2024, 1, 15, 9)
    assert out_of_quiet_hours(local(LONDON, 2024, 1, 15, 20, 59, 59), p) == utc(
        2024, 1, 15, 20, 59, 59)


def test_quiet_hours_are_local_not_utc() -> None:
    p = policy(NEW_YORK)
    # 23:30 UTC is 18:30 in New York in winter: not quiet there.
    assert out_of_quiet_hours(utc(2024, 1, 15, 23, 30), p) == utc(2024, 1, 15, 23, 30)
    # 03:00 UTC is 22:00 the evening before in New York: moves to 09:00 EST = 14:00 UTC.
    assert out_of_quiet_hours(utc(2024, 1, 16, 3, 0), p) == utc(2024, 1, 16, 14, 0)


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ((2024, 5, 6, 11, 59), (2024, 5, 6, 11, 59)),
        ((2024, 5, 6, 12, 0), (2024, 5, 6, 14, 0)),
        ((2024, 5, 6, 13, 30), (2024, 5, 6, 14, 0)),
        ((2024, 5, 6, 14, 0), (2024, 5, 6, 14, 0)),
        ((2024, 5, 6, 23, 30), (2024, 5, 6, 23, 30)),
        ((2024, 5, 6, 3, 0), (2024, 5, 6, 3, 0)),
    ],
)
def test_a_window_that_does_not_wrap_midnight(
    wall: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    p = policy(quiet_start=time(12, 0), quiet_end=time(14, 0))
    assert out_of_quiet_hours(local(LONDON, *wall), p) == local(LONDON, *expected)


@pytest.mark.parametrize("hour", range(24))
def test_equal_start_and_end_means_never_quiet(hour: int) -> None:
    p = policy(quiet_start=time(9, 0), quiet_end=time(9, 0))
    when = utc(2024, 3, 31, hour, 30)  # London's spring-forward day
    assert out_of_quiet_hours(when, p) == when


def test_a_quiet_check_in_moves_the_schedule_but_not_the_next_offset() -> None:
    p = policy()
    submitted = local(LONDON, 2024, 1, 10, 22, 30)  # submitted in the evening
    n, due = next_checkin(submitted, submitted, p)
    assert (n, due) == (0, local(LONDON, 2024, 1, 12, 9, 0))  # +1 day is 22:30 -> 09:00
    assert due > nominal_due(submitted, 0, p)
    # The next one is still counted from the submission, not from the shifted time.
    assert next_checkin(submitted, due, p, start=1) == (1, local(LONDON, 2024, 1, 14, 9, 0))


def test_check_ins_that_shift_onto_the_same_instant_collapse() -> None:
    p = policy(offsets=(HOUR, 2 * HOUR, 30 * HOUR))
    submitted = local(LONDON, 2024, 1, 10, 22, 0)  # +1 h and +2 h both fall in quiet hours
    n, due = next_checkin(submitted, submitted, p)
    assert (n, due) == (0, local(LONDON, 2024, 1, 11, 9, 0))
    assert nominal_due(submitted, 1, p) < due
    assert next_checkin(submitted, due, p, start=n + 1) == (2, local(LONDON, 2024, 1, 12, 9, 0))


# -- daylight saving ------------------------------------------------------------------------

# 2024: London springs forward 31 Mar 01:00 UTC and falls back 27 Oct 01:00 UTC; New York
# springs forward 10 Mar 07:00 UTC and falls back 3 Nov 06:00 UTC.


@pytest.mark.parametrize(
    ("zone", "evening", "morning_utc"),
    [
        (LONDON, (2024, 3, 30, 23, 30), utc(2024, 3, 31, 8, 0)),  # 09:00 BST
        (LONDON, (2024, 10, 26, 23, 30), utc(2024, 10, 27, 9, 0)),  # 09:00 GMT
        (NEW_YORK, (2024, 3, 9, 23, 30), utc(2024, 3, 10, 13, 0)),  # 09:00 EDT
        (NEW_YORK, (2024, 11, 2, 23, 30), utc(2024, 11, 3, 14, 0)),  # 09:00 EST
    ],
    ids=["london-spring", "london-fall", "new-york-spring", "new-york-fall"],
)
def test_quiet_end_on_a_dst_night_is_that_mornings_local_0900(
    zone: ZoneInfo, evening: tuple[int, ...], morning_utc: datetime
) -> None:
    p = policy(zone)
    shifted = out_of_quiet_hours(local(zone, *evening), p)
    assert shifted == morning_utc
    assert shifted.astimezone(zone).time() == time(9, 0)
    year, month, day = evening[:3]
    # The small hours of the same night go to the same morning.
    small_hours = local(zone, year, month, day) + DAY  # wall-clock midnight
    assert out_of_quiet_hours(small_hours, p) == morning_utc
    # A quiet window spanning the change lasts 11 h (spring forward) or 13 h (fall back).
    nine_pm = local(zone, year, month, day, 21)
    elapsed = out_of_quiet_hours(nine_pm, p) - nine_pm
    assert elapsed == (11 * HOUR if month < 6 else 13 * HOUR)


@pytest.mark.parametrize(
    ("zone", "submitted_wall", "local_hours"),
    [
        # Submitted at noon before the change: the elapsed-time offsets land at 13:00 after
        # spring forward and at 11:00 after fall back, never at "noon again".
        (LONDON, (2024, 3, 29, 12, 0), [12, 13, 13, 13, 13]),
        (LONDON, (2024, 10, 25, 12, 0), [12, 11, 11, 11, 11]),
        (NEW_YORK, (2024, 3, 8, 12, 0), [12, 13, 13, 13, 13]),
        (NEW_YORK, (2024, 11, 1, 12, 0), [12, 11, 11, 11, 11]),
    ],
    ids=["london-spring", "london-fall", "new-york-spring", "new-york-fall"],
)
def test_check_ins_across_a_dst_change_keep_their_elapsed_offsets(
    zone: ZoneInfo, submitted_wall: tuple[int, ...], local_hours: list[int]
) -> None:
    p = policy(zone)
    submitted = local(zone, *submitted_wall)
    n, due = next_checkin(submitted, submitted, p)
    for expected_days, hour in zip((1, 3, 7, 14, 28), local_hours, strict=True):
        assert due - submitted == expected_days * DAY
        assert due.astimezone(zone).hour == hour
        n, due = next_checkin(submitted, due, p, start=n + 1)


@pytest.mark.parametrize(
    ("zone", "evening", "quiet_end", "expected"),
    [
        # 01:30 does not exist in London on 31 Mar: first valid instant is 02:00 BST.
        (LONDON, (2024, 3, 30, 23, 30), time(1, 30), utc(2024, 3, 31, 1, 0)),
        # 02:30 does not exist in New York on 10 Mar: first valid instant is 03:00 EDT.
        (NEW_YORK, (2024, 3, 9, 23, 30), time(2, 30), utc(2024, 3, 10, 7, 0)),
        # 01:30 happens twice: the earlier one (BST / EDT).
        (LONDON, (2024, 10, 26, 23, 30), time(1, 30), utc(2024, 10, 27, 0, 30)),
        (NEW_YORK, (2024, 11, 2, 23, 30), time(1, 30), utc(2024, 11, 3, 5, 30)),
    ],
    ids=["london-gap", "new-york-gap", "london-twice", "new-york-twice"],
)
def test_a_quiet_end_that_is_skipped_or_repeated(
    zone: ZoneInfo, evening: tuple[int, ...], quiet_end: time, expected: datetime
) -> None:
    p = policy(zone, quiet_start=time(23, 0), quiet_end=quiet_end)
    shifted = out_of_quiet_hours(local(zone, *evening), p)
    assert shifted == expected
    assert not quiet(shifted, p)


def test_after_the_first_of_a_repeated_quiet_end_the_second_one_is_used() -> None:
    p = policy(NEW_YORK, quiet_start=time(23, 0), quiet_end=time(1, 30))
    # 01:15 EST (fold=1), after 01:30 EDT has passed: the wall clock is quiet again.
    when = local(NEW_YORK, 2024, 11, 3, 1, 15, fold=1)
    # (fold=1 times never compare equal across zones, PEP 495: compare in UTC.)
    assert when.astimezone(UTC) == utc(2024, 11, 3, 6, 15)
    assert out_of_quiet_hours(when, p) == utc(2024, 11, 3, 6, 30)  # 01:30 EST
    # Just before it, 01:15 EDT (fold=0) goes to the first 01:30, EDT.
    assert out_of_quiet_hours(local(NEW_YORK, 2024, 11, 3, 1, 15), p) == utc(2024, 11, 3, 5, 30)


# -- catch-up after an outage ---------------------------------------------------------------


def test_after_an_outage_the_next_check_in_is_the_first_one_still_ahead() -> None:
    p = policy()
    submitted = utc(2024, 1, 10, 12, 0)
    day10 = submitted + 10 * DAY  # the 1-, 3- and 7-day ones were missed
    assert next_checkin(submitted, day10, p) == (3, submitted + 14 * DAY)
    # The caller fires its stored overdue row (n=0) once now, then asks from n + 1: the
    # missed 3- and 7-day ones are not returned.
    assert next_checkin(submitted, day10, p, start=1) == (3, submitted + 14 * DAY)


def test_a_due_time_equal_to_after_is_not_returned() -> None:
    p = policy()
    submitted = utc(2024, 1, 10, 12, 0)
    assert next_checkin(submitted, submitted + DAY, p) == (1, submitted + 3 * DAY)
    just_before = submitted + DAY - timedelta(microseconds=1)
    assert next_checkin(submitted, just_before, p) == (0, submitted + DAY)


def test_a_very_long_outage_lands_in_the_repeat_phase() -> None:
    p = policy()
    submitted = utc(2024, 1, 10, 12, 0)
    after = submitted + 3650 * DAY + HOUR
    n, due = next_checkin(submitted, after, p)
    assert due > after
    assert due - after <= 14 * DAY
    assert due == nominal_due(submitted, n, p) or quiet(nominal_due(submitted, n, p), p)
    assert next_checkin(submitted, after, p, start=0) == next_checkin(
        submitted, after, p, start=n)
    assert out_of_quiet_hours(nominal_due(submitted, n - 1, p), p) <= after


def test_an_after_before_the_submission_gives_the_first_check_in() -> None:
    p = policy()
    submitted = utc(2024, 1, 10, 12, 0)
    assert next_checkin(submitted, submitted - 30 * DAY, p) == (0, submitted + DAY)
    assert next_checkin(submitted, submitted - 30 * DAY, p, start=2) == (2, submitted + 7 * DAY)
    with pytest.raises(ValueError, match="start"):
        next_checkin(submitted, submitted, p, start=-1)


# -- pause ----------------------------------------------------------------------------------


def test_resume_after_pause() -> None:
    p = policy()
    now = local(LONDON, 2024, 1, 10, 15, 0)
    assert resume_after_pause(now, p) == local(LONDON, 2024, 1, 24, 15, 0)
    late = local(LONDON, 2024, 1, 10, 22, 15)
    assert resume_after_pause(late, p) == local(LONDON, 2024, 1, 25, 9, 0)
    # Elapsed time across spring forward: 15:00 GMT + 14 days = 16:00 BST.
    spring = local(LONDON, 2024, 3, 25, 15, 0)
    resumed = resume_after_pause(spring, p)
    assert resumed - spring == 14 * DAY
    assert resumed.astimezone(LONDON).hour == 16
    assert resumed.tzinfo is UTC
    short = policy(pause=HOUR)
    assert resume_after_pause(local(LONDON, 2024, 1, 10, 20, 30), short) == local(
        LONDON, 2024, 1, 11, 9, 0)


# -- SLA ------------------------------------------------------------------------------------

SLA = SlaPolicy.from_config(Escalation())
CREATED = utc(2024, 6, 1, 10, 0)


def test_sla_first_due() -> None:
    assert sla_first_due(CREATED, False, SLA) == CREATED + 24 * HOUR
    assert sla_first_due(CREATED, True, SLA) == CREATED + 2 * HOUR
    in_ny = CREATED.astimezone(NEW_YORK)
    assert sla_first_due(in_ny, False, SLA) == CREATED + 24 * HOUR
    assert sla_first_due(in_ny, False, SLA).tzinfo is UTC


def test_sla_regular_rhythm() -> None:
    first = sla_first_due(CREATED, False, SLA)
    assert sla_next_due(first, first, False, SLA) == first + 12 * HOUR
    assert sla_next_due(first, first + 12 * HOUR, False, SLA) == first + 24 * HOUR
    assert sla_next_due(first, first + 5 * HOUR, False, SLA) == first + 12 * HOUR
    assert sla_next_due(first, first - HOUR, False, SLA) == first  # not yet due at all
    immediate = sla_first_due(CREATED, True, SLA)
    assert sla_next_due(immediate, immediate, True, SLA) == immediate + 2 * HOUR


@pytest.mark.parametrize("k", [0, 1, 2, 7])
def test_sla_now_exactly_on_a_slot_gives_the_next_slot(k: int) -> None:
    first = sla_first_due(CREATED, False, SLA)
    slot = first + k * 12 * HOUR
    assert sla_next_due(first, slot, False, SLA) == slot + 12 * HOUR
    tick = timedelta(microseconds=1)
    assert sla_next_due(first, slot - tick, False, SLA) == slot
    assert sla_next_due(first, slot + tick, False, SLA) == slot + 12 * HOUR


def test_sla_after_a_three_day_outage_gives_one_catch_up_then_the_rhythm() -> None:
    first = sla_first_due(CREATED, False, SLA)
    now = first + 3 * DAY + 5 * HOUR  # six slots were missed while the bot was down
    after_catch_up = sla_next_due(first, now, False, SLA)
    assert after_catch_up == first + 3 * DAY + 12 * HOUR  # one slot ahead, not a backlog
    assert now < after_catch_up <= now + 12 * HOUR
    assert sla_next_due(first, after_catch_up, False, SLA) == after_catch_up + 12 * HOUR
    immediate = sla_first_due(CREATED, True, SLA)
    later = immediate + 3 * DAY + 30 * timedelta(minutes=1)
    assert sla_next_due(immediate, later, True, SLA) == immediate + 3 * DAY + 2 * HOUR


def test_sla_with_fractional_hours() -> None:
    s = SlaPolicy.from_config(Escalation(sla_hours=0.5, realert_hours=0.25))
    first = sla_first_due(CREATED, False, s)
    assert first == CREATED + timedelta(minutes=30)
    assert sla_next_due(first, first + timedelta(minutes=40), False, s) == first + timedelta(
        minutes=45)


# -- naive datetimes ------------------------------------------------------------------------

NAIVE = datetime(2024, 1, 10, 12, 0)  # noqa: DTZ001 - the point of the test
AWARE = utc(2024, 1, 10, 12, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: nominal_due(NAIVE, 0, p),
        lambda p: out_of_quiet_hours(NAIVE, p),
        lambda p: next_checkin(NAIVE, AWARE, p),
        lambda p: next_checkin(AWARE, NAIVE, p),
        lambda p: resume_after_pause(NAIVE, p),
        lambda _: sla_first_due(NAIVE, False, SLA),
        lambda _: sla_next_due(NAIVE, AWARE, False, SLA),
        lambda _: sla_next_due(AWARE, NAIVE, True, SLA),
    ],
)
def test_naive_datetimes_are_rejected(call: object) -> None:
    with pytest.raises(ValueError, match="aware"):
        call(policy())  # type: ignore[operator]


# -- properties over a year -----------------------------------------------------------------

POLICIES = {
    "default": {},
    "midday": {"quiet_start": time(12, 0), "quiet_end": time(14, 0)},
    "end-in-gap": {"quiet_start": time(22, 0), "quiet_end": time(2, 30)},
    "end-in-london-gap": {"quiet_start": time(0, 15), "quiet_end": time(1, 30)},
    "long": {"quiet_start": time(18, 0), "quiet_end": time(11, 0)},
}


def _sample_instants() -> list[datetime]:
    """Across 2024 with an odd step, plus every 10 minutes around each DST change."""
    instants = []
    t = utc(2024, 1, 1, 0, 7)
    while t < utc(2025, 1, 1):
        instants.append(t)
        t += timedelta(hours=5, minutes=17)
    for change in (utc(2024, 3, 10, 7), utc(2024, 3, 31, 1), utc(2024, 10, 27, 1),
                   utc(2024, 11, 3, 6)):
        instants.extend(change + timedelta(minutes=10 * i) for i in range(-6 * 30, 6 * 30))
    return instants


SAMPLES = _sample_instants()


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("zone", ZONES, ids=lambda z: z.key)
def test_shifted_times_are_never_quiet_never_early_and_never_too_late(
    zone: ZoneInfo, name: str
) -> None:
    p = policy(zone, **POLICIES[name])
    bound = window_length(p) + HOUR
    for when in SAMPLES:
        shifted = out_of_quiet_hours(when, p)
        assert not quiet(shifted, p), (when, shifted)
        assert when <= shifted <= when + bound, (when, shifted)
        assert (shifted == when) == (not quiet(when, p)), when
        assert out_of_quiet_hours(shifted, p) == shifted


@pytest.mark.parametrize("zone", ZONES, ids=lambda z: z.key)
def test_default_check_ins_over_a_year_respect_quiet_hours(zone: ZoneInfo) -> None:
    p = policy(zone)
    # The brief's bound, (24 h - quiet window) + 1 h, equals window + 1 h for the 12 h default.
    bound = (DAY - window_length(p)) + HOUR
    assert bound == window_length(p) + HOUR
    for submitted in SAMPLES[::3]:
        n, due = next_checkin(submitted, submitted, p)
        for _ in range(6):
            nominal = nominal_due(submitted, n, p)
            assert not quiet(due, p), (submitted, n, due)
            assert nominal <= due <= nominal + bound, (submitted, n, due)
            assert due.tzinfo is UTC
            n, due = next_checkin(submitted, due, p, start=n + 1)


@pytest.mark.parametrize("zone", ZONES, ids=lambda z: z.key)
def test_next_checkin_is_the_first_shifted_time_after(zone: ZoneInfo) -> None:
    p = policy(zone)
    submitted = local(zone, 2024, 2, 20, 20, 45)
    shifted = [out_of_quiet_hours(nominal_due(submitted, n, p), p) for n in range(40)]
    for after in SAMPLES[::7]:
        if after > shifted[-1] - 30 * DAY:
            continue
        n, due = next_checkin(submitted, after, p)
        expected = next(i for i, s in enumerate(shifted) if s > after)
        assert (n, due) == (expected, shifted[expected])
