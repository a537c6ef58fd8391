"""Frames waiting together are dispatched in one transaction, in arrival order, each in a
savepoint: one that fails is rolled back alone, retried and finally quarantined, and the
others commit. Real SQLite files and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from handlers.events import TextMessage
from keys import Keyring
from relay import inbox
from relay.app import Relay, build
from relay.clock import FakeClock
from relay.config import load_config
from relay.store.models import Conversation, InboxRow, OutboxRow
from tests.integration.conftest import count_commits
from tests.integration.test_rotation import EXAMPLE


@pytest.fixture
def app(db_url: str, keyring: Keyring, clock: FakeClock) -> Iterator[Relay]:
    relay = build(load_config(EXAMPLE), keyring, clock, database_url=db_url)
    yield relay
    relay.engine.dispose()


def _aci(n: int) -> str:
    return str(uuid.UUID(int=0x7000 + n, version=4))


def _hello(n: int) -> str:
    ts = 1767225600000 + n
    env = {"source": _aci(n), "sourceNumber": None, "sourceUuid": _aci(n),
           "sourceName": f"R{n}", "sourceDevice": 1, "timestamp": ts,
           "serverReceivedTimestamp": ts, "serverDeliveredTimestamp": ts,
           "dataMessage": {"timestamp": ts, "message": "hi", "expiresInSeconds": 0,
                           "isExpirationUpdate": False, "viewOnce": False}}
    return json.dumps({"envelope": env, "account": "+4915112345678"})


def test_a_failing_frame_is_rolled_back_alone_and_quarantined_after_three_tries(
        app: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    app._ingest_sync([_hello(n) for n in range(6)], "ws")
    desk = app.dispatcher.reporters
    real = desk.handle

    def handle(s: object, ev: TextMessage, now: object, *, key: str) -> None:
        real(s, ev, now, key=key)  # type: ignore[arg-type]
        if ev.sender.aci == _aci(3):
            raise RuntimeError("boom")  # after its writes: its savepoint must undo them

    monkeypatch.setattr(desk, "handle", handle)
    commits = count_commits(app.engine)
    assert app.dispatcher.process_pending() is True
    assert commits[0] == 1  # six frames, one transaction
    with app.sessions.begin() as s:
        states = dict(s.execute(select(InboxRow.seq, InboxRow.status)).all())
        talking = s.scalar(select(func.count()).select_from(Conversation))
        greeted = s.scalar(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.recipient_kind == "reporter"))
    assert sorted(states.values()) == ["done"] * 5 + ["pending"]
    assert talking == 5  # the failed frame's conversation was rolled back with it
    assert greeted is not None
    assert greeted >= 5
    for _ in range(2):
        assert app.dispatcher.process_pending() is True
    assert app.dispatcher.process_pending() is False
    with app.sessions.begin() as s:
        failed = s.scalars(select(InboxRow).where(InboxRow.status != "done")).all()
        assert [(r.status, r.attempts) for r in failed] == [("quarantined", 3)]
        assert inbox.quarantined_count(s) == 1
        alerts = s.scalar(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.purpose == "alert"))
    assert alerts is not None
    assert alerts >= 1


def test_more_frames_than_a_batch_keep_their_order(app: Relay,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.dispatcher, "BATCH", 4)
    app._ingest_sync([_hello(n) for n in range(10)], "ws")
    seen: list[str] = []
    desk = app.dispatcher.reporters
    real = desk.handle

    def handle(s: object, ev: TextMessage, now: object, *, key: str) -> None:
        seen.append(ev.sender.aci)
        real(s, ev, now, key=key)  # type: ignore[arg-type]

    monkeypatch.setattr(desk, "handle", handle)
    rounds = 0
    while app.dispatcher.process_pending():
        rounds += 1
    assert rounds == 3
    assert seen == [_aci(n) for n in range(10)]
    assert app.dispatcher.processed == 10
