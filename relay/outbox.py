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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from relay.clock import Clock
from relay.gateway import SendError, SendFailure, Sent, SignalGateway
from relay.logs import get_logger
from relay.loops import run_until_stopped
from relay.store.counters import next_value
from relay.store.models import OutboxRow, SentMap
from relay.store.sealing import Sealer

log = get_logger("outbox")

TABLE = "outbox"
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
    """Add one message in the caller's transaction. Same key twice: kept once."""
    exists = session.scalar(select(OutboxRow.id).where(OutboxRow.idempotency_key == key))
    if exists is not None:
        return None
    row_id = str(uuid.uuid4())
    rk = sealer.new_record(TABLE, row_id)
    address = (
        sealer.seal(rk.dek, TABLE, row_id, "address", msg.address.encode())
        if msg.address is not None
        else None
    )
    session.add(
        OutboxRow(
            id=row_id,
            seq=next_value(session, "outbox"),
            idempotency_key=key,
            created_at=now,
            available_at=now,
            status=Status.PENDING,
            attempts=0,
            purpose=msg.purpose,
            case_id=msg.case_id,
            recipient_kind=msg.kind,
            recipient_ref=msg.ref,
            map_replies=msg.map_replies,
            quote_timestamp=msg.quote_timestamp,
            kek_id=rk.kek_id,
            dek_wrapped=rk.wrapped,
            body_sealed=sealer.seal(rk.dek, TABLE, row_id, "body", msg.text.encode()),
            address_sealed=address,
        )
    )
    return row_id


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


class OutboxPump:
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

    def _claim(self) -> tuple[Claimed, Destination | None] | None:
        now = self._clock.now()
        with self._sessions.begin() as s:
            row = s.scalar(
                select(OutboxRow)
                .where(
                    (OutboxRow.status.in_((Status.PENDING, Status.HELD))
                     & (OutboxRow.available_at <= now))
                    | ((OutboxRow.status == Status.SENDING) & (OutboxRow.lease_until < now))
                )
                .order_by(OutboxRow.seq)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return None
            repeat = row.status == Status.SENDING  # a lease ran out: we may have sent it
            attempts = row.attempts + 1
            was_repeat = row.possible_repeat or repeat
            claimed = s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row.id, OutboxRow.status == row.status)
                .values(
                    status=Status.SENDING,
                    lease_until=now + LEASE,
                    attempts=OutboxRow.attempts + 1,
                    possible_repeat=OutboxRow.possible_repeat | repeat,
                )
            )
            if getattr(claimed, "rowcount", 0) != 1:
                return None
            dek = self._sealer.open_record(TABLE, row.id, row.dek_wrapped)
            address = (
                self._sealer.open(dek, TABLE, row.id, "address", row.address_sealed).decode()
                if row.address_sealed is not None
                else None
            )
            item = Claimed(
                id=row.id,
                kind=RecipientKind(row.recipient_kind),
                ref=row.recipient_ref,
                address=address,
                text=self._sealer.open(dek, TABLE, row.id, "body", row.body_sealed).decode(),
                purpose=row.purpose,
                case_id=row.case_id,
                map_replies=row.map_replies,
                quote_timestamp=row.quote_timestamp,
                attempts=attempts,
                possible_repeat=was_repeat,
            )
            dest = self._resolve(s, item)
            if dest is None:
                row.status = Status.HELD
                row.error_class = "held_by_policy"
                row.lease_until = None
                row.available_at = now + HOLD_RETRY
            return item, dest

    def _mark_sent(self, item: Claimed, dest: Destination, sent: Sent,
                   late: bool = False) -> bool:
        """Record a delivery. `late`: a timed-out send answered after all, recorded only if
        the row has not been claimed again since (a retry then carries the repeat mark)."""
        now = self._clock.now()
        timestamp = sent.timestamp
        with self._sessions.begin() as s:
            stmt = update(OutboxRow).where(OutboxRow.id == item.id)
            if late:
                stmt = stmt.where(OutboxRow.status == Status.PENDING,
                                  OutboxRow.attempts == item.attempts)
            done = s.execute(stmt.values(status=Status.SENT, signal_timestamp=timestamp,
                                         sent_at=now, lease_until=None, error_class=None))
            if late and getattr(done, "rowcount", 0) != 1:
                return False
            if self._on_failure is not None:
                for member, failure in sent.undelivered:
                    self._on_failure(s, item, failure, Status.SENT, member)
            if item.map_replies and item.case_id and timestamp and dest.map_key:
                s.add(SentMap(destination=dest.map_key, signal_timestamp=timestamp,
                              case_id=item.case_id, created_at=now))
        return True

    def _mark_failed(self, item: Claimed, failure: SendFailure, status: Status,
                     retry_in: timedelta | None, maybe_sent: bool = False) -> None:
        now = self._clock.now()
        with self._sessions.begin() as s:
            if self._on_failure is not None and status is not Status.PENDING:
                previous = s.scalar(select(OutboxRow.error_class)
                                    .where(OutboxRow.id == item.id))
                if status is not Status.HELD or previous != failure.value:  # once per hold
                    self._on_failure(s, item, failure, status, None)
            s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == item.id)
                .values(
                    status=status,
                    error_class=str(failure),
                    lease_until=None,
                    available_at=now + retry_in if retry_in is not None else now,
                    possible_repeat=OutboxRow.possible_repeat | maybe_sent,
                )
            )

    async def run_once(self) -> bool:
        """Send one due row. Returns False when there was nothing to send."""
        claimed = await self._run_db(self._claim)
        if claimed is None:
            return False
        assert isinstance(claimed, tuple)
        item, dest = claimed
        if dest is None:
            log.warning("outbox.held", outbox_id=item.id, status="held")
            return True
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
            await self._run_db(self._after_failure, item, exc)
            if exc.late is not None:
                self._watch_late(item, dest, exc.late)
            return True
        await self._run_db(self._mark_sent, item, dest, sent)
        self.sent_count += 1
        log.info("outbox.sent", outbox_id=item.id, attempt=item.attempts)
        return True

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

    def _after_failure(self, item: Claimed, exc: SendError) -> None:
        failure = exc.failure
        maybe_sent = exc.late is not None  # timed out: it may have been delivered
        if failure is SendFailure.UNTRUSTED:
            self._mark_failed(item, failure, Status.HELD, HOLD_RETRY)
        elif failure is SendFailure.UNREGISTERED:
            self._mark_failed(item, failure, Status.UNREACHABLE, None)
        elif item.attempts >= MAX_ATTEMPTS or (failure in (
            SendFailure.REJECTED, SendFailure.UNKNOWN_GROUP
        ) and item.attempts >= 3):
            self._mark_failed(item, failure, Status.FAILED, None)
        else:
            self._mark_failed(item, failure, Status.PENDING, backoff(item.attempts, failure),
                              maybe_sent)
        log.warning("outbox.send_failed", outbox_id=item.id, attempt=item.attempts,
                    status=failure.value)

    async def run(self, stop: asyncio.Event) -> None:
        await run_until_stopped(self.run_once, self.wake, stop, name="outbox")


def backoff(attempt: int, failure: SendFailure) -> timedelta:
    """Exponential back-off with jitter; rate limits wait longer."""
    base = 5.0 if failure is SendFailure.RATE_LIMITED else 0.5
    delay = min(base * (2 ** (attempt - 1)), 600.0)
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))
