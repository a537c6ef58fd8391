"""Pure scheduling math for check-ins and SLA re-alerts (SECURITY.md section 6.5).

Nothing here reads the clock: every instant comes in as an aware ``datetime`` argument and
every result goes out in UTC. Check-in offsets are elapsed time from the UTC submission
instant; only the quiet-hours shift looks at the organisation's local wall clock, through
``zoneinfo``, so daylight-saving changes move a check-in's *local* time, never its offset.

Quiet hours are the local wall-clock window ``[quiet_start, quiet_end)``: it may wrap
midnight (21:00-09:00) or not (12:00-14:00), and ``quiet_start == quiet_end`` means no quiet
hours at all. A time inside the window moves to the next local ``quiet_end``. If that local
time does not exist (clocks spring forward over it) the first valid instant after the gap is
used; if it happens twice (clocks fall back) the earlier instant is used, unless it is already
past, in which case the later one is.

Catch-up after an outage (the timers runner, not this module, does the firing): a row whose
``due_at`` is at or before ``now`` fires **once**, however many slots it missed, and the next
row is the first slot strictly after ``now`` (:func:`next_checkin`, :func:`sla_next_due`).
The idempotency key of a row (case, kind, n) stops a clock jump from firing it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relay.config.schema import Checkins, Escalation

# Longer than any quiet-hours shift (a window is shorter than a day, plus at most a 2 h
# daylight-saving jump), so ``next_checkin`` can skip whole repeat periods safely.
_MAX_SHIFT = timedelta(days=3)
# How many local days ahead ``out_of_quiet_hours`` looks for a usable ``quiet_end``.
_LOOKAHEAD_DAYS = 3

__all__ = [
    "CheckinPolicy",
    "SlaPolicy",
    "next_checkin",
    "nominal_due",
    "out_of_quiet_hours",
    "resume_after_pause",
    "sla_first_due",
    "sla_next_due",
]


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got a naive one")
    return value


def _require_positive(value: timedelta, name: str) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{name} must be a positive duration")


def _clock_time(value: str) -> time:
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class CheckinPolicy:
    """When to check in with a reporter: fixed offsets, then a repeat while the case is open.

    ``quiet_start``/``quiet_end`` are naive local wall-clock times in ``zone``.
    """

    offsets: tuple[timedelta, ...]
    repeat: timedelta
    quiet_start: time
    quiet_end: time
    zone: ZoneInfo
    pause: timedelta

    def __post_init__(self) -> None:
        if not self.offsets:
            raise ValueError("offsets must name at least one check-in")
        for offset in self.offsets:
            _require_positive(offset, "each offset")
        if any(a >= b for a, b in zip(self.offsets, self.offsets[1:], strict=False)):
            raise ValueError("offsets must be strictly increasing")
        _require_positive(self.repeat, "repeat")
        _require_positive(self.pause, "pause")
        if self.quiet_start.tzinfo is not None or self.quiet_end.tzinfo is not None:
            raise ValueError("quiet_start and quiet_end are naive local times in `zone`")

    @classmethod
    def from_config(cls, checkins: Checkins, timezone: str) -> CheckinPolicy:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone; use an IANA name such as 'Europe/London'") from exc
        return cls(
            offsets=tuple(timedelta(days=d) for d in checkins.offsets_days),
            repeat=timedelta(days=checkins.repeat_days),
            quiet_start=_clock_time(checkins.quiet_start),
            quiet_end=_clock_time(checkins.quiet_end),
            zone=zone,
            pause=timedelta(days=checkins.pause_days),
        )


def nominal_due(submitted_at: datetime, n: int, policy: CheckinPolicy) -> datetime:
    """The n-th check-in (0-based) before the quiet-hours shift, in UTC.

    ``submitted_at + offsets[n]``, and past the last offset every ``repeat`` after it:
    with the defaults +1, +3, +7, +14, +28, +42, ... days of elapsed time.
    """
    _require_aware(submitted_at, "submitted_at")
    if n < 0:
        raise ValueError("n must be 0 or more")
    base = submitted_at.astimezone(UTC)
    last = len(policy.offsets) - 1
    if n <= last:
        return base + policy.offsets[n]
    return base + policy.offsets[last] + (n - last) * policy.repeat


def _is_quiet(local: time, policy: CheckinPolicy) -> bool:
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def _local_instants(day: date, at: time, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants whose local wall-clock time in ``zone`` is ``day`` ``at``, earliest first.

    Two for an ambiguous (fall-back) time, one normally, and for a time inside a spring-forward
    gap the first valid instant after it: the transition itself.
    """
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    exists = first.astimezone(zone).replace(tzinfo=None) == wall
    if exists:
        return sorted({first, second})
    # A gap: the wall time is skipped. Local time jumps past it at one instant between the
    # two fold readings; find it to the second (tz transitions fall on whole seconds).
    lo, hi = min(first, second), max(first, second)
    # Invariant: local(lo) < wall <= local(hi).
    while hi - lo > timedelta(seconds=1):
        mid = (lo + (hi - lo) // 2).replace(microsecond=0)
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return [hi]


def out_of_quiet_hours(when: datetime, policy: CheckinPolicy) -> datetime:
    """``when`` in UTC if it is outside quiet hours, else the next local ``quiet_end`` instant.

    ``[quiet_start, quiet_end)`` is local wall-clock time in ``policy.zone``: with 21:00-09:00,
    23:30 moves to 09:00 the next morning, 08:59 to 09:00 the same day, 09:00 and 20:59 stay.
    DST-safe: a ``quiet_end`` that does not exist that day gives the first instant after the
    gap; one that occurs twice gives the earlier instant still at or after ``when``.
    """
    _require_aware(when, "when")
    utc = when.astimezone(UTC)
    local = utc.astimezone(policy.zone)
    if not _is_quiet(local.time(), policy):
        return utc
    day = local.date()
    if policy.quiet_start > policy.quiet_end and local.time() >= policy.quiet_start:
        day += timedelta(days=1)  # the evening part of a window that wraps midnight
    for ahead in range(_LOOKAHEAD_DAYS):
        for instant in _local_instants(day + timedelta(days=ahead), policy.quiet_end, policy.zone):
            if instant > utc:
                return instant
    raise ValueError("no end of quiet hours found in the next days")  # pragma: no cover


def next_checkin(
    submitted_at: datetime, after: datetime, policy: CheckinPolicy, *, start: int = 0
) -> tuple[int, datetime]:
    """The first check-in ``n >= start`` whose shifted due time is strictly after ``after``.

    Returns ``(n, due)`` with ``due = out_of_quiet_hours(nominal_due(submitted_at, n))`` in UTC.

    Catch-up: this never returns a time at or before ``after``, and it never returns a list.
    After an outage the caller fires the overdue row it already holds **once** (however many
    check-ins were missed), then asks ``next_checkin(submitted_at, now, policy, start=n + 1)``
    for the next one strictly after ``now``. So a reporter submitting on day 0 whose bot was
    down from day 0.5 to day 10 gets one check-in on day 10 (the stored 1-day row) and then
    the 14-day one (n=3); the 3- and 7-day ones are skipped, not sent in a burst.
    Check-ins that the quiet-hours shift lands on the same instant collapse into one.
    """
    _require_aware(submitted_at, "submitted_at")
    _require_aware(after, "after")
    if start < 0:
        raise ValueError("start must be 0 or more")
    base = submitted_at.astimezone(UTC)
    n = start
    # Skip whole repeat periods that end long before `after`: their shifted times cannot be
    # after it, since a shift is always shorter than _MAX_SHIFT.
    last = len(policy.offsets) - 1
    tail = after.astimezone(UTC) - _MAX_SHIFT - (base + policy.offsets[last])
    if tail > timedelta(0):
        n = max(n, last + tail // policy.repeat)
    while True:
        due = out_of_quiet_hours(nominal_due(base, n, policy), policy)
        if due > after:
            return n, due
        n += 1


def resume_after_pause(now: datetime, policy: CheckinPolicy) -> datetime:
    """When check-ins resume after the reporter pauses them: ``now + pause``, out of quiet hours."""
    _require_aware(now, "now")
    return out_of_quiet_hours(now.astimezone(UTC) + policy.pause, policy)


@dataclass(frozen=True)
class SlaPolicy:
    """How long a case may sit unclaimed before coordinators are alerted, and re-alerted."""

    first: timedelta
    realert: timedelta
    immediate_first: timedelta
    immediate_realert: timedelta

    def __post_init__(self) -> None:
        _require_positive(self.first, "first")
        _require_positive(self.realert, "realert")
        _require_positive(self.immediate_first, "immediate_first")
        _require_positive(self.immediate_realert, "immediate_realert")

    @classmethod
    def from_config(cls, escalation: Escalation) -> SlaPolicy:
        return cls(
            first=timedelta(hours=escalation.sla_hours),
            realert=timedelta(hours=escalation.realert_hours),
            immediate_first=timedelta(hours=escalation.immediate_sla_hours),
            immediate_realert=timedelta(hours=escalation.immediate_realert_hours),
        )


def sla_first_due(created_at: datetime, immediate: bool, policy: SlaPolicy) -> datetime:
    """The first unclaimed alert: ``created_at`` + 24 h, or + 2 h for immediate review."""
    _require_aware(created_at, "created_at")
    wait = policy.immediate_first if immediate else policy.first
    return created_at.astimezone(UTC) + wait


def sla_next_due(
    first_due: datetime, now: datetime, immediate: bool, policy: SlaPolicy
) -> datetime:
    """The first re-alert slot strictly after ``now``; slots are ``first_due + k * realert``.

    ``k`` starts at 0, so before ``first_due`` this is ``first_due`` itself. ``now`` exactly on
    a slot gives the next one. After a long outage the caller sends the overdue alert once
    and then waits for this slot: one catch-up alert, then the regular rhythm, not a burst.
    """
    _require_aware(first_due, "first_due")
    _require_aware(now, "now")
    first = first_due.astimezone(UTC)
    if now < first:
        return first
    step = policy.immediate_realert if immediate else policy.realert
    return first + ((now - first) // step + 1) * step
