"""Retention epochs and KEK ids.

An epoch label names one retention window in UTC: `2026` (year), `2026-q4` (quarter) or
`2026-11` (month). A KEK id is `<label>.<generation>`, e.g. `2026-q4.1`; rotation adds a
generation, and generations are never reused, even after a KEK is destroyed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

MAX_GENERATION: Final = 999_999


class EpochPeriod(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


_LABEL_RE = r"[0-9]{4}(?:-q[1-4]|-(?:0[1-9]|1[0-2]))?"
_LABEL = re.compile(_LABEL_RE)
_KEK_ID = re.compile(rf"(?P<epoch>{_LABEL_RE})\.(?P<gen>[1-9][0-9]{{0,5}})")


def period_of(value: str) -> EpochPeriod:
    """Parse `month`, `quarter` or `year`."""
    try:
        return EpochPeriod(value)
    except ValueError:
        raise ValueError(
            f"unknown epoch period {value!r}; use one of: month, quarter, year"
        ) from None


def epoch_label(dt: datetime, period: str) -> str:
    """The label of the epoch containing the aware datetime `dt` (computed in UTC)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("epoch_label needs an aware datetime")
    utc = dt.astimezone(UTC)
    match period_of(period):
        case EpochPeriod.YEAR:
            return f"{utc.year:04d}"
        case EpochPeriod.QUARTER:
            return f"{utc.year:04d}-q{(utc.month - 1) // 3 + 1}"
        case EpochPeriod.MONTH:
            return f"{utc.year:04d}-{utc.month:02d}"


def is_epoch_label(label: str) -> bool:
    return _LABEL.fullmatch(label) is not None


def check_epoch_label(label: str) -> str:
    if not is_epoch_label(label):
        raise ValueError(f"{label!r} is not an epoch label (like 2026, 2026-q4 or 2026-11)")
    return label


def make_kek_id(epoch: str, generation: int) -> str:
    check_epoch_label(epoch)
    if not 1 <= generation <= MAX_GENERATION:
        raise ValueError(f"generation must be between 1 and {MAX_GENERATION}")
    return f"{epoch}.{generation}"


def parse_kek_id(kek_id: str) -> tuple[str, int]:
    """Split `2026-q4.2` into (`2026-q4`, 2); raise ValueError on anything else."""
    match = _KEK_ID.fullmatch(kek_id)
    if match is None:
        raise ValueError(f"{kek_id!r} is not a KEK id (like 2026-q4.1)")
    return match["epoch"], int(match["gen"])
