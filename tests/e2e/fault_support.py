"""Helpers for the sandbox fault tests: read relay's rows, wait on conditions, drive time."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from relay.app import Relay
from relay.clock import FakeClock, SystemClock
from relay.sandbox import Phone, Sandbox
from relay.store.models import Case, InboxRow, OutboxRow
from tests.e2e.conftest import Running, option_number, say

WAIT = 8.0


@dataclass(frozen=True)
class InboxView:
    source: str
    status: str
    error_class: str | None


@dataclass(frozen=True)
class OutboxView:
    purpose: str
    kind: str
    ref: str | None
    status: str
    attempts: int
    error_class: str | None
    possible_repeat: bool
    case_id: str | None


def fake_clock() -> FakeClock:
    """A clock the test moves by hand, starting at the real time (keys are made for now)."""
    return FakeClock(SystemClock().now().astimezone(UTC))


async def inbox(relay: Relay) -> list[InboxView]:
    """Every inbox row, oldest first (read on relay's own database thread)."""

    def read() -> list[InboxView]:
        with relay.sessions() as s:
            rows = s.scalars(select(InboxRow).order_by(InboxRow.seq)).all()
            return [InboxView(r.source, r.status, r.error_class) for r in rows]

    result: list[InboxView] = await relay.run_db(read)
    return result


async def outbox(relay: Relay, *, purpose: str | None = None, kind: str | None = None,
                 ref: str | None = None, status: str | None = None) -> list[OutboxView]:
    """Outbox rows, oldest first, optionally filtered."""

    def read() -> list[OutboxView]:
        with relay.sessions() as s:
            rows = s.scalars(select(OutboxRow).order_by(OutboxRow.seq)).all()
            return [OutboxView(r.purpose, r.recipient_kind, r.recipient_ref, r.status,
                               r.attempts, r.error_class, bool(r.possible_repeat), r.case_id)
                    for r in rows]

    rows: list[OutboxView] = await relay.run_db(read)
    return [r for r in rows if (purpose is None or r.purpose == purpose)
            and (kind is None or r.kind == kind) and (ref is None or r.ref == ref)
            and (status is None or r.status == status)]


async def case_checkin_ok(relay: Relay, ref: str) -> bool:
    def read() -> bool:
        with relay.sessions() as s:
            row = s.scalar(select(Case).where(Case.ref == ref))
            assert row is not None, f"no case {ref}"
            return bool(row.checkin_ok)

    result: bool = await relay.run_db(read)
    return result


async def wait_until(check: Callable[[], bool | Awaitable[bool]], what: str, *,
                     timeout: float = WAIT) -> None:  # noqa: ASYNC109 - a test deadline
    """Poll `check` (plain or async) until it holds; fail naming `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


async def wait_row(relay: Relay, what: str, *, timeout: float = WAIT,  # noqa: ASYNC109
                   **where: object) -> OutboxView:
    """Wait until an outbox row matching `where` (purpose/kind/ref and/or status,
    error_class) exists; return the newest one."""
    filters = {k: str(where.pop(k)) for k in ("purpose", "kind", "ref", "status")
               if k in where}
    found: list[OutboxView] = []

    async def check() -> bool:
        rows = await outbox(relay, **filters)
        found[:] = [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]
        return bool(found)

    await wait_until(check, what, timeout=timeout)
    return found[-1]


def ws_subscriptions(sandbox: Sandbox) -> int:
    """How many times a reader opened the receive websocket (the sandbox's request log)."""
    return sum(1 for r in sandbox.requests if r.kind == "ws" and r.status == 101)


def count(phone: Phone, needle: str) -> int:
    """How many messages on `phone` contain `needle` (case-insensitive)."""
    return sum(1 for m in phone.messages if needle.lower() in (m.text or "").lower())


async def quiet(seconds: float = 0.4) -> None:
    """Give a late duplicate time to show up before asserting that there is none."""
    await asyncio.sleep(seconds)


def advance(run: Running, clock: FakeClock, delta: timedelta) -> datetime:
    """Move relay's clock and wake the outbox pump, so a backed-off or held row is due."""
    now = clock.advance(delta)
    run.relay.pump.wake.set()
    return now


@asynccontextmanager
async def receiver_offline(run: Running) -> AsyncIterator[None]:
    """relay's websocket reader is away (as during a reconnect or a deploy): the REST API
    has no subscriber, so frames are dropped upstream. On exit the reader comes back."""
    receiver = run.relay.receiver
    url = receiver._url
    receiver._url = "ws://127.0.0.1:9/v1/receive/away"  # nothing listens there
    sandbox = run.org.sandbox
    try:
        await sandbox.faults.ws_abort()
        await sandbox.wait_for_no_subscriber()
        yield
    finally:
        receiver._url = url
    await sandbox.wait_for_subscriber(timeout=WAIT)


async def intake_until_send(phone: Phone, *, story: str = "It happened at the meeting.",
                            officer: str | None = None) -> None:
    """Walk an anonymous intake up to (not including) the final SEND. The category is
    'Something else', so no immediate-review alert adds to the coordinators' messages.
    With `officer` (a display-name fragment) the report goes 1:1 to that officer."""
    await say(phone, "hi", "stay anonymous?")
    await say(phone, "anonymous", "kind of help")
    categories = await say(phone, "1", "what is it about?")
    scopes = await say(phone, option_number(categories.text, "Something else"),
                       "who should see")
    if officer is not None:
        pick = await say(phone, option_number(scopes.text, "person you connected with"),
                         "who would you like")
        await say(phone, option_number(pick.text, officer), "must not see")
    else:
        await say(phone, option_number(scopes.text, "entire"), "must not see")
    await say(phone, "none", "what happened")
    await say(phone, story, "got it")
    await say(phone, "DONE", "when")
    await say(phone, "skip", "where")
    await say(phone, "skip", "who was involved")
    await say(phone, "skip", "safe right now")
    await say(phone, "yes", "check in")
    await say(phone, "yes", "reply send")
