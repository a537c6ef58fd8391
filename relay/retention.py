"""`relay purge`: retention by deletion, then crypto-shredding (SECURITY.md §2.4, §2.5).

In order:
(a) reporter links of cases closed more than `retention.reporter_link_days` ago (the link
    dies first);
(b) cases closed more than `retention.closed_case_days` ago, with (FK cascade) their
    messages, links and reply-map rows, plus the outbox rows about them;
(c) finished inbox rows (done/quarantined) and finished outbox rows (sent/failed/
    unreachable) older than `INBOX_KEEP_DAYS` / `OUTBOX_KEEP_DAYS`;
(c') moderation: warnings that can never count again (before a gap of
    `moderation.warning_expiry_days`, or the whole series once it expired), removal votes
    closed more than `retention.closed_case_days` ago (with their ballots), and subjects
    left with neither;
(d) every epoch KEK, other than the current epoch's, that no row references any more is
    destroyed: the deleted rows' residue in WAL files and backups becomes unreadable;
(e) SQLite: `wal_checkpoint(TRUNCATE)`, `VACUUM`, `wal_checkpoint(TRUNCATE)`;
    PostgreSQL: `VACUUM` of relay's tables.

Deleting rows is not enough on its own (§2.4): only (d) is dependable. The report holds
counts and epoch labels, never content.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from handlers.flows.ledger import current_series
from keys import Keyring, epoch_label, parse_kek_id
from relay.config import OrgConfig
from relay.rotation import WRAPPED_TABLES, wrapped_table
from relay.store.db import is_sqlite
from relay.store.models import (
    Base,
    Case,
    CaseMessage,
    InboxRow,
    ModerationSubject,
    ModerationVote,
    ModerationWarning,
    OutboxRow,
    ReporterLink,
)

TRUNCATE_TRIES: Final = 20
TRUNCATE_PAUSE: Final = 0.05  # seconds between tries
INBOX_KEEP_DAYS: Final = 30
"""Days a finished (done or quarantined) inbox row is kept."""
OUTBOX_KEEP_DAYS: Final = 30
"""Days a finished (sent, failed or unreachable) outbox row is kept."""

CLOSED: Final = "closed"
INBOX_FINISHED: Final = ("done", "quarantined")
OUTBOX_FINISHED: Final = ("sent", "failed", "unreachable")


@dataclass(frozen=True)
class PurgeReport:
    reporter_links: int
    """Links deleted because their case was closed `reporter_link_days` ago."""
    cases: int
    case_messages: int
    case_outbox: int
    """Outbox rows about the deleted cases (any status)."""
    inbox: int
    outbox: int
    moderation_warnings: int
    """Warnings that no longer count and never can again."""
    moderation_votes: int
    """Removal votes closed more than `closed_case_days` ago."""
    moderation_subjects: int
    """Warned people with no warning and no vote left (their keyed index goes too)."""
    epochs_destroyed: tuple[str, ...]
    """Epoch labels whose KEKs were destroyed (in a dry run: would be)."""
    compacted: bool
    """True if the database was checkpointed and vacuumed."""
    dry_run: bool = False


_BULK: Final = {"synchronize_session": False}


def _count(session: Session, stmt: Any) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def _delete_expired(session: Session, cfg: OrgConfig, now: datetime) -> dict[str, int]:
    retention = cfg.retention
    link_cutoff = now - timedelta(days=retention.reporter_link_days)
    case_cutoff = now - timedelta(days=retention.closed_case_days)
    closed = (Case.status == CLOSED) & Case.closed_at.is_not(None)

    # (a) the link dies first
    old_links = select(Case.id).where(closed, Case.closed_at < link_cutoff)
    links = session.execute(
        delete(ReporterLink).where(ReporterLink.case_id.in_(old_links))
        .returning(ReporterLink.id),
        execution_options=_BULK,
    ).all()

    # (b) the case, its messages (cascade), links and reply map (cascade), its outbox rows
    old_cases = select(Case.id).where(closed, Case.closed_at < case_cutoff)
    messages = _count(session, select(CaseMessage.id).where(CaseMessage.case_id.in_(old_cases)))
    case_outbox = session.execute(
        delete(OutboxRow).where(OutboxRow.case_id.in_(old_cases)).returning(OutboxRow.id),
        execution_options=_BULK,
    ).all()
    cases = session.execute(
        delete(Case).where(Case.id.in_(old_cases)).returning(Case.id),
        execution_options=_BULK,
    ).all()

    # (c) finished work items
    inbox = session.execute(
        delete(InboxRow).where(
            InboxRow.status.in_(INBOX_FINISHED),
            InboxRow.received_at < now - timedelta(days=INBOX_KEEP_DAYS),
        ).returning(InboxRow.id),
        execution_options=_BULK,
    ).all()
    outbox = session.execute(
        delete(OutboxRow).where(
            OutboxRow.status.in_(OUTBOX_FINISHED),
            OutboxRow.created_at < now - timedelta(days=OUTBOX_KEEP_DAYS),
        ).returning(OutboxRow.id),
        execution_options=_BULK,
    ).all()
    return {
        "reporter_links": len(links), "cases": len(cases), "case_messages": messages,
        "case_outbox": len(case_outbox), "inbox": len(inbox), "outbox": len(outbox),
        **_delete_moderation(session, cfg, now),
    }


def _delete_moderation(session: Session, cfg: OrgConfig, now: datetime) -> dict[str, int]:
    """(c') Warnings outside the running series, old closed votes, then empty subjects."""
    expiry = timedelta(days=cfg.moderation.warning_expiry_days)
    by_subject: dict[str, list[tuple[datetime, str]]] = {}
    for subject_id, created_at, warning_id in session.execute(
            select(ModerationWarning.subject_id, ModerationWarning.created_at,
                   ModerationWarning.id)):
        by_subject.setdefault(subject_id, []).append((created_at, warning_id))
    spent: list[str] = []
    for rows in by_subject.values():
        past = sorted(row for row in rows if row[0] <= now)  # never a future-dated row
        counting = len(current_series([created for created, _ in past], now, expiry))
        spent.extend(warning_id for _, warning_id in past[:len(past) - counting])
    warnings = 0
    for start in range(0, len(spent), 500):
        warnings += len(session.execute(
            delete(ModerationWarning).where(ModerationWarning.id.in_(spent[start:start + 500]))
            .returning(ModerationWarning.id), execution_options=_BULK).all())
    votes = session.execute(
        delete(ModerationVote).where(
            ModerationVote.status == CLOSED,
            ModerationVote.closed_at < now - timedelta(days=cfg.retention.closed_case_days),
        ).returning(ModerationVote.id),
        execution_options=_BULK,
    ).all()
    subjects = session.execute(
        delete(ModerationSubject).where(
            ~select(ModerationWarning.id).where(
                ModerationWarning.subject_id == ModerationSubject.id).exists(),
            ~select(ModerationVote.id).where(
                ModerationVote.subject_id == ModerationSubject.id).exists(),
        ).returning(ModerationSubject.id),
        execution_options=_BULK,
    ).all()
    return {"moderation_warnings": warnings, "moderation_votes": len(votes),
            "moderation_subjects": len(subjects)}


def referenced_epochs(session: Session) -> set[str]:
    """Epochs some row's `kek_id` names (ids that do not parse are ignored)."""
    epochs: set[str] = set()
    for name in WRAPPED_TABLES:
        table = wrapped_table(name)
        for kek_id in session.scalars(select(table.c.kek_id).distinct()):
            try:
                epochs.add(parse_kek_id(str(kek_id))[0])
            except ValueError:
                continue
    return epochs


def _doomed_epochs(keyring: Keyring, referenced: set[str], now: datetime) -> list[str]:
    current = epoch_label(now, keyring.period)
    live = {s.epoch for s in keyring.status()}
    # only epochs before the current one: never the current or a future one (clock skew)
    return sorted(e for e in live - referenced if e < current)


def _truncate_wal(dbapi: Any) -> bool:
    """`wal_checkpoint(TRUNCATE)`, tried again for up to a second while it reports busy: a
    running relay's `WalCheckpointer` may be in a checkpoint of its own at that moment."""
    for _ in range(TRUNCATE_TRIES):
        if dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:
            return True
        time.sleep(TRUNCATE_PAUSE)
    return False


def compact(engine: Engine) -> bool:
    """Flush deleted rows out of the WAL and the free pages (SQLite), or VACUUM (PostgreSQL).

    Runs outside any transaction. Returns False if SQLite could not truncate the WAL
    (another connection was reading); the keys are what protect the data then.
    """
    if is_sqlite(engine):
        raw = engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            assert dbapi is not None
            dbapi.isolation_level = None  # autocommit: VACUUM refuses to run in a transaction
            first = _truncate_wal(dbapi)
            dbapi.execute("VACUUM")
            return _truncate_wal(dbapi) and first
        finally:
            raw.close()
    tables = ", ".join(engine.dialect.identifier_preparer.quote(t) for t in Base.metadata.tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM {tables}")
    return True


def purge(
    sessions: sessionmaker[Session],
    engine: Engine,
    keyring: Keyring,
    cfg: OrgConfig,
    now: datetime,
    *,
    dry_run: bool = False,
) -> PurgeReport:
    """Apply retention: delete expired rows, shred unreferenced epochs, compact the store.

    With `dry_run`, the deletions run in a transaction that is rolled back, so the counts
    (and the epochs that would die) are exact; nothing is destroyed or compacted.
    """
    keyring.reload()
    with sessions() as session:
        try:
            counts = _delete_expired(session, cfg, now)
            referenced = referenced_epochs(session)
        except BaseException:
            session.rollback()
            raise
        if dry_run:
            session.rollback()
        else:
            session.commit()
    doomed = _doomed_epochs(keyring, referenced, now)
    compacted = False
    if not dry_run:
        for label in doomed:
            keyring.destroy_epoch(label)
        compacted = compact(engine)
    return PurgeReport(
        reporter_links=counts["reporter_links"], cases=counts["cases"],
        case_messages=counts["case_messages"], case_outbox=counts["case_outbox"],
        inbox=counts["inbox"], outbox=counts["outbox"],
        moderation_warnings=counts["moderation_warnings"],
        moderation_votes=counts["moderation_votes"],
        moderation_subjects=counts["moderation_subjects"], epochs_destroyed=tuple(doomed),
        compacted=compacted, dry_run=dry_run,
    )
