"""Outbox: messages are rows first, sends second.

Use cases add rows in the same transaction as the change that causes them; the pump
claims rows, sends them through the gateway, and records Signal's timestamp (and the
reply map) when the send succeeded. Delivery is at least once: a crash between the
send and the commit can resend, and a resend to officers is marked as a possible repeat.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from relay.clock import Clock
from relay.gateway import SendError, SendFailure, Sent, SignalGateway
from relay.logs import get_logger
from relay.loops import run_until_stopped
from relay.store.counters import next_value
from relay.store.inserts import flush_new, insert_new
from relay.store.models import Base, OutboxRow
from relay.store.sealing import Sealer

log = get_logger("outbox")

TABLE = "outbox"
_TABLE = Base.metadata.tables[TABLE]
_CLEAR = "outbox_clear"  # session.info: row id -> (text, address) enqueued in this session
LEASE = timedelta(seconds=60)
HOLD_RETRY = timedelta(minutes=5)  # held rows are tried again: trust may have been restored
MAX_ATTEMPTS = 12


class Status(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    HELD = "held"
    FAILED = "failed"
    UNREACHABLE = "unreachable"


class RecipientKind(StrEnum):
    REPORTER = "reporter"
    OFFICER = "officer"
    GROUP = "group"
    COORDINATION = "coordination"  # the coordinators' group


@dataclass(frozen=True)
class Message:
    """What a use case wants sent."""

    kind: RecipientKind
    text: str
    purpose: str
    ref: str | None = None  # officer id for OFFICER, scope id for GROUP
    address: str | None = None  # the reporter's ACI for REPORTER (sealed at rest)
    case_id: str | None = None
    map_replies: bool = False
    quote_timestamp: int | None = None


def enqueue(
    session: Session, sealer: Sealer, msg: Message, *, key: str, now: datetime
) -> str | None:
    """Add one message in the caller's transaction. Same key twice: kept once (None)."""
    conn = flush_new(session)  # the row may refer to a case made in this transaction
    row_id = str(uuid.uuid4())
    rk = sealer.new_record(TABLE, row_id)
    address = (
        sealer.seal(rk.dek, TABLE, row_id, "address", msg.address.encode())
        if msg.address is not None
        else None
    )
    session.info.setdefault(_CLEAR, {})[row_id] = (msg.text, msg.address)
    inserted = insert_new(conn, _TABLE, "idempotency_key", {
        "id": row_id,
        "seq": next_value(conn, "outbox"),  # a repeated key leaves a gap: order is kept
        "idempotency_key": key,
        "created_at": now,
        "available_at": now,
        "status": Status.PENDING,
        "attempts": 0,
        "purpose": msg.purpose,
        "case_id": msg.case_id,
        "recipient_kind": msg.kind,
        "recipient_ref": msg.ref,
        "map_replies": msg.map_replies,
        "quote_timestamp": msg.quote_timestamp,
        "kek_id": rk.kek_id,
        "dek_wrapped": rk.wrapped,
        "body_sealed": sealer.seal(rk.dek, TABLE, row_id, "body", msg.text.encode()),
        "address_sealed": address,
        "possible_repeat": False,
    })
    return row_id if inserted else None


@dataclass(frozen=True)
class Claimed:
    id: str
    kind: RecipientKind
    ref: str | None
    address: str | None
    text: str
    purpose: str
    case_id: str | None
    map_replies: bool
    quote_timestamp: int | None
    attempts: int
    possible_repeat: bool


@dataclass(frozen=True)
class Destination:
    """Where a claimed row goes, resolved at send time; None means hold it."""

    recipient: str
    map_key: str | None  # destination recorded in the reply map


Resolver = Callable[[Session, Claimed], Destination | None]
# Called in the transaction that records a failure, or a partial group delivery, so the
# consequences (alerts, an unreachable reporter's check-ins) commit with it.
FailureHook = Callable[[Session, Claimed, SendFailure, Status, str | None], None]


@dataclass(frozen=True)
class Delivered:
    """A send that succeeded, waiting to be recorded."""

    item: Claimed
    dest: Destination
    sent: Sent


@dataclass(frozen=True)
class Failed:
    """A send that failed, waiting to be recorded."""

    item: Claimed
    error: SendError


Outcome = Delivered | Failed
Batch = list[tuple[Claimed, Destination | None]]  # claimed rows; no destination: held

_DUE = (
    (_TABLE.c.status.in_((Status.PENDING, Status.HELD))
     & (_TABLE.c.available_at <= bindparam("now")))
    | ((_TABLE.c.status == Status.SENDING) & (_TABLE.c.lease_until < bindparam("now")))
)
_CLAIMABLE = (
    select(_TABLE.c.id, _TABLE.c.status, _TABLE.c.attempts, _TABLE.c.possible_repeat,
           _TABLE.c.recipient_kind, _TABLE.c.recipient_ref, _TABLE.c.purpose,
           _TABLE.c.case_id, _TABLE.c.map_replies, _TABLE.c.quote_timestamp,
           _TABLE.c.dek_wrapped, _TABLE.c.body_sealed, _TABLE.c.address_sealed)
    .where(_DUE).order_by(_TABLE.c.seq).limit(bindparam("batch"))
    .with_for_update(skip_locked=True)
)
_SENT = (update(_TABLE).where(_TABLE.c.id == bindparam("row_id"))
         .values(status=Status.SENT, signal_timestamp=bindparam("ts"), sent_at=bindparam("at"),
                 lease_until=None, error_class=None))
_SENT_MAP = Base.metadata.tables["sent_map"]


class OutboxPump:
    """Claims due rows a batch at a time, sends them (one recipient's rows in order,
    different recipients at once), and records the results in the transaction that
    claims the next batch. A crash before that commit leaves the rows `sending`: they
    are resent, marked as possible repeats (`Relay._recover`).

    When the pump has nothing out, the transaction that wrote rows (the dispatcher's) may
    claim them itself (`claim_in`, then `hand_over` after its commit): the rows then go
    out without a transaction and a trip through the event loop of their own. One batch
    is out at a time either way, so one recipient's messages keep their order."""

    BATCH = 16

    def __init__(
        self,
        sessions: sessionmaker[Session],
        sealer: Sealer,
        gateway: SignalGateway,
        clock: Clock,
        resolve: Resolver,
        run_db: Callable[..., asyncio.Future[object]],
        on_failure: FailureHook | None = None,
    ) -> None:
        self._sessions = sessions
        self._sealer = sealer
        self._gateway = gateway
        self._clock = clock
        self._resolve = resolve
        self._run_db = run_db
        self._on_failure = on_failure
        self.wake = asyncio.Event()
        self.sent_count = 0
        self._late: set[asyncio.Task[None]] = set()
        self._outcomes: list[Outcome] = []  # sent, not recorded yet
        # Shared with the database thread, under _gate: whether a claimed batch is out
        # (set by every claim that found rows, cleared by one that found none), and a
        # batch claimed by another transaction, committed, waiting to be sent.
        self._gate = threading.Lock()
        self._in_flight = False
        self._ready: Batch | None = None

    # -- the database side (run on the database thread) ----------------------------------
    def _record_and_claim(self, outcomes: list[Outcome],
                          batch: int) -> Batch:
        """Record `outcomes`, then claim up to `batch` due rows: one transaction. A batch
        another transaction claimed and handed over is taken instead of claiming."""
        ready = self._take_ready() if batch >= 1 else None
        if ready is not None and not outcomes:
            return ready
        now = self._clock.now()
        try:
            with self._sessions.begin() as s:
                self._record(s, outcomes, now)
                if batch < 1 or ready is not None:
                    return ready or []
                claimed = self._claim(s, now, batch)
        except BaseException:
            if ready is not None:  # not sent yet: still the next batch to send
                with self._gate:
                    self._ready = ready
            raise
        with self._gate:
            self._in_flight = bool(claimed)
        return claimed

    def _take_ready(self) -> Batch | None:
        with self._gate:
            ready, self._ready = self._ready, None
        return ready

    def claim_in(self, s: Session, now: datetime) -> Batch:
        """On the database thread, in the caller's transaction: claim the due rows (those
        it has just written among them) when the pump has nothing out. The caller passes
        the result to `hand_over` once its transaction has committed, or to `release` if
        it did not. Claimed here, a row is sent without a transaction of its own; a crash
        between that commit and the send resends it marked, as for any claimed row."""
        with self._gate:
            if self._in_flight or self._ready is not None:
                return []
            self._in_flight = True
        try:
            with s.begin_nested():
                claimed = self._claim(s, now, self.BATCH)
        except Exception as exc:  # the pump claims them later; the caller's work stands
            log.error("outbox.claim_in_failed", exc_type=type(exc).__name__)
            claimed = []
        if not claimed:
            self.release()
        return claimed

    def hand_over(self, claimed: Batch) -> None:
        """The transaction that claimed `claimed` committed: the pump sends them next
        (the caller wakes it)."""
        if claimed:
            with self._gate:
                self._ready = claimed

    def release(self) -> None:
        """What `claim_in` claimed was rolled back: the rows are due again."""
        with self._gate:
            self._in_flight = False

    def _claim(self, s: Session, now: datetime,
               batch: int) -> Batch:
        conn = s.connection()
        rows = conn.execute(_CLAIMABLE, {"now": now, "batch": batch}).all()
        if not rows:
            return []
        clear: dict[str, tuple[str, str | None]] = s.info.get(_CLEAR, {})
        claimed: set[str] = set()
        for expired in (False, True):  # a lease that ran out: we may have sent it already
            ids = [r.id for r in rows if (r.status == Status.SENDING) is expired]
            if not ids:
                continue
            was = (_TABLE.c.status == Status.SENDING if expired
                   else _TABLE.c.status.in_((Status.PENDING, Status.HELD)))
            claimed.update(conn.execute(
                update(_TABLE).where(_TABLE.c.id.in_(ids), was)
                .values(status=Status.SENDING, lease_until=now + LEASE,
                        attempts=_TABLE.c.attempts + 1,
                        possible_repeat=_TABLE.c.possible_repeat | expired)
                .returning(_TABLE.c.id)).scalars())
        out: Batch = []
        for row in rows:
            if row.id not in claimed:
                continue
            try:
                item = self._open(row, clear.get(row.id))
                dest = self._resolve(s, item)
            except DBAPIError:
                raise  # the transaction is broken: nothing of this batch is claimed
            except Exception as exc:  # a row that cannot be opened or routed never blocks
                log.error("outbox.claim_failed", outbox_id=row.id, exc_type=type(exc).__name__)
                self._hold(conn, row.id, now, type(exc).__name__)
                continue
            if dest is None:
                self._hold(conn, row.id, now, "held_by_policy")
            out.append((item, dest))
        return out

    def _open(self, row: Any, clear: tuple[str, str | None] | None) -> Claimed:
        """A row of _CLAIMABLE, opened; `clear`: its text and address when this session
        enqueued it (then nothing is decrypted)."""
        if clear is not None:
            text, address = clear
        else:
            dek = self._sealer.open_record(TABLE, row.id, row.dek_wrapped)
            address = (
                self._sealer.open(dek, TABLE, row.id, "address", row.address_sealed).decode()
                if row.address_sealed is not None
                else None
            )
            text = self._sealer.open(dek, TABLE, row.id, "body", row.body_sealed).decode()
        return Claimed(
            id=row.id,
            kind=RecipientKind(row.recipient_kind),
            ref=row.recipient_ref,
            address=address,
            text=text,
            purpose=row.purpose,
            case_id=row.case_id,
            map_replies=row.map_replies,
            quote_timestamp=row.quote_timestamp,
            attempts=row.attempts + 1,
            possible_repeat=row.possible_repeat or row.status == Status.SENDING,
        )

    @staticmethod
    def _hold(conn: Connection, row_id: str, now: datetime, why: str) -> None:
        conn.execute(update(_TABLE).where(_TABLE.c.id == row_id).values(
            status=Status.HELD, error_class=why[:64], lease_until=None,
            available_at=now + HOLD_RETRY))

    def _record(self, s: Session, outcomes: list[Outcome], now: datetime) -> None:
        delivered = [o for o in outcomes if isinstance(o, Delivered)]
        if delivered:
            conn = s.connection()
            conn.execute(_SENT, [{"row_id": o.item.id, "ts": o.sent.timestamp, "at": now}
                                 for o in delivered])
            self._map_replies(conn, delivered, now)
            for done in delivered:
                if done.sent.undelivered and self._on_failure is not None:
                    self._isolated(s, done.item, self._partial, done)
        for failed in outcomes:
            if isinstance(failed, Failed):
                self._isolated(s, failed.item, self._after_failure, failed)

    def _isolated(self, s: Session, item: Claimed, fn: Callable[[Session, Any], None],
                  outcome: Outcome) -> None:
        """One result's consequences in a savepoint: a failing hook loses only itself (the
        row then stays `sending` and is retried, marked, when its lease runs out)."""
        try:
            with s.begin_nested():
                fn(s, outcome)
        except Exception as exc:
            log.error("outbox.record_failed", outbox_id=item.id, exc_type=type(exc).__name__)

    def _partial(self, s: Session, outcome: Delivered) -> None:
        assert self._on_failure is not None
        for member, failure in outcome.sent.undelivered:
            self._on_failure(s, outcome.item, failure, Status.SENT, member)

    @staticmethod
    def _map_replies(conn: Connection, delivered: list[Delivered], now: datetime) -> None:
        rows = [{"destination": o.dest.map_key, "signal_timestamp": o.sent.timestamp,
                 "case_id": o.item.case_id, "created_at": now}
                for o in delivered
                if o.item.map_replies and o.item.case_id and o.sent.timestamp and o.dest.map_key]
        for row in rows:  # the first mapping of a (destination, timestamp) wins
            insert_new(conn, _SENT_MAP, ("destination", "signal_timestamp"), row)

    def _mark_sent(self, item: Claimed, dest: Destination, sent: Sent,
                   late: bool = False) -> bool:
        """Record one delivery at once. `late`: a timed-out send answered after all,
        recorded only if the row has not been claimed again since (a retry then carries
        the repeat mark); its time-out may not be recorded yet (the row is still
        `sending`), and then never will be (`_mark_failed` is guarded)."""
        now = self._clock.now()
        with self._sessions.begin() as s:
            stmt = update(OutboxRow).where(OutboxRow.id == item.id)
            if late:
                stmt = stmt.where(OutboxRow.status.in_((Status.PENDING, Status.SENDING)),
                                  OutboxRow.attempts == item.attempts)
            done = s.execute(stmt.values(status=Status.SENT, signal_timestamp=sent.timestamp,
                                         sent_at=now, lease_until=None, error_class=None))
            if late and getattr(done, "rowcount", 0) != 1:
                return False
            delivered = Delivered(item, dest, sent)
            if sent.undelivered and self._on_failure is not None:
                self._partial(s, delivered)
            self._map_replies(s.connection(), [delivered], now)
        return True

    def _mark_failed(self, s: Session, item: Claimed, failure: SendFailure, status: Status,
                     retry_in: timedelta | None, maybe_sent: bool = False) -> None:
        """Record a failed attempt, unless the row is no longer this attempt's (a late
        answer marked it sent meanwhile)."""
        now = self._clock.now()
        previous = s.scalar(select(OutboxRow.error_class).where(OutboxRow.id == item.id))
        done = s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == item.id, OutboxRow.status == Status.SENDING,
                   OutboxRow.attempts == item.attempts)
            .values(
                status=status,
                error_class=str(failure),
                lease_until=None,
                available_at=now + retry_in if retry_in is not None else now,
                possible_repeat=OutboxRow.possible_repeat | maybe_sent,
            )
        )
        if getattr(done, "rowcount", 0) != 1:
            return
        if self._on_failure is not None and status is not Status.PENDING and (
                status is not Status.HELD or previous != failure.value):  # once per hold
            self._on_failure(s, item, failure, status, None)

    def _after_failure(self, s: Session, outcome: Failed) -> None:
        item, exc = outcome.item, outcome.error
        failure = exc.failure
        maybe_sent = exc.late is not None  # timed out: it may have been delivered
        if failure is SendFailure.UNTRUSTED:
            self._mark_failed(s, item, failure, Status.HELD, HOLD_RETRY)
        elif failure is SendFailure.UNREGISTERED:
            self._mark_failed(s, item, failure, Status.UNREACHABLE, None)
        elif item.attempts >= MAX_ATTEMPTS or (failure in (
            SendFailure.REJECTED, SendFailure.UNKNOWN_GROUP
        ) and item.attempts >= 3):
            self._mark_failed(s, item, failure, Status.FAILED, None)
        else:
            self._mark_failed(s, item, failure, Status.PENDING, backoff(item.attempts, failure),
                              maybe_sent)

    # -- the event loop side ---------------------------------------------------------------
    async def run_once(self) -> bool:
        """Record what the last batch did, claim and send the next. False when idle.
        A batch handed over with nothing to record goes out without a database job."""
        outcomes, self._outcomes = self._outcomes, []
        claimed = None if outcomes else self._take_ready()
        if claimed is None:
            try:
                got = await self._run_db(self._record_and_claim, outcomes, self.BATCH)
            except BaseException:
                self._outcomes = outcomes + self._outcomes  # not recorded: try again
                raise
            assert isinstance(got, list)
            claimed = got
        if not claimed:
            return False
        by_recipient: dict[str, list[tuple[Claimed, Destination]]] = {}
        for item, dest in claimed:
            if dest is None:
                log.warning("outbox.held", outbox_id=item.id, status="held")
            else:
                by_recipient.setdefault(dest.recipient, []).append((item, dest))
        await asyncio.gather(*(self._send_in_order(rows) for rows in by_recipient.values()))
        return True

    async def _send_in_order(self, rows: list[tuple[Claimed, Destination]]) -> None:
        for item, dest in rows:
            outcome = await self._send(item, dest)
            if outcome is not None:
                self._outcomes.append(outcome)

    async def _send(self, item: Claimed, dest: Destination) -> Outcome | None:
        text = item.text
        if item.possible_repeat and item.kind is not RecipientKind.REPORTER:
            text = "⚠️ Possible repeat of an earlier message\n" + text
        try:
            sent = await self._gateway.send(
                dest.recipient,
                text,
                quote_timestamp=item.quote_timestamp,
                quote_author=self._gateway.number if item.quote_timestamp else None,
            )
        except SendError as exc:
            log.warning("outbox.send_failed", outbox_id=item.id, attempt=item.attempts,
                        status=exc.failure.value)
            if exc.late is not None:
                self._watch_late(item, dest, exc.late)
            return Failed(item, exc)
        except Exception as exc:  # left `sending`: resent, marked, when the lease runs out
            log.error("outbox.send_crashed", outbox_id=item.id, exc_type=type(exc).__name__)
            return None
        self.sent_count += 1
        log.info("outbox.sent", outbox_id=item.id, attempt=item.attempts)
        return Delivered(item, dest, sent)

    def _watch_late(self, item: Claimed, dest: Destination,
                    late: asyncio.Future[Sent | None]) -> None:
        """A send that timed out may still be answered: then it was delivered, and the
        row is marked sent instead of being sent a second time."""

        async def record() -> None:
            try:
                sent = await late
                mark = functools.partial(self._mark_sent, late=True)
                if sent is not None and await self._run_db(mark, item, dest, sent):
                    self.sent_count += 1
                    log.info("outbox.sent_late", outbox_id=item.id, attempt=item.attempts)
            except Exception as exc:
                log.error("outbox.late_failed", outbox_id=item.id, exc_type=type(exc).__name__)

        task = asyncio.ensure_future(record())
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def run(self, stop: asyncio.Event) -> None:
        await run_until_stopped(self.run_once, self.wake, stop, name="outbox")
        if self._outcomes:  # sent before the stop: recorded, so a restart resends nothing
            outcomes, self._outcomes = self._outcomes, []
            await self._run_db(self._record_and_claim, outcomes, 0)


def backoff(attempt: int, failure: SendFailure) -> timedelta:
    """Exponential back-off with jitter; rate limits wait longer."""
    base = 5.0 if failure is SendFailure.RATE_LIMITED else 0.5
    delay = min(base * (2 ** (attempt - 1)), 600.0)
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))
