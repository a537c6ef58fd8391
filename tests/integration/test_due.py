"""`run_due` fires a batch of timers in one transaction: each due timer exactly once, a
failing one left for the next pass without holding back the others, and a crash in the
middle of a batch (a real `os._exit` of another process) loses and doubles nothing.
Real SQLite files and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.flows.catalog import Catalog
from keys import Keyring
from relay import audit, timers
from relay.app import Relay, build
from relay.cases import create_case
from relay.clock import FakeClock
from relay.config import load_config
from relay.store.models import Case, OutboxRow, Timer
from relay.timers import TimerKind
from tests.integration.conftest import count_commits
from tests.integration.test_rotation import EXAMPLE, make_draft, reporter

CASES = 24


@pytest.fixture
def app(db_url: str, keyring: Keyring, clock: FakeClock) -> Iterator[Relay]:
    relay = build(load_config(EXAMPLE), keyring, clock, database_url=db_url)
    yield relay
    relay.engine.dispose()


def _seed(app: Relay, clock: FakeClock) -> None:
    """CASES cases, each with a check-in and an unclaimed-case timer due in an hour."""
    catalog = Catalog(app.cfg.texts)
    now = clock.now()
    with app.sessions.begin() as s:
        for index in range(CASES):
            case = create_case(s, app.sealer, app.cfg, catalog, make_draft(), reporter(index),
                               now)
            timers.schedule(s, TimerKind.CHECKIN, case.case_id, 1, now + timedelta(hours=1),
                            now)
            timers.schedule(s, TimerKind.SLA, case.case_id, 0, now + timedelta(hours=1), now)


def _state(app: Relay) -> tuple[dict[str, int], int, int]:
    """(timers by status, check-in questions queued, audit rows)."""
    with app.sessions.begin() as s:
        by_status: dict[str, int] = dict(s.execute(
            select(Timer.status, func.count()).group_by(Timer.status)).all())
        questions = s.scalar(select(func.count()).select_from(OutboxRow)
                             .where(OutboxRow.purpose == "checkin")) or 0
        return by_status, questions, audit.count(s)


def test_a_batch_fires_every_due_timer_once_in_one_transaction(
        app: Relay, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers, "BATCH", 100)
    _seed(app, clock)
    assert app.due.run_due(clock.now()) == 0
    clock.advance(hours=2)
    commits = count_commits(app.engine)
    assert app.due.run_due(clock.now()) == 2 * CASES
    assert commits[0] == 2  # the batch; and the moderation ledger's vote deadlines
    assert app.due.run_due(clock.now()) == 0
    by_status, questions, _ = _state(app)
    assert questions == CASES
    assert by_status["done"] == 2 * CASES
    assert by_status["pending"] == 2 * CASES  # each series scheduled its next timer
    with app.sessions.begin() as s:
        later = s.scalar(select(func.min(Timer.due_at)).where(Timer.status == "pending"))
    assert later is not None
    assert later > clock.now()


def test_more_than_a_batch_takes_more_passes(app: Relay, clock: FakeClock,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(app, clock)
    clock.advance(hours=2)
    monkeypatch.setattr(timers, "BATCH", 10)
    passes = [(app.due.run_due(clock.now()), app.due.backlog) for _ in range(6)]
    assert passes == [(10, True), (10, True), (10, True), (10, True), (8, False), (0, False)]


def test_a_tick_runs_passes_until_nothing_is_due(app: Relay, clock: FakeClock,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(app, clock)
    clock.advance(hours=2)
    monkeypatch.setattr(timers, "BATCH", 10)
    jobs = [0]
    real = app.due.run_due

    def run_due(now: datetime) -> int:
        jobs[0] += 1
        return real(now)

    monkeypatch.setattr(app.due, "run_due", run_due)
    assert asyncio.run(app.tick()) == 2 * CASES
    assert jobs[0] == 5  # one database job per batch: messages get their turn in between
    assert _state(app)[1] == CASES


def test_a_failing_timer_waits_for_the_next_pass_and_the_rest_fire(
        app: Relay, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers, "BATCH", 100)
    _seed(app, clock)
    clock.advance(hours=2)
    with app.sessions.begin() as s:
        broken = s.scalars(select(Case.id).order_by(Case.id)).first()
    checkins = app.due._checkins
    real_fire = checkins.fire

    def fire(s: object, timer: Timer, case: Case, now: object) -> None:
        real_fire(s, timer, case, now)  # type: ignore[arg-type]
        if case.id == broken:
            raise RuntimeError("boom")  # after its writes: the savepoint must undo them

    monkeypatch.setattr(checkins, "fire", fire)
    assert app.due.run_due(clock.now()) == 2 * CASES - 1
    assert _state(app)[1] == CASES - 1
    with app.sessions.begin() as s:
        left = s.execute(select(Timer.case_id, Timer.kind).where(
            Timer.status == "pending", Timer.due_at <= clock.now())).all()
    assert left == [(broken, "checkin")]
    monkeypatch.setattr(checkins, "fire", real_fire)
    assert app.due.run_due(clock.now()) == 1
    assert _state(app)[1] == CASES


def test_timers_that_keep_failing_end_the_tick(app: Relay, clock: FakeClock,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(app, clock)
    clock.advance(hours=2)
    monkeypatch.setattr(timers, "BATCH", 10)

    def fire(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.due._checkins, "fire", fire)
    monkeypatch.setattr(app.due, "_fire_sla", fire)
    assert asyncio.run(app.tick()) == 0  # returns (tried again on the next tick)
    assert app.due.backlog is False
    assert _state(app)[0] == {"pending": 2 * CASES}


CRASH = """
import os, sys
from datetime import datetime
from pathlib import Path
from keys import Keyring
from relay.app import build
from relay.clock import FakeClock
from relay.config import load_config

url, keys, when, example = sys.argv[1:5]  # -c: sys.argv[0] is "-c"
app = build(load_config(Path(example)), Keyring.load(Path(keys)),
            FakeClock(datetime.fromisoformat(when)), database_url=url)
checkins = app.due._checkins
real_fire, calls = checkins.fire, [0]

def fire(s, timer, case, now):
    real_fire(s, timer, case, now)
    s.flush()
    calls[0] += 1
    if calls[0] == 10:
        os._exit(9)  # a crash mid-batch: nothing cleans up, nothing commits

checkins.fire = fire
app.due.run_due(datetime.fromisoformat(when))
sys.exit(0)
"""


def test_a_crash_mid_batch_loses_nothing_and_fires_nothing_twice(
        app: Relay, clock: FakeClock, db_url: str, keyring: Keyring) -> None:
    _seed(app, clock)
    clock.advance(hours=2)
    before = _state(app)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASH), db_url, str(keyring.path),
         clock.now().isoformat(), str(EXAMPLE)], capture_output=True, timeout=120, check=False,
        cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 9, done.stderr.decode()[-2000:]
    assert _state(app) == before  # the whole batch rolled back with the crash
    assert before[0] == {"pending": 2 * CASES}
    assert asyncio.run(app.tick()) == 2 * CASES
    assert asyncio.run(app.tick()) == 0
    by_status, questions, audits = _state(app)
    assert questions == CASES
    assert by_status["done"] == 2 * CASES
    assert audits > before[2]
