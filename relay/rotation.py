"""KEK rotation by re-wrapping DEKs (SECURITY.md §2.3).

`rotate` adds a new generation of the current epoch's KEK, then re-wraps, in batches of
committed transactions (each written with one `executemany`), every wrapped DEK still
under an older generation of that same epoch, updating `dek_wrapped` and `kek_id`
together (only where `dek_wrapped` is still the blob that was read). Field ciphertexts
never change, and rows of other epochs keep their epoch, so shredding an epoch still
shreds them.

A rotation is resumable: while the keyring still holds an older live generation of the
current epoch, a rotation is unfinished, and the next call continues it instead of
adding yet another generation. The old generation is retired only when no row
references it any more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from keys import (
    EpochMissingError,
    KeyDestroyedError,
    Keyring,
    SealError,
    TamperedError,
    epoch_label,
    kek_id_of,
    rewrap_dek,
)
from relay.store.models import Base

WRAPPED_TABLES: Final = ("inbox", "conversations", "cases", "reporter_links", "outbox",
                         "moderation_warnings")
"""Every table whose rows carry their own DEK in `dek_wrapped`, named by `kek_id`."""

MAX_PASSES: Final = 3
"""Passes over the tables; a later pass catches rows a stale writer added behind us."""

DEFAULT_BATCH: Final = 500

Progress = Callable[[int, int], None]
"""Called after each committed batch with (rows handled so far, rows to handle)."""


def wrapped_table(name: str) -> Table:
    return Base.metadata.tables[name]


@dataclass(frozen=True)
class RowFailure:
    """A row whose DEK could not be re-wrapped: ids and an error class, never content."""

    table: str
    row_id: str
    kind: str


@dataclass(frozen=True)
class RotationReport:
    epoch: str
    kek_id: str
    """The active generation every re-wrapped DEK now uses."""
    created: bool
    """True if this call created `kek_id`; False if it resumed an unfinished rotation."""
    previous: tuple[str, ...]
    """Older live generations of the epoch this call re-wrapped away from."""
    rewrapped: dict[str, int] = field(default_factory=dict)
    retired: tuple[str, ...] = ()
    failed: tuple[RowFailure, ...] = ()
    remaining: int = 0
    """Rows still on an older generation (failed, or changed under us); 0 when finished."""

    @property
    def total(self) -> int:
        return sum(self.rewrapped.values())

    @property
    def finished(self) -> bool:
        return self.remaining == 0


def _older_generations(keyring: Keyring, epoch: str, active: str) -> list[str]:
    return [
        s.kek_id for s in keyring.status() if s.epoch == epoch and s.kek_id != active
    ]


def _count_on(session: Session, old: Sequence[str]) -> int:
    total = 0
    for name in WRAPPED_TABLES:
        table = wrapped_table(name)
        total += session.scalar(
            select(func.count()).select_from(table).where(table.c.kek_id.in_(old))
        ) or 0
    return total


def _start(keyring: Keyring, now: datetime) -> tuple[str, str, bool, list[str]]:
    """(epoch, active kek id, created?, older live generations to re-wrap away from)."""
    keyring.reload()  # another process (the service, an earlier run) may have changed it
    epoch = epoch_label(now, keyring.period)
    try:
        active = keyring.active_kek_id(now)
    except EpochMissingError:
        # The epoch has no KEK yet: its first generation is brand new, nothing to re-wrap.
        return epoch, keyring.ensure_epoch(now), True, []
    older = _older_generations(keyring, epoch, active)
    if older:
        return epoch, active, False, older  # resume the unfinished rotation
    active = keyring.rotate(now)
    return epoch, active, True, _older_generations(keyring, epoch, active)


class _Run:
    def __init__(self, sessions: sessionmaker[Session], keyring: Keyring, new_id: str,
                 old: list[str], batch: int, total: int, progress: Progress | None) -> None:
        self.sessions = sessions
        self.keyring = keyring
        self.new_id = new_id
        self.old = old
        self.batch = batch
        self.total = total
        self.progress = progress
        self.done = 0
        self.rewrapped = dict.fromkeys(WRAPPED_TABLES, 0)
        self.failed: dict[tuple[str, str], RowFailure] = {}

    def _one_batch(self, name: str, cursor: str) -> tuple[int, str | None]:
        """Re-wrap up to `batch` rows after `cursor` in one transaction; (moved, cursor)."""
        table = wrapped_table(name)
        moved = 0
        with self.sessions.begin() as session:
            rows = session.execute(
                select(table.c.id, table.c.dek_wrapped)
                .where(table.c.kek_id.in_(self.old), table.c.id > cursor)
                .order_by(table.c.id)
                .limit(self.batch)
            ).all()
            if not rows:
                return 0, None
            rewrapped: list[dict[str, object]] = []
            for row_id, blob in rows:
                if (name, row_id) in self.failed:
                    continue
                try:
                    if kek_id_of(blob) not in self.old:  # never move a DEK across epochs
                        raise TamperedError("kek_id column and wrapped DEK disagree")
                    new_blob = rewrap_dek(self.keyring, blob, name, row_id, self.new_id)
                except (SealError, KeyDestroyedError, ValueError) as exc:
                    self.failed[name, row_id] = RowFailure(name, row_id, type(exc).__name__)
                    continue
                rewrapped.append({"b_id": row_id, "b_old": blob, "b_new": new_blob})
            if rewrapped:  # one executemany; a row changed under us keeps its new blob
                moved = session.connection().execute(
                    update(table)
                    .where(table.c.id == bindparam("b_id"),
                           table.c.dek_wrapped == bindparam("b_old"))
                    .values(dek_wrapped=bindparam("b_new"), kek_id=self.new_id),
                    rewrapped,
                ).rowcount
        self.rewrapped[name] += moved
        self.done += len(rows)
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)
        return moved, str(rows[-1][0])

    def one_pass(self) -> int:
        moved_total = 0
        for name in WRAPPED_TABLES:
            cursor: str | None = ""
            while cursor is not None:
                moved, cursor = self._one_batch(name, cursor)
                moved_total += moved
        return moved_total


def rotate(
    sessions: sessionmaker[Session],
    keyring: Keyring,
    now: datetime,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> RotationReport:
    """Rotate the current epoch's KEK (or finish an unfinished rotation); see module doc."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    epoch, new_id, created, old = _start(keyring, now)
    if not old:
        return RotationReport(epoch, new_id, created, ())
    with sessions.begin() as session:
        total = _count_on(session, old)
    run = _Run(sessions, keyring, new_id, old, batch, total, progress)
    for _ in range(MAX_PASSES):
        moved = run.one_pass()
        with sessions.begin() as session:
            remaining = _count_on(session, old)
        if moved == 0 or remaining <= len(run.failed):
            break
    retired: tuple[str, ...] = ()
    if remaining == 0:
        for kek_id in old:
            keyring.retire(kek_id)
        retired = tuple(old)
    return RotationReport(
        epoch=epoch,
        kek_id=new_id,
        created=created,
        previous=tuple(old),
        rewrapped=dict(run.rewrapped),
        retired=retired,
        failed=tuple(run.failed.values()),
        remaining=remaining,
    )
