"""Per-record sealing for the store: every sensitive column goes through here.

A record gets its own data key (DEK), wrapped by the active epoch key-encryption key;
each field is an AES-GCM envelope whose associated data binds table, row id and column,
so ciphertext moved between rows or columns fails to open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keys import (
    EpochMissingError,
    Keyring,
    blind_index,
    dedupe_key,
    new_dek,
    open_,
    seal,
    unwrap_dek,
    wrap_dek,
)
from keys.layout import KEYRING_FILE
from relay.clock import Clock


@dataclass(frozen=True)
class RecordKey:
    dek: bytes
    wrapped: bytes
    kek_id: str

    def __repr__(self) -> str:
        return f"RecordKey(kek_id={self.kek_id!r}, dek=<redacted>)"


class Sealer:
    def __init__(self, keyring: Keyring, clock: Clock) -> None:
        self._keyring = keyring
        self._clock = clock
        self._seen = self._keyring_stamp()

    def _keyring_stamp(self) -> int:
        try:
            return (self._keyring.path / KEYRING_FILE).stat().st_mtime_ns
        except OSError:
            return 0

    def _fresh(self) -> None:
        """`relay keys rotate` or `relay purge` may have changed keyring.bin under a running
        relay: pick the change up before wrapping, so no new row uses a retired key."""
        stamp = self._keyring_stamp()
        if stamp != self._seen:
            self._keyring.reload()
            self._seen = stamp

    def __repr__(self) -> str:
        return "Sealer(<keys redacted>)"

    def now(self) -> datetime:
        return self._clock.now()

    def new_record(self, table: str, row_id: str) -> RecordKey:
        now = self._clock.now()
        self._fresh()
        try:
            kek_id = self._keyring.active_kek_id(now)
        except EpochMissingError:
            kek_id = self._keyring.ensure_epoch(now)  # a new retention epoch began
        dek = new_dek()
        return RecordKey(dek, wrap_dek(self._keyring, dek, table, row_id, kek_id), kek_id)

    def open_record(self, table: str, row_id: str, wrapped: bytes) -> bytes:
        return unwrap_dek(self._keyring, wrapped, table, row_id)

    def seal(self, dek: bytes, table: str, row_id: str, column: str, data: bytes) -> bytes:
        return seal(dek, data, table=table, row_id=row_id, column=column)

    def open(self, dek: bytes, table: str, row_id: str, column: str, blob: bytes) -> bytes:
        return open_(dek, blob, table=table, row_id=row_id, column=column)

    def seal_json(self, dek: bytes, table: str, row_id: str, column: str, value: Any) -> bytes:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return self.seal(dek, table, row_id, column, data)

    def open_json(self, dek: bytes, table: str, row_id: str, column: str, blob: bytes) -> Any:
        return json.loads(self.open(dek, table, row_id, column, blob))

    def reporter_index(self, aci: str) -> bytes:
        return blind_index(self._keyring, "aci", aci)

    def name_index(self, name: str) -> bytes:
        """Blind index of a person's name as a reporter typed it (NFKC, casefolded)."""
        return blind_index(self._keyring, "name", name)

    def subject_index(self, name: str) -> bytes:
        """Blind index of a person a moderator warned: its own key, so the moderation
        ledger cannot be joined with the cases' "who was involved" index."""
        return blind_index(self._keyring, "subject", name)

    def dedupe(self, *parts: str) -> bytes:
        return dedupe_key(self._keyring, *parts)
