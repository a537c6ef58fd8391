"""Pure rules of the moderation ledger (MPP Community Agreements, "Moderation.").

"If the individual violates the community agreements three or more times, the moderators
will vote on removing the individual ... and remove them if the majority of the votes cast
are in favor. Warnings expire and reset after six months without one."

Nothing here reads the clock, draws randomness or touches storage: every instant comes in
as an aware ``datetime``, and the command parsers return None for anything malformed (the
caller answers with a usage line), never raise.

A *series* is the run of warnings in which each follows the previous one by less than the
expiry; once the newest warning is ``expiry`` old (or older), the series has expired, the
count is 0, and the next warning starts a new series.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from handlers.flows.text import clean_name, clean_text

# Case references use the same unambiguous alphabet (no I, L, O, 0, 1). Four characters
# keep "V-K7F3" within the six characters the audit log's reference column holds.
VOTE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
VOTE_REF_RE = re.compile(rf"V-[{VOTE_ALPHABET}]{{4}}")
_YES = "yes"
_NO = "no"

__all__ = [
    "VOTE_ALPHABET",
    "VOTE_REF_RE",
    "VoteResult",
    "active_warnings",
    "current_series",
    "local_day",
    "local_time",
    "parse_name",
    "parse_vote",
    "parse_vote_ref",
    "parse_warn",
    "should_open_vote",
    "vote_deadline",
    "vote_result",
]


class VoteResult(NamedTuple):
    """Where a removal vote stands: ``removed`` only once it is closed."""

    closed: bool
    removed: bool
    yes: int
    no: int


# -- warnings ----------------------------------------------------------------------------
def current_series(dates: Iterable[datetime], now: datetime,
                   expiry: timedelta) -> list[datetime]:
    """The warnings that still count at ``now``, oldest first ([] once the series expired).

    Dates after ``now`` (a clock that went back) are not counted.
    """
    past = sorted(d for d in dates if d <= now)
    if not past or now - past[-1] >= expiry:
        return []
    start = len(past) - 1
    while start > 0 and past[start] - past[start - 1] < expiry:
        start -= 1
    return past[start:]


def active_warnings(dates: Iterable[datetime], now: datetime, expiry: timedelta) -> int:
    """How many warnings count at ``now``: the length of the running series."""
    return len(current_series(dates, now, expiry))


def should_open_vote(active: int, threshold: int, *, vote_open: bool) -> bool:
    """Every warning at or past the threshold ("three or more times") calls for a vote,
    unless one about the same person is still open."""
    return not vote_open and active >= threshold


# -- votes -------------------------------------------------------------------------------
def vote_deadline(opened_at: datetime, hours: float) -> datetime:
    return opened_at + timedelta(hours=hours)


def vote_result(votes: Mapping[str, bool], eligible: AbstractSet[str], closes_at: datetime,
                now: datetime) -> VoteResult:
    """Tally ``votes`` (moderator id -> in favour of removal) of the ``eligible`` moderators.

    The vote closes when every eligible moderator has voted, or at ``closes_at``. Removal
    needs a majority of the votes cast: more yes than no. A tie, or no votes at all, is
    not a majority. Ballots of people who are no longer moderators are not counted.
    """
    counted = {who: choice for who, choice in votes.items() if who in eligible}
    yes = sum(1 for choice in counted.values() if choice)
    no = len(counted) - yes
    closed = now >= closes_at or set(eligible) <= counted.keys()
    return VoteResult(closed=closed, removed=closed and yes > no, yes=yes, no=no)


# -- what moderators type ----------------------------------------------------------------
def parse_name(text: str, max_len: int) -> str | None:
    """A person's name as typed (NFKC, one line, no invisible characters), or None."""
    name = clean_name(text, max_len)
    return name if any(ch.isalnum() for ch in name) else None


def parse_warn(args: str, *, max_name: int, max_note: int) -> tuple[str, str] | None:
    """``NAME | note`` -> (name, note), or None if either part is missing."""
    name_part, sep, note_part = args.partition("|")
    if not sep:
        return None
    name = parse_name(name_part, max_name)
    note = clean_text(note_part.strip(), max_note).strip()
    if name is None or not note:
        return None
    return name, note


def parse_vote_ref(text: str) -> str | None:
    """A vote reference typed by a person (any case, stray spaces), or None."""
    candidate = text.strip().upper()
    return candidate if VOTE_REF_RE.fullmatch(candidate) else None


def parse_vote(args: str) -> tuple[str, bool] | None:
    """``V-K7F3 yes|no`` -> (reference, in favour of removal), or None."""
    parts = args.split()
    if len(parts) != 2:
        return None
    ref = parse_vote_ref(parts[0])
    choice = parts[1].casefold()
    if ref is None or choice not in {_YES, _NO}:
        return None
    return ref, choice == _YES


# -- showing times -----------------------------------------------------------------------
def local_time(at: datetime, timezone: str) -> str:
    """``Fri 6 Nov 2026, 10:00 EST``: an instant on the organisation's wall clock."""
    local = at.astimezone(ZoneInfo(timezone))
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} {local.tzname()}"


def local_day(at: datetime, timezone: str) -> str:
    """``6 Nov 2026``: the organisation's local date of an instant."""
    local = at.astimezone(ZoneInfo(timezone))
    return f"{local.day} {local:%b %Y}"
