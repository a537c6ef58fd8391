"""Retention: the reporter link dies first, then the case; an epoch whose rows are all gone
has its key destroyed, so a copy of the database taken before the purge cannot be read
(SECURITY.md §2.4, §2.5). Real SQLite files and PostgreSQL.
"""

from __future__ import annotations

import shutil
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
from relay.retention import INBOX_KEEP_DAYS, OUTBOX_KEEP_DAYS, purge
from relay.store.db import make_engine, make_sessionmaker
from relay.store.models import (
    Base,
    Case,
    CaseMessage,
    InboxRow,
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
