"""AEAD envelopes: per-record DEKs, wrapped DEKs and sealed fields.

Exact formats (all AES-256-GCM, 96-bit random nonce, 128-bit tag; ‖ is concatenation):

DEK
    `new_dek()` = `AESGCM.generate_key(bit_length=256)`: 32 random bytes, one per record
    (one per case, plus a separate one for the reporter-identity link).

Wrapped DEK (72 bytes for a 9-character kek_id such as 2026-q4.1)
    b"W1" ‖ len(kek_id) (1 byte) ‖ kek_id (ASCII, e.g. "2026-q4.1") ‖ nonce (12)
    ‖ AESGCM(KEK[kek_id]).encrypt(nonce, dek, ad)
    ad = b"relay/v1|dek|<table>|<row_id>|k<kek_id>"

Field (30 bytes + plaintext length)
    b"F1" ‖ nonce (12) ‖ AESGCM(dek).encrypt(nonce, plaintext, ad)
    ad = b"relay/v1|<table>|<row_id>|<column>|k<version>"   (version = FIELD_VERSION = 1)

`table` and `column` are lowercase identifiers; `row_id` is the row's immutable id (a UUID
string the caller generates before INSERT); none may contain "|", so AD is unambiguous.
Moving a field or wrapped DEK to another row, column or table fails authentication.

Failures: an unknown prefix raises `UnknownEnvelopeError`; a failed tag, truncation or a
wrong binding raises `TamperedError` (quarantine and alert); no partial plaintext is ever
returned. A KEK that was destroyed or retired raises `KeyDestroyedError`.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys.epochs import parse_kek_id
from keys.errors import PlaintextTooLargeError, TamperedError, UnknownEnvelopeError

if TYPE_CHECKING:
    from keys.keyring import Keyring

FIELD_PREFIX: Final = b"F1"
WRAP_PREFIX: Final = b"W1"
FIELD_VERSION: Final = 1
DEK_LEN: Final = 32
NONCE_LEN: Final = 12
TAG_LEN: Final = 16
MAX_PLAINTEXT: Final = 64 * 1024 * 1024
"""64 MiB. AES-GCM in cryptography raises OverflowError above 2**31-1 bytes anyway."""

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_ROW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def new_dek() -> bytes:
    """A fresh random 256-bit data-encryption key."""
    return AESGCM.generate_key(bit_length=256)


def _check_dek(dek: bytes) -> None:
    if not isinstance(dek, bytes) or len(dek) != DEK_LEN:
        raise ValueError(f"a DEK is exactly {DEK_LEN} bytes")


def _check_binding(table: str, row_id: str, column: str | None = None) -> None:
    if _NAME.fullmatch(table) is None:
        raise ValueError("table must be a lowercase identifier ([a-z][a-z0-9_]*)")
    if column is not None and _NAME.fullmatch(column) is None:
        raise ValueError("column must be a lowercase identifier ([a-z][a-z0-9_]*)")
    if _ROW_ID.fullmatch(row_id) is None:
        raise ValueError("row_id must be 1-128 chars of [A-Za-z0-9_.:-] (use a UUID)")


def field_ad(table: str, row_id: str, column: str, version: int = FIELD_VERSION) -> bytes:
    """Associated data binding a field to its table, row, column and format version."""
    _check_binding(table, row_id, column)
    return f"relay/v1|{table}|{row_id}|{column}|k{version}".encode("ascii")


def dek_ad(table: str, row_id: str, kek_id: str) -> bytes:
    """Associated data binding a wrapped DEK to its table, row and KEK id."""
    _check_binding(table, row_id)
    parse_kek_id(kek_id)
    return f"relay/v1|dek|{table}|{row_id}|k{kek_id}".encode("ascii")


# -- fields ------------------------------------------------------------------------------


def _seal_with_nonce(dek: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """Field envelope with a given nonce. Only `seal` and known-answer tests call this."""
    _check_dek(dek)
    if len(nonce) != NONCE_LEN:
        raise ValueError(f"nonce must be {NONCE_LEN} bytes")
    if len(plaintext) > MAX_PLAINTEXT:
        raise PlaintextTooLargeError(
            f"plaintext of {len(plaintext)} bytes exceeds the {MAX_PLAINTEXT}-byte cap; "
            "split it or reject it at intake"
        )
    return FIELD_PREFIX + nonce + AESGCM(dek).encrypt(nonce, plaintext, ad)


def seal(dek: bytes, plaintext: bytes, *, table: str, row_id: str, column: str) -> bytes:
    """Encrypt one field of one row under the row's DEK."""
    ad = field_ad(table, row_id, column)
    return _seal_with_nonce(dek, os.urandom(NONCE_LEN), plaintext, ad)


def open_(dek: bytes, blob: bytes, *, table: str, row_id: str, column: str) -> bytes:
    """Decrypt a field sealed by `seal` for exactly this table, row and column."""
    _check_dek(dek)
    ad = field_ad(table, row_id, column)
    head = len(FIELD_PREFIX)
    if blob[:head] != FIELD_PREFIX:
        raise UnknownEnvelopeError(f"{table}.{column} does not hold a known field envelope")
    if len(blob) < head + NONCE_LEN + TAG_LEN:
        raise TamperedError(f"field envelope for {table}.{column} is truncated")
    if len(blob) > head + NONCE_LEN + MAX_PLAINTEXT + TAG_LEN:
        raise PlaintextTooLargeError(f"field envelope for {table}.{column} exceeds the cap")
    try:
        return AESGCM(dek).decrypt(blob[head : head + NONCE_LEN], blob[head + NONCE_LEN :], ad)
    except InvalidTag:
        raise TamperedError(
            f"field envelope for {table}.{column} failed authentication "
            "(tampered, moved from another row, or wrong DEK)"
        ) from None


# -- wrapped DEKs ------------------------------------------------------------------------


def _wrap_with_nonce(keyring: Keyring, dek: bytes, nonce: bytes, ad: bytes, kek_id: str) -> bytes:
    """Wrapped-DEK envelope with a given nonce. Only `wrap_dek` and KATs call this."""
    _check_dek(dek)
    if len(nonce) != NONCE_LEN:
        raise ValueError(f"nonce must be {NONCE_LEN} bytes")
    kid = kek_id.encode("ascii")
    body = keyring.kek_cipher(kek_id).encrypt(nonce, dek, ad)
    return WRAP_PREFIX + bytes([len(kid)]) + kid + nonce + body


def wrap_dek(keyring: Keyring, dek: bytes, table: str, row_id: str, kek_id: str) -> bytes:
    """Wrap a DEK under the KEK `kek_id` (normally `keyring.active_kek_id(now)`)."""
    ad = dek_ad(table, row_id, kek_id)
    return _wrap_with_nonce(keyring, dek, os.urandom(NONCE_LEN), ad, kek_id)


def _split_wrapped(blob: bytes) -> tuple[str, bytes, bytes]:
    """Parse a wrapped DEK into (kek_id, nonce, ciphertext)."""
    head = len(WRAP_PREFIX)
    if blob[:head] != WRAP_PREFIX:
        raise UnknownEnvelopeError("not a known wrapped-DEK envelope")
    if len(blob) < head + 1:
        raise TamperedError("wrapped DEK is truncated")
    id_len = blob[head]
    id_end = head + 1 + id_len
    if len(blob) != id_end + NONCE_LEN + DEK_LEN + TAG_LEN:
        raise TamperedError("wrapped DEK has the wrong length")
    try:
        kek_id = blob[head + 1 : id_end].decode("ascii")
        parse_kek_id(kek_id)
    except ValueError:
        raise TamperedError("wrapped DEK carries a malformed KEK id") from None
    return kek_id, blob[id_end : id_end + NONCE_LEN], blob[id_end + NONCE_LEN :]


def kek_id_of(blob: bytes) -> str:
    """The KEK id a wrapped DEK names (not authenticated until `unwrap_dek`)."""
    return _split_wrapped(blob)[0]


def unwrap_dek(keyring: Keyring, blob: bytes, table: str, row_id: str) -> bytes:
    """Recover the DEK of `table`/`row_id`; `KeyDestroyedError` if its KEK is gone."""
    kek_id, nonce, body = _split_wrapped(blob)
    ad = dek_ad(table, row_id, kek_id)
    cipher = keyring.kek_cipher(kek_id)
    try:
        return cipher.decrypt(nonce, body, ad)
    except InvalidTag:
        raise TamperedError(
            f"wrapped DEK for {table} under KEK {kek_id} failed authentication "
            "(tampered or moved from another row)"
        ) from None


def rewrap_dek(keyring: Keyring, blob: bytes, table: str, row_id: str, new_kek_id: str) -> bytes:
    """Re-wrap a DEK under `new_kek_id` (rotation); the field ciphertexts do not change."""
    return wrap_dek(keyring, unwrap_dek(keyring, blob, table, row_id), table, row_id, new_kek_id)
