"""`relay keys verify`: open every sealed field of every row, report counts and failing ids.

Each row's DEK is unwrapped and each of its sealed fields opened (case messages under
their case's DEK); the plaintext is dropped at once. The report holds counts per table
and, for failures only, the table, row id, the column that failed and why. Never content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from keys import KeyDestroyedError, Keyring, SealError, open_, unwrap_dek
from relay.rotation import DEFAULT_BATCH, wrapped_table

SEALED_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "inbox": ("frame",),
    "conversations": ("data", "address"),
    "cases": ("details",),
    "reporter_links": ("identity",),
    "outbox": ("body", "address"),
    "moderation_warnings": ("note",),
}
"""Sealed columns (`<name>_sealed`) of each table with its own DEK; AD uses `<name>`."""

CASES: Final = "cases"
MESSAGES: Final = "case_messages"
MESSAGE_FIELDS: Final = ("body",)
DEK: Final = "dek"
"""The `column` of a failure to unwrap the row's (or, for a message, its case's) DEK."""


class FailureKind(StrEnum):
    TAMPERED = "tampered"
    KEY_DESTROYED = "key destroyed"


@dataclass(frozen=True)
class TableCounts:
    ok: int = 0
    tampered: int = 0
    key_destroyed: int = 0

    @property
    def rows(self) -> int:
        return self.ok + self.tampered + self.key_destroyed


@dataclass(frozen=True)
class VerifyFailure:
    """One row that did not open: where and why, never what it holds."""

    table: str
    row_id: str
    column: str
    kind: FailureKind


@dataclass(frozen=True)
class VerifyReport:
    tables: dict[str, TableCounts] = field(default_factory=dict)
    failures: tuple[VerifyFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures


def _kind(exc: Exception) -> FailureKind:
    return FailureKind.KEY_DESTROYED if isinstance(exc, KeyDestroyedError) else (
        FailureKind.TAMPERED
    )


class _Tally:
    def __init__(self) -> None:
        names = (*SEALED_FIELDS, MESSAGES)
        self.counts: dict[str, dict[FailureKind | None, int]] = {
            name: {None: 0, FailureKind.TAMPERED: 0, FailureKind.KEY_DESTROYED: 0}
            for name in names
        }
        self.failures: list[VerifyFailure] = []

    def ok(self, table: str) -> None:
        self.counts[table][None] += 1

    def fail(self, table: str, row_id: str, column: str, kind: FailureKind) -> None:
        self.counts[table][kind] += 1
        self.failures.append(VerifyFailure(table, row_id, column, kind))

    def report(self) -> VerifyReport:
        tables = {
            name: TableCounts(c[None], c[FailureKind.TAMPERED], c[FailureKind.KEY_DESTROYED])
            for name, c in self.counts.items()
        }
        return VerifyReport(tables, tuple(self.failures))


def _open_fields(dek: bytes, table: str, row: Sequence[Any], columns: tuple[str, ...],
                 offset: int) -> tuple[str, FailureKind] | None:
    """Open each sealed column of `row` (values start at `offset`); the first failure."""
    row_id = str(row[0])
    for index, column in enumerate(columns):
        blob = row[offset + index]
        if blob is None:  # an optional sealed column (outbox.address for groups)
            continue
        try:
            open_(dek, bytes(blob), table=table, row_id=row_id, column=column)
        except (SealError, KeyDestroyedError, ValueError) as exc:
            return column, _kind(exc)
    return None


def _unwrap(keyring: Keyring, table: str, row_id: str, blob: Any) -> bytes | FailureKind:
    try:
        return unwrap_dek(keyring, bytes(blob), table, row_id)
    except (SealError, KeyDestroyedError, ValueError) as exc:
        return _kind(exc)


def _check_messages(session: Session, tally: _Tally,
                    case_deks: dict[str, bytes | FailureKind]) -> None:
    messages = wrapped_table(MESSAGES)
    rows = session.execute(
        select(messages.c.id, messages.c.case_id, messages.c.body_sealed)
        .where(messages.c.case_id.in_(list(case_deks)))
        .order_by(messages.c.id)
    ).all()
    for row in rows:
        dek = case_deks[str(row[1])]
        if isinstance(dek, FailureKind):
            tally.fail(MESSAGES, str(row[0]), DEK, dek)
            continue
        failure = _open_fields(dek, MESSAGES, row, MESSAGE_FIELDS, 2)
        if failure is None:
            tally.ok(MESSAGES)
        else:
            tally.fail(MESSAGES, str(row[0]), *failure)


def _check_table(sessions: sessionmaker[Session], keyring: Keyring, name: str,
                 tally: _Tally, batch: int) -> None:
    table = wrapped_table(name)
    columns = SEALED_FIELDS[name]
    sealed = [table.c[f"{column}_sealed"] for column in columns]
    cursor = ""
    while True:
        with sessions.begin() as session:
            rows = session.execute(
                select(table.c.id, table.c.dek_wrapped, *sealed)
                .where(table.c.id > cursor)
                .order_by(table.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return
            case_deks: dict[str, bytes | FailureKind] = {}
            for row in rows:
                row_id = str(row[0])
                dek = _unwrap(keyring, name, row_id, row[1])
                if name == CASES:
                    case_deks[row_id] = dek
                if isinstance(dek, FailureKind):
                    tally.fail(name, row_id, DEK, dek)
                    continue
                failure = _open_fields(dek, name, row, columns, 2)
                if failure is None:
                    tally.ok(name)
                else:
                    tally.fail(name, row_id, *failure)
            if case_deks:
                _check_messages(session, tally, case_deks)
            cursor = str(rows[-1][0])


def verify(sessions: sessionmaker[Session], keyring: Keyring, *,
           batch: int = DEFAULT_BATCH) -> VerifyReport:
    """Try to open everything; count ok / tampered / key destroyed per table."""
    keyring.reload()  # see rotations and shredding done by other processes
    tally = _Tally()
    for name in SEALED_FIELDS:
        _check_table(sessions, keyring, name, tally, batch)
    return tally.report()
