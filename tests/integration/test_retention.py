"""Retention: the reporter link dies first, then the case; an epoch whose rows are all gone
has its key destroyed, so a copy of the database taken before the purge cannot be read
(SECURITY.md §2.4, §2.5). Real SQLite files and PostgreSQL.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from handlers.flows.catalog import Catalog
from keys import KeyDestroyedError, Keyring, unwrap_dek
from relay.cases import open_case, reporter_of
from relay.clock import FakeClock
from relay.config import OrgConfig
from relay.moderation import NOTE_COLUMN, WARNINGS_TABLE
from relay.retention import INBOX_KEEP_DAYS, OUTBOX_KEEP_DAYS, purge
from relay.store.db import make_engine, make_sessionmaker
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
    SentMap,
)
from relay.store.sealing import Sealer
from relay.verify import verify
from tests.integration.test_rotation import (
    catalog,
    cfg,
    new_case,
    new_inbox,
    reporter,
)

__all__ = ["catalog", "cfg"]  # shared fixtures

OLD = datetime(2025, 11, 3, 10, tzinfo=UTC)  # epoch 2025-q4, a year before the fixtures' t0
CLOSED_AT = datetime(2025, 11, 10, 10, tzinfo=UTC)


def _close(sessions: sessionmaker[Session], case_id: str, when: datetime) -> None:
    with sessions.begin() as s:
        s.execute(update(Case).where(Case.id == case_id)
                  .values(status="closed", closed_at=when, updated_at=when))


def _count(sessions: sessionmaker[Session], model: type[Base],
           *where: ColumnElement[bool]) -> int:
    with sessions.begin() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _epochs(keyring: Keyring) -> set[str]:
    return {s.epoch for s in keyring.status()}


def _copy_sqlite(engine: Engine, db_url: str, dest: Path) -> str | None:
    """Copy the SQLite file and its WAL as a backup would; None on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return None
    src = Path(db_url.removeprefix("sqlite:///"))
    dest.mkdir()
    shutil.copyfile(src, dest / src.name)
    for suffix in ("-wal",):
        side = src.with_name(src.name + suffix)
        if side.exists():
            shutil.copyfile(side, dest / (src.name + suffix))
    return f"sqlite:///{dest / src.name}"


def test_purge_shreds_the_epoch_so_a_copy_taken_before_cannot_be_opened(
    tmp_path: Path, db_url: str, engine: Engine, sessions: sessionmaker[Session],
    keyring: Keyring, sealer: Sealer, clock: FakeClock, cfg: OrgConfig, catalog: Catalog,
) -> None:
    t0 = clock.now()
    clock.set(OLD)
    doomed = new_case(sessions, sealer, cfg, catalog, clock, 1)
    new_inbox(sessions, sealer, clock, 1762164000000)
    with sessions.begin() as s:
        s.execute(update(InboxRow).values(status="done", processed_at=OLD))
        s.add(SentMap(destination="regen-group", signal_timestamp=1762164000123,
                      case_id=doomed, created_at=OLD))
        row = s.get_one(Case, doomed)
        link = s.scalars(select(ReporterLink).where(ReporterLink.case_id == doomed)).one()
        backup = [("cases", row.id, row.dek_wrapped), ("reporter_links", link.id,
                                                        link.dek_wrapped)]
        assert row.kek_id == "2025-q4.1"
    _close(sessions, doomed, CLOSED_AT)
    clock.set(t0)
    current = new_case(sessions, sealer, cfg, catalog, clock, 2)  # 2026-q4, stays open
    assert _epochs(keyring) == {"2025-q4", "2026-q4"}
    for table, row_id, blob in backup:  # the backup is readable before the purge
        unwrap_dek(keyring, blob, table, row_id)
    copy_url = _copy_sqlite(engine, db_url, tmp_path / "backup")

    clock.set(CLOSED_AT + timedelta(days=cfg.retention.closed_case_days + 1))
    report = purge(sessions, engine, keyring, cfg, clock.now())

    assert (report.reporter_links, report.cases, report.case_messages) == (1, 1, 1)
    assert report.case_outbox >= 2  # the scope delivery and the receipt
    assert report.inbox == 1
    assert report.epochs_destroyed == ("2025-q4",)
    assert report.compacted
    assert _count(sessions, Case, Case.id == doomed) == 0
    assert _count(sessions, CaseMessage, CaseMessage.case_id == doomed) == 0
    assert _count(sessions, ReporterLink, ReporterLink.case_id == doomed) == 0
    assert _count(sessions, SentMap, SentMap.case_id == doomed) == 0
    assert _count(sessions, OutboxRow, OutboxRow.case_id.is_(None)) == 0
    assert _epochs(keyring) == {"2026-q4"}
    assert _epochs(Keyring.load(keyring.path)) == {"2026-q4"}
    assert verify(sessions, keyring).ok  # what is left still opens
    with sessions.begin() as s:
        open_case(sealer, s.get_one(Case, current))

    for ring in (keyring, Keyring.load(keyring.path)):
        for table, row_id, blob in backup:
            with pytest.raises(KeyDestroyedError):
                unwrap_dek(ring, blob, table, row_id)

    if copy_url is None:
        return
    copy = make_engine(copy_url)
    try:
        with make_sessionmaker(copy).begin() as s:
            old_row = s.get_one(Case, doomed)  # the row is in the copy ...
            with pytest.raises(KeyDestroyedError):  # ... but it cannot be opened any more
                open_case(Sealer(Keyring.load(keyring.path), clock), old_row)
            with pytest.raises(KeyDestroyedError):
                reporter_of(s, sealer, doomed)
    finally:
        copy.dispose()
    live = Path(db_url.removeprefix("sqlite:///"))
    wal = live.with_name(live.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # wal_checkpoint(TRUNCATE)
    data = live.read_bytes()
    assert all(blob not in data for _, _, blob in backup)  # secure_delete + VACUUM


def test_an_open_case_keeps_its_epoch_alive(
    sessions: sessionmaker[Session], engine: Engine, keyring: Keyring, sealer: Sealer,
    clock: FakeClock, cfg: OrgConfig, catalog: Catalog,
) -> None:
    clock.set(OLD)
    closed = new_case(sessions, sealer, cfg, catalog, clock, 1)
    still_open = new_case(sessions, sealer, cfg, catalog, clock, 2)
    _close(sessions, closed, CLOSED_AT)

    clock.set(CLOSED_AT + timedelta(days=cfg.retention.closed_case_days + 1))
    report = purge(sessions, engine, keyring, cfg, clock.now())

    assert report.cases == 1
    assert report.epochs_destroyed == ()
    assert _epochs(keyring) == {"2025-q4", "2026-q4"}
    assert _count(sessions, Case, Case.id == closed) == 0
    with sessions.begin() as s:
        view = open_case(sealer, s.get_one(Case, still_open))
        assert view.id == still_open
        assert reporter_of(s, sealer, still_open) == reporter(2)


def test_the_reporter_link_dies_before_the_case(
    sessions: sessionmaker[Session], engine: Engine, keyring: Keyring, sealer: Sealer,
    clock: FakeClock, cfg: OrgConfig, catalog: Catalog,
) -> None:
    closed_at = clock.now()
    case_id = new_case(sessions, sealer, cfg, catalog, clock, 3)
    _close(sessions, case_id, closed_at)

    clock.set(closed_at + timedelta(days=cfg.retention.reporter_link_days - 1))
    early = purge(sessions, engine, keyring, cfg, clock.now())
    assert (early.reporter_links, early.cases) == (0, 0)

    clock.set(closed_at + timedelta(days=cfg.retention.reporter_link_days + 1))
    dry = purge(sessions, engine, keyring, cfg, clock.now(), dry_run=True)
    assert (dry.dry_run, dry.reporter_links, dry.cases, dry.compacted) == (True, 1, 0, False)
    assert _count(sessions, ReporterLink, ReporterLink.case_id == case_id) == 1

    report = purge(sessions, engine, keyring, cfg, clock.now())
    assert (report.reporter_links, report.cases, report.epochs_destroyed) == (1, 0, ())
    with sessions.begin() as s:
        assert reporter_of(s, sealer, case_id) is None  # who reported it is gone ...
        assert open_case(sealer, s.get_one(Case, case_id)).id == case_id  # ... the case is not

    clock.set(closed_at + timedelta(days=cfg.retention.closed_case_days + 1))
    dry = purge(sessions, engine, keyring, cfg, clock.now(), dry_run=True)
    assert (dry.cases, dry.epochs_destroyed) == (1, ("2026-q4",))
    assert _epochs(keyring) == {"2026-q4"}  # a dry run shreds nothing
    final = purge(sessions, engine, keyring, cfg, clock.now())
    assert (final.reporter_links, final.cases, final.case_messages) == (0, 1, 1)
    assert final.epochs_destroyed == ("2026-q4",)
    assert _epochs(keyring) == set()  # the next write creates the 2027-q4 key
    assert _count(sessions, Case) == 0


def test_finished_inbox_and_outbox_rows_expire_after_their_own_window(
    sessions: sessionmaker[Session], engine: Engine, keyring: Keyring, sealer: Sealer,
    clock: FakeClock, cfg: OrgConfig, catalog: Catalog,
) -> None:
    start = clock.now()
    case_id = new_case(sessions, sealer, cfg, catalog, clock, 4)  # open: never deleted
    for i in range(3):
        new_inbox(sessions, sealer, clock, 1762164000000 + i)
    with sessions.begin() as s:
        inbox_ids = s.scalars(select(InboxRow.id).order_by(InboxRow.seq)).all()
        outbox_ids = s.scalars(select(OutboxRow.id).order_by(OutboxRow.seq)).all()
        s.execute(update(InboxRow).where(InboxRow.id == inbox_ids[0]).values(status="done"))
        s.execute(update(InboxRow).where(InboxRow.id == inbox_ids[1])
                  .values(status="quarantined"))
        s.execute(update(OutboxRow).where(OutboxRow.id == outbox_ids[0]).values(status="sent"))
    assert len(outbox_ids) >= 2

    clock.set(start + timedelta(days=min(INBOX_KEEP_DAYS, OUTBOX_KEEP_DAYS) - 1))
    assert purge(sessions, engine, keyring, cfg, clock.now()).inbox == 0

    clock.set(start + timedelta(days=max(INBOX_KEEP_DAYS, OUTBOX_KEEP_DAYS) + 1))
    report = purge(sessions, engine, keyring, cfg, clock.now())
    assert (report.inbox, report.outbox, report.cases) == (2, 1, 0)
    with sessions.begin() as s:
        assert s.scalars(select(InboxRow.id)).all() == [inbox_ids[2]]  # pending stays
        left = set(s.scalars(select(OutboxRow.id)))
    assert left == set(outbox_ids[1:])
    assert _count(sessions, Case, Case.id == case_id) == 1


def _warn(sessions: sessionmaker[Session], sealer: Sealer, name: str, when: datetime) -> str:
    """A moderator's warning about `name`, stored as relay.moderation stores one."""
    index = sealer.subject_index(name)
    with sessions.begin() as s:
        subject = s.scalar(select(ModerationSubject).where(ModerationSubject.name_bidx == index))
        if subject is None:
            subject = ModerationSubject(id=str(uuid.uuid4()), name_bidx=index, created_at=when)
            s.add(subject)
            s.flush()
        row_id = str(uuid.uuid4())
        rk = sealer.new_record(WARNINGS_TABLE, row_id)
        s.add(ModerationWarning(
            id=row_id, subject_id=subject.id, created_at=when, author="rc-rowan",
            kek_id=rk.kek_id, dek_wrapped=rk.wrapped,
            note_sealed=sealer.seal(rk.dek, WARNINGS_TABLE, row_id, NOTE_COLUMN, b"shouted")))
        return str(subject.id)


def test_moderation_warnings_that_can_never_count_again_are_deleted(
    sessions: sessionmaker[Session], engine: Engine, keyring: Keyring, sealer: Sealer,
    clock: FakeClock, cfg: OrgConfig,
) -> None:
    expiry = timedelta(days=cfg.moderation.warning_expiry_days)
    now = clock.now()
    # Sam: one warning a year ago, then a fresh series of two: the old one never counts again
    sam = _warn(sessions, sealer, "Sam Example", now - timedelta(days=365))
    _warn(sessions, sealer, "Sam Example", now - timedelta(days=60))
    _warn(sessions, sealer, "Sam Example", now - timedelta(days=10))
    # Kim: two warnings, the last longer ago than the expiry: the whole series is spent
    kim = _warn(sessions, sealer, "Kim Example", now - expiry - timedelta(days=40))
    _warn(sessions, sealer, "Kim Example", now - expiry - timedelta(days=1))
    # Lee: a warning and a removal vote closed long ago; Ash: an open vote keeps its subject
    lee = _warn(sessions, sealer, "Lee Example", now - expiry - timedelta(days=400))
    ash = _warn(sessions, sealer, "Ash Example", now - expiry - timedelta(days=5))
    long_ago = now - timedelta(days=cfg.retention.closed_case_days + 1)
    with sessions.begin() as s:
        s.add(ModerationVote(id=str(uuid.uuid4()), ref="V-OLD1", subject_id=lee, warnings=3,
                             opened_at=long_ago - timedelta(days=3), closes_at=long_ago,
                             status="closed", closed_at=long_ago, removed=True,
                             yes_count=2, no_count=1))
        s.add(ModerationVote(id=str(uuid.uuid4()), ref="V-OPN1", subject_id=ash, warnings=3,
                             opened_at=now, closes_at=now + timedelta(hours=72),
                             status="open"))

    dry = purge(sessions, engine, keyring, cfg, now, dry_run=True)
    assert (dry.moderation_warnings, dry.moderation_votes, dry.moderation_subjects) == (5, 1, 2)
    assert _count(sessions, ModerationWarning) == 7  # a dry run changes nothing

    report = purge(sessions, engine, keyring, cfg, now)
    assert (report.moderation_warnings, report.moderation_votes,
            report.moderation_subjects) == (5, 1, 2)
    with sessions.begin() as s:
        left = {(w.subject_id, w.created_at) for w in s.scalars(select(ModerationWarning))}
        subjects = set(s.scalars(select(ModerationSubject.id)))
        votes = set(s.scalars(select(ModerationVote.ref)))
    assert left == {(sam, now - timedelta(days=60)), (sam, now - timedelta(days=10))}
    assert subjects == {sam, ash}  # Kim and Lee are gone, fingerprint and all
    assert kim not in subjects
    assert votes == {"V-OPN1"}
