"""Tamper-evident audit log: opaque ids only, hash-chained, written in the same transaction.

h_i = SHA-256(0x00 ‖ h_{i-1} ‖ canon(body_i)), h_0 = 32 zero bytes (SECURITY.md §5).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from relay.store.models import AuditEntry, Base

GENESIS = bytes(32)


def _canon(seq: int, ts: datetime, event: str, case_ref: str | None, actor_ref: str | None,
           outbox_id: str | None) -> bytes:
    body = {
        "seq": seq,
        "ts": ts.isoformat(),
        "event": event,
        "case_ref": case_ref,
        "actor_ref": actor_ref,
        "outbox_id": outbox_id,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _link(prev: bytes, body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + prev + body).digest()


_TABLE = Base.metadata.tables["audit_log"]
# the chain head, locked until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already is)
_HEAD = (select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1)
         .with_for_update())
_ADD = insert(_TABLE)


def append(
    session: Session,
    event: str,
    now: datetime,
    *,
    case_ref: str | None = None,
    actor_ref: str | None = None,
    outbox_id: str | None = None,
) -> None:
    """Chain one entry onto the head, in the caller's transaction (written at once)."""
    conn = session.connection()
    head = conn.execute(_HEAD).first()
    seq = 1 if head is None else head.seq + 1
    prev = GENESIS if head is None else head.hash
    ts = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    digest = _link(prev, _canon(seq, ts, event, case_ref, actor_ref, outbox_id))
    conn.execute(_ADD, {"seq": seq, "ts": ts, "event": event, "case_ref": case_ref,
                        "actor_ref": actor_ref, "outbox_id": outbox_id, "prev_hash": prev,
                        "hash": digest})


def count(session: Session) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def verify(session: Session) -> list[str]:
    """Recompute the chain from genesis. Empty list means intact."""
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        if entry.seq != expected_seq:
            problems.append(f"seq gap at {expected_seq}")
            expected_seq = entry.seq
        if entry.prev_hash != prev:
            problems.append(f"broken link at {entry.seq}")
        body = _canon(entry.seq, entry.ts, entry.event, entry.case_ref, entry.actor_ref,
                      entry.outbox_id)
        if _link(entry.prev_hash, body) != entry.hash:
            problems.append(f"entry {entry.seq} was altered")
        prev = entry.hash
        expected_seq += 1
    return problems
