"""Inbox: every received frame is sealed and committed before anything else happens.

Both ingest paths (the receive websocket and the REST API's webhook) call `ingest`;
duplicates collapse on a keyed dedupe key of (sender ACI, device, timestamp, kind).
A frame that cannot be parsed is still stored (quarantined), never dropped.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from handlers import frames
from keys import KeyringError, SealError
from relay.store.counters import next_value
from relay.store.inserts import insert_new
from relay.store.models import Base, InboxRow
from relay.store.sealing import Sealer

TABLE = "inbox"
_TABLE = Base.metadata.tables[TABLE]
MAX_ATTEMPTS = 3


class InboxStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    QUARANTINED = "quarantined"


class Stored(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"  # kept, sealed, but it could not even be identified


class QuarantineNowError(Exception):
    """The frame is stored but can never be processed (e.g. a REST API error frame)."""


@dataclass(frozen=True)
class Pending:
    id: str
    raw: str
    attempts: int


def dedupe_for(sealer: Sealer, raw: str) -> tuple[bytes, bool]:
    """The dedupe key, and whether the frame could be identified at all."""
    try:
        ident = frames.identity(frames.load(raw))
    except frames.FrameError:
        ident = None
        parsed = False
    else:
        parsed = True
    if ident is None:
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
        return sealer.dedupe("raw", digest), parsed
    return (
        sealer.dedupe(ident.aci, str(ident.device), str(ident.timestamp), ident.kind.value),
        parsed,
    )


def ingest(session: Session, sealer: Sealer, raw: str, source: str, now: datetime) -> Stored:
    """Store one frame in the caller's transaction."""
    key, parsed = dedupe_for(sealer, raw)
    row_id = str(uuid.uuid4())
    rk = sealer.new_record(TABLE, row_id)
    conn = session.connection()
    inserted = insert_new(conn, _TABLE, "dedupe_key", {
        "id": row_id,
        "seq": next_value(conn, "inbox"),
        "dedupe_key": key,
        "source": source,
        "received_at": now,
        "status": InboxStatus.PENDING if parsed else InboxStatus.QUARANTINED,
        "attempts": 0,
        "error_class": None if parsed else "FrameError",
        "kek_id": rk.kek_id,
        "dek_wrapped": rk.wrapped,
        "frame_sealed": sealer.seal(
            rk.dek, TABLE, row_id, "frame", raw.encode("utf-8", "surrogatepass")
        ),
    })
    if not inserted:
        return Stored.DUPLICATE
    return Stored.NEW if parsed else Stored.QUARANTINED


_PENDING = (select(_TABLE.c.id, _TABLE.c.attempts, _TABLE.c.dek_wrapped, _TABLE.c.frame_sealed)
            .where(_TABLE.c.status == InboxStatus.PENDING).order_by(_TABLE.c.seq)
            .limit(bindparam("limit")))
_DONE = (update(_TABLE).where(_TABLE.c.id.in_(bindparam("ids", expanding=True)))
         .values(status=InboxStatus.DONE, processed_at=bindparam("at")))


def pending(session: Session, sealer: Sealer, limit: int) -> list[Pending]:
    """The oldest pending frames (up to `limit`), opened, in arrival order. A row that
    cannot be opened (tampered, or its key destroyed) is quarantined on the spot so it
    never blocks the rows behind it."""
    conn = session.connection()
    while True:
        rows = conn.execute(_PENDING, {"limit": limit}).all()
        opened: list[Pending] = []
        for row in rows:
            try:
                dek = sealer.open_record(TABLE, row.id, row.dek_wrapped)
                blob = sealer.open(dek, TABLE, row.id, "frame", row.frame_sealed)
            except (SealError, KeyringError) as exc:
                conn.execute(update(_TABLE).where(_TABLE.c.id == row.id).values(
                    status=InboxStatus.QUARANTINED, error_class=type(exc).__name__))
                continue
            opened.append(Pending(row.id, blob.decode("utf-8", "surrogatepass"), row.attempts))
        if opened or not rows:
            return opened


def next_pending(session: Session, sealer: Sealer) -> Pending | None:
    """The oldest pending frame, opened (see `pending`)."""
    found = pending(session, sealer, 1)
    return found[0] if found else None


def mark_done(session: Session, row_ids: list[str], now: datetime) -> None:
    if row_ids:
        session.connection().execute(_DONE, {"ids": row_ids, "at": now})


def record_failure(session: Session, row_id: str, exc_type: str, *, at_once: bool = False) -> bool:
    """Count a failed processing attempt; quarantine after MAX_ATTEMPTS. True if quarantined."""
    row = session.get(InboxRow, row_id)
    if row is None:
        return False
    row.attempts += 1
    row.error_class = exc_type[:64]
    if at_once or row.attempts >= MAX_ATTEMPTS:
        row.status = InboxStatus.QUARANTINED
        return True
    return False


def quarantined_count(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(InboxRow).where(
            InboxRow.status == InboxStatus.QUARANTINED
        )
    ) or 0
