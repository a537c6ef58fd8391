"""`/metrics` text and `/healthz` checks, and a strict Prometheus 0.0.4 text parser.

`parse_exposition` is strict on purpose (every family has HELP and TYPE before its samples,
families are contiguous, no duplicate series, counters end in `_total`); the e2e tests use
it on a live relay's `/metrics`, and the tests below prove it rejects what it must.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from relay.config.schema import Health
from relay.health import evaluate, healthz_body
from relay.metrics import DbCounts, Exposition, Live, Snapshot, render

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
COMMENT = re.compile(rf"# (HELP|TYPE) ({METRIC_NAME}) (.*)")
SAMPLE = re.compile(rf"({METRIC_NAME})(?:\{{(.*)\}})? (\S+)(?: (-?\d+))?")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
VALUE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN")
TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})

Series = frozenset[tuple[str, str]]


@dataclass
class Family:
    name: str
    help: str | None = None
    type: str | None = None
    samples: dict[Series, float] = field(default_factory=dict)

    def value(self, **labels: str) -> float:
        return self.samples[frozenset(labels.items())]


class ExpositionError(ValueError):
    pass


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text)


def _labels(text: str, where: str) -> Series:
    pairs: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = LABEL.match(text, pos)
        if match is None:
            raise ExpositionError(f"{where}: bad label syntax at {text[pos:]!r}")
        if match.group(1) in pairs:
            raise ExpositionError(f"{where}: label {match.group(1)} twice")
        pairs[match.group(1)] = _unescape(match.group(2))
        pos = match.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ExpositionError(f"{where}: expected ',' between labels")
            pos += 1
            if pos == len(text):
                raise ExpositionError(f"{where}: trailing comma")
    return frozenset(pairs.items())


def parse_exposition(text: str) -> dict[str, Family]:
    """Parse Prometheus text format 0.0.4 strictly (counters and gauges only)."""
    if not text.endswith("\n"):
        raise ExpositionError("the body must end with a newline")
    families: dict[str, Family] = {}
    current: str | None = None
    for number, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {number}"
        if line.startswith("#"):
            match = COMMENT.fullmatch(line)
            if match is None:
                raise ExpositionError(f"{where}: a comment other than HELP/TYPE: {line!r}")
            keyword, name, rest = match.groups()
        else:
            match = SAMPLE.fullmatch(line)
            if match is None:
                raise ExpositionError(f"{where}: not a sample: {line!r}")
            name = match.group(1)
        if name != current:
            if name in families:
                raise ExpositionError(f"{where}: family {name} is split")
            families[name] = Family(name)
            current = name
        family = families[name]
        if line.startswith("#"):
            if family.samples:
                raise ExpositionError(f"{where}: {keyword} after samples of {name}")
            if keyword == "HELP":
                if family.help is not None:
                    raise ExpositionError(f"{where}: second HELP for {name}")
                family.help = _unescape(rest)
            else:
                if family.type is not None or rest not in TYPES:
                    raise ExpositionError(f"{where}: bad or second TYPE for {name}: {rest!r}")
                family.type = rest
            continue
        if family.type is None or family.help is None:
            raise ExpositionError(f"{where}: sample of {name} before its HELP and TYPE")
        series = _labels(match.group(2) or "", where)
        if not VALUE.fullmatch(match.group(3)):
            raise ExpositionError(f"{where}: bad value {match.group(3)!r}")
        if series in family.samples:
            raise ExpositionError(f"{where}: duplicate series {sorted(series)}")
        family.samples[series] = float(match.group(3))
    for family in families.values():
        if family.type is None or family.help is None:
            raise ExpositionError(f"{family.name}: no HELP or no TYPE")
        if family.type == "counter" and not family.name.endswith("_total"):
            raise ExpositionError(f"{family.name}: a counter's name must end in _total")
    return families


# -- the parser rejects what it must --------------------------------------------------------

GOOD = '# HELP a_total A.\n# TYPE a_total counter\na_total{k="v"} 1\n'


def test_the_parser_reads_a_well_formed_body() -> None:
    families = parse_exposition(GOOD)
    assert families["a_total"].value(k="v") == 1
    assert families["a_total"].type == "counter"


@pytest.mark.parametrize(("body", "why"), [
    (GOOD.rstrip("\n"), "newline"),
    ("a 1\n", "before its HELP"),
    ("# TYPE a gauge\na 1\n", "before its HELP"),
    ("# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\n# HELP a A.\n", "split"),
    ("# HELP a A.\n# TYPE a gauge\na 1\na 2\n", "duplicate"),
    ("# HELP a A.\n# TYPE a gauge\na{k=v} 1\n", "label syntax"),
    ('# HELP a A.\n# TYPE a gauge\na{k="v",} 1\n', "trailing comma"),
    ('# HELP a A.\n# TYPE a gauge\na{k="1",k="2"} 1\n', "twice"),
    ("# HELP a A.\n# TYPE a gauge\na one\n", "bad value"),
    ("# HELP a A.\n# TYPE a meter\na 1\n", "TYPE"),
    ("# HELP a A.\n# TYPE a gauge\n# just a note\n", "comment"),
    ("# HELP a A.\n# TYPE a counter\na 1\n", "_total"),
    ("# HELP a A.\n# TYPE a gauge\na 1\n# TYPE a gauge\n", "after samples"),
])
def test_the_parser_rejects_malformed_text(body: str, why: str) -> None:
    with pytest.raises(ExpositionError, match=why):
        parse_exposition(body)


# -- the writer -----------------------------------------------------------------------------


def test_label_values_are_escaped_and_read_back_unchanged() -> None:
    out = Exposition()
    tricky = 'a"b\\c\nd'
    out.add("x", "gauge", "X.", [({"scope": tricky}, 2.5)])
    assert parse_exposition(out.text())["x"].value(scope=tricky) == 2.5


def test_numbers_integers_nan_and_infinities() -> None:
    out = Exposition()
    out.add("x", "gauge", "X.", [({"k": "a"}, 3.0), ({"k": "b"}, math.nan),
                                 ({"k": "c"}, math.inf), ({"k": "d"}, 0.25)])
    text = out.text()
    assert 'x{k="a"} 3\n' in text
    assert 'x{k="b"} NaN\n' in text
    assert 'x{k="c"} +Inf\n' in text
    family = parse_exposition(text)["x"]
    assert family.value(k="d") == 0.25
    assert math.isnan(family.value(k="b"))


def test_a_family_cannot_be_written_twice() -> None:
    out = Exposition()
    out.add("x", "gauge", "X.", 1)
    with pytest.raises(ValueError, match="twice"):
        out.add("x", "gauge", "X.", 2)


# -- a snapshot rendered and evaluated --------------------------------------------------------

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def live(**changes: object) -> Live:
    values: dict[str, object] = {
        "now": T0 + timedelta(hours=1), "started_at": T0, "receiver_connected": True,
        "receiver_connections": 3, "frames_received": 40, "frames_processed": 38,
        "sends_ok": 17, "timers_ran_at": T0 + timedelta(minutes=59),
        "groups": {"regen-group": True, "events": False, "new-team": None},
    }
    values.update(changes)
    return Live(**values)  # type: ignore[arg-type]


def counts(**changes: object) -> DbCounts:
    values: dict[str, object] = {
        "inbox_pending": 2, "inbox_oldest_pending": T0 + timedelta(minutes=59, seconds=30),
        "inbox_quarantined": 1,
        "outbox_rows": {"pending": 4, "sent": 90, "held": 1, "weird": 2},
        "outbox_oldest_waiting": T0 + timedelta(minutes=55),
        "cases": {"open": 3, "closed": 5}, "cases_unclaimed": 2,
        "timers_pending": 6, "timers_overdue": 1,
    }
    values.update(changes)
    return DbCounts(**values)  # type: ignore[arg-type]


def test_render_writes_every_family_with_the_snapshot_values() -> None:
    snap = Snapshot(live(), counts())
    checks = {name: c["ok"] for name, c in evaluate(snap, Health()).items()}
    families = parse_exposition(render(snap, checks))
    v = families
    assert v["relay_up"].value() == 1
    assert v["relay_start_time_seconds"].value() == T0.timestamp()
    assert v["relay_receiver_connected"].value() == 1
    assert v["relay_receiver_reconnects_total"].value() == 2
    assert v["relay_sends_total"].value(outcome="sent") == 17
    assert v["relay_timer_last_run_age_seconds"].value() == 60
    assert v["relay_inbox_pending"].value() == 2
    assert v["relay_inbox_oldest_pending_seconds"].value() == 30
    assert v["relay_inbox_quarantined"].value() == 1
    assert v["relay_outbox_rows"].value(status="pending") == 4
    assert v["relay_outbox_rows"].value(status="failed") == 0  # every status, even at 0
    assert v["relay_outbox_rows"].value(status="other") == 2  # unknown values never leak
    assert v["relay_outbox_oldest_pending_seconds"].value() == 300
    assert v["relay_cases"].value(state="open") == 3
    assert v["relay_cases"].value(state="waiting") == 0
    assert v["relay_cases_unclaimed"].value() == 2
    assert v["relay_timers_pending"].value() == 6
    assert v["relay_timers_overdue"].value() == 1
    assert v["relay_group_clean"].value(scope="regen-group") == 1
    assert v["relay_group_clean"].value(scope="events") == 0
    assert v["relay_group_readable"].value(scope="new-team") == 0
    assert v["relay_check_ok"].value(check="receiver") == 1
    assert v["relay_database_up"].value() == 1
    assert all(f.help and f.name.startswith("relay_") for f in families.values())


def test_without_the_database_only_live_values_are_written() -> None:
    snap = Snapshot(live(), None)
    checks = evaluate(snap, Health())
    families = parse_exposition(render(snap, {n: c["ok"] for n, c in checks.items()}))
    assert families["relay_database_up"].value() == 0
    assert families["relay_check_ok"].value(check="database") == 0
    assert "relay_outbox_rows" not in families
    # unknown is not failing: only the database is named
    assert healthz_body(checks)["failing"] == ["database"]
    assert checks["outbox"]["ok"] is None


@pytest.mark.parametrize(("snap", "failing"), [
    (Snapshot(live(), counts()), []),
    (Snapshot(live(receiver_connected=False), counts()), ["receiver"]),
    (Snapshot(live(), counts(outbox_oldest_waiting=T0)), ["outbox"]),  # 3600 s > 600 s
    (Snapshot(live(), counts(inbox_oldest_pending=T0)), ["dispatcher"]),  # 3600 s > 300 s
    (Snapshot(live(timers_ran_at=T0), counts()), ["timers"]),  # 3600 s > 180 s
    (Snapshot(live(timers_ran_at=None), counts()), ["timers"]),  # never ran: since start
])
def test_checks_fail_past_their_thresholds(snap: Snapshot, failing: list[str]) -> None:
    body = healthz_body(evaluate(snap, Health()))
    assert body["failing"] == failing
    assert body["status"] == ("unhealthy" if failing else "ok")


def test_thresholds_come_from_the_config() -> None:
    snap = Snapshot(live(), counts())  # oldest unsent message: 300 s
    assert evaluate(snap, Health(outbox_stale_seconds=301))["outbox"]["ok"] is True
    assert evaluate(snap, Health(outbox_stale_seconds=300))["outbox"]["ok"] is False
