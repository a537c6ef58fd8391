"""Epoch labels and KEK ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from keys.epochs import EpochPeriod, epoch_label, make_kek_id, parse_kek_id


@pytest.mark.parametrize(
    ("dt", "period", "label"),
    [
        (datetime(2026, 11, 5, tzinfo=UTC), "quarter", "2026-q4"),
        (datetime(2026, 1, 1, tzinfo=UTC), "quarter", "2026-q1"),
        (datetime(2026, 3, 31, 23, 59, tzinfo=UTC), "quarter", "2026-q1"),
        (datetime(2026, 4, 1, tzinfo=UTC), "quarter", "2026-q2"),
        (datetime(2026, 11, 5, tzinfo=UTC), "month", "2026-11"),
        (datetime(2026, 2, 5, tzinfo=UTC), EpochPeriod.MONTH, "2026-02"),
        (datetime(2026, 11, 5, tzinfo=UTC), "year", "2026"),
    ],
)
def test_epoch_label(dt: datetime, period: str, label: str) -> None:
    assert epoch_label(dt, period) == label


def test_epoch_label_is_computed_in_utc() -> None:
    # 00:30 on 1 January in UTC+2 is still the previous year in UTC.
    local = datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert epoch_label(local, "quarter") == "2026-q4"
    assert epoch_label(local, "year") == "2026"


def test_epoch_label_rejects_naive_and_unknown() -> None:
    with pytest.raises(ValueError, match="aware"):
        epoch_label(datetime(2026, 1, 1), "quarter")  # noqa: DTZ001
    with pytest.raises(ValueError, match="period"):
        epoch_label(datetime(2026, 1, 1, tzinfo=UTC), "week")


def test_kek_ids() -> None:
    assert make_kek_id("2026-q4", 1) == "2026-q4.1"
    assert parse_kek_id("2026-11.12") == ("2026-11", 12)
    assert parse_kek_id("2026.3") == ("2026", 3)
    for bad in ["2026-q5.1", "2026-13.1", "2026-q4", "2026-q4.0", "2026-q4.01", "x.1", ""]:
        with pytest.raises(ValueError, match="KEK id"):
            parse_kek_id(bad)
    with pytest.raises(ValueError, match="generation"):
        make_kek_id("2026", 0)
