"""Envelope formats: known answers, bindings to table/row/column/KEK, tampering, limits."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys import (
    MAX_PLAINTEXT,
    KeyDestroyedError,
    Keyring,
    PlaintextTooLargeError,
    SealError,
    TamperedError,
    UnknownEnvelopeError,
    kek_id_of,
    new_dek,
    open_,
    rewrap_dek,
    seal,
    unwrap_dek,
    wrap_dek,
)
from keys.envelope import _seal_with_nonce, _wrap_with_nonce, dek_ad, field_ad

# -- known-answer vectors --------------------------------------------------------------
# Computed once with raw AESGCM; each KAT also recomputes them independently below.

KAT_DEK = bytes(range(32))
KAT_KEK = bytes(range(0x40, 0x60))
KAT_ROW = "3f2b8c1e-5d4a-4e7b-9c0d-1a2b3c4d5e6f"
KAT_PLAINTEXT = b"relay known-answer plaintext"
KAT_FIELD_NONCE = bytes(range(0xA0, 0xAC))
KAT_WRAP_NONCE = bytes(range(0xB0, 0xBC))
KAT_FIELD_HEX = (
    "4631a0a1a2a3a4a5a6a7a8a9aaab947d104c3ceb69d10d12e9fe6614b3a915de7960fed62b02e86b5ef24e"
    "b8efa4ead6dbfb16e9ad4001c8da80"
)
KAT_WRAPPED_HEX = (
    "573109323032362d71342e31b0b1b2b3b4b5b6b7b8b9babb03018286c54fed9e33e72df3e1fb42c4ae1996"
    "3b5000c088ebdf7a2095adec8f6d0ec13aa73df92f3fdfddbd6a700985"
)


class _FixedKekRing:
    """Stands in for a Keyring whose only KEK is KAT_KEK under id 2026-q4.1."""

    def kek_cipher(self, kek_id: str) -> AESGCM:
        if kek_id != "2026-q4.1":
            raise KeyDestroyedError(kek_id)
        return AESGCM(KAT_KEK)


def test_field_envelope_known_answer() -> None:
    ad = field_ad("cases", KAT_ROW, "body")
    assert ad == f"relay/v1|cases|{KAT_ROW}|body|k1".encode()
    blob = _seal_with_nonce(KAT_DEK, KAT_FIELD_NONCE, KAT_PLAINTEXT, ad)
    assert blob.hex() == KAT_FIELD_HEX

    # Independent computation: the documented layout from raw AES-GCM.
    independent = (
        b"F1"
        + KAT_FIELD_NONCE
        + AESGCM(KAT_DEK).encrypt(
            KAT_FIELD_NONCE, KAT_PLAINTEXT, b"relay/v1|cases|" + KAT_ROW.encode() + b"|body|k1"
        )
    )
    assert independent.hex() == KAT_FIELD_HEX
    assert open_(KAT_DEK, blob, table="cases", row_id=KAT_ROW, column="body") == KAT_PLAINTEXT


def test_wrapped_dek_known_answer() -> None:
    ring = _FixedKekRing()
    ad = dek_ad("cases", KAT_ROW, "2026-q4.1")
    assert ad == f"relay/v1|dek|cases|{KAT_ROW}|k2026-q4.1".encode()
    blob = _wrap_with_nonce(ring, KAT_DEK, KAT_WRAP_NONCE, ad, "2026-q4.1")  # type: ignore[arg-type]
    assert blob.hex() == KAT_WRAPPED_HEX

    kid = b"2026-q4.1"
    independent = (
        b"W1"
        + bytes([len(kid)])
        + kid
        + KAT_WRAP_NONCE
        + AESGCM(KAT_KEK).encrypt(
            KAT_WRAP_NONCE, KAT_DEK, b"relay/v1|dek|cases|" + KAT_ROW.encode() + b"|k" + kid
        )
    )
    assert independent.hex() == KAT_WRAPPED_HEX
    assert kek_id_of(blob) == "2026-q4.1"
    assert unwrap_dek(ring, blob, "cases", KAT_ROW) == KAT_DEK  # type: ignore[arg-type]
    assert len(blob) == 2 + 1 + len(kid) + 12 + 32 + 16


def test_seal_uses_fresh_nonces() -> None:
    dek = new_dek()
    a = seal(dek, b"same", table="cases", row_id="r1", column="body")
    b = seal(dek, b"same", table="cases", row_id="r1", column="body")
    assert a != b
    assert a[:2] == b"F1"
    assert len(a) == 2 + 12 + 4 + 16


# -- bindings: moving ciphertext between rows, columns, tables fails -----------------------


def _row() -> str:
    return str(uuid.uuid4())


def test_field_moved_to_another_row_fails() -> None:
    dek = new_dek()
    row_a, row_b = _row(), _row()
    blob = seal(dek, b"report text", table="cases", row_id=row_a, column="body")
    with pytest.raises(TamperedError):
        open_(dek, blob, table="cases", row_id=row_b, column="body")
    with pytest.raises(TamperedError):
        open_(dek, blob, table="cases", row_id=row_a, column="title")
    with pytest.raises(TamperedError):
        open_(dek, blob, table="messages", row_id=row_a, column="body")


def test_row_swap_of_field_and_wrapped_dek_fails(ring: Keyring, now: datetime) -> None:
    kek_id = ring.active_kek_id(now)
    row_a, row_b = _row(), _row()
    dek_a, dek_b = new_dek(), new_dek()
    wrapped_a = wrap_dek(ring, dek_a, "cases", row_a, kek_id)
    field_a = seal(dek_a, b"A's report", table="cases", row_id=row_a, column="body")
    wrap_dek(ring, dek_b, "cases", row_b, kek_id)

    # An attacker copies row A's wrapped DEK and field into row B.
    with pytest.raises(TamperedError):
        unwrap_dek(ring, wrapped_a, "cases", row_b)
    with pytest.raises(TamperedError):
        unwrap_dek(ring, wrapped_a, "reporter_links", row_a)
    # Even holding A's DEK, the field does not open as row B's.
    with pytest.raises(TamperedError):
        open_(dek_a, field_a, table="cases", row_id=row_b, column="body")
    with pytest.raises(TamperedError):
        open_(dek_b, field_a, table="cases", row_id=row_a, column="body")


@pytest.mark.parametrize("position", [0, 2, 13, 14, -1])
def test_flipped_byte_fails(position: int) -> None:
    dek = new_dek()
    blob = bytearray(seal(dek, b"report text", table="cases", row_id="r1", column="body"))
    blob[position] ^= 0x01
    with pytest.raises(SealError):
        open_(dek, bytes(blob), table="cases", row_id="r1", column="body")


def test_flipped_byte_in_wrapped_dek_fails(ring: Keyring, now: datetime) -> None:
    blob = wrap_dek(ring, new_dek(), "cases", "r1", ring.active_kek_id(now))
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises((SealError, KeyDestroyedError)):
            unwrap_dek(ring, bytes(tampered), "cases", "r1")


def test_unknown_prefix_and_truncation(ring: Keyring, now: datetime) -> None:
    dek = new_dek()
    blob = seal(dek, b"x", table="cases", row_id="r1", column="body")
    with pytest.raises(UnknownEnvelopeError):
        open_(dek, b"F2" + blob[2:], table="cases", row_id="r1", column="body")
    with pytest.raises(UnknownEnvelopeError):
        open_(dek, b"", table="cases", row_id="r1", column="body")
    with pytest.raises(TamperedError):
        open_(dek, blob[:20], table="cases", row_id="r1", column="body")

    wrapped = wrap_dek(ring, dek, "cases", "r1", ring.active_kek_id(now))
    with pytest.raises(UnknownEnvelopeError):
        unwrap_dek(ring, b"W0" + wrapped[2:], "cases", "r1")
    with pytest.raises(UnknownEnvelopeError):
        kek_id_of(blob)  # a field envelope is not a wrapped DEK
    with pytest.raises(TamperedError):
        unwrap_dek(ring, wrapped[:-1], "cases", "r1")
    with pytest.raises(TamperedError):
        unwrap_dek(ring, wrapped[:2], "cases", "r1")
    with pytest.raises(TamperedError):
        kek_id_of(b"W1\x03abc" + bytes(60))  # malformed kek id, right length


def test_seal_errors_share_a_base() -> None:
    assert issubclass(TamperedError, SealError)
    assert issubclass(UnknownEnvelopeError, SealError)
    assert issubclass(PlaintextTooLargeError, SealError)


def test_plaintext_cap() -> None:
    dek = new_dek()
    with pytest.raises(PlaintextTooLargeError, match="cap"):
        seal(dek, bytes(MAX_PLAINTEXT + 1), table="cases", row_id="r1", column="body")


def test_bad_bindings_rejected() -> None:
    dek = new_dek()
    for table, row_id, column in [
        ("cases|x", "r1", "body"),
        ("cases", "r1|x", "body"),
        ("cases", "r1", "body|k2"),
        ("Cases", "r1", "body"),
        ("cases", "", "body"),
    ]:
        with pytest.raises(ValueError, match="must be"):
            seal(dek, b"x", table=table, row_id=row_id, column=column)
    with pytest.raises(ValueError, match="32 bytes"):
        seal(b"short", b"x", table="cases", row_id="r1", column="body")


# -- keyring-backed wrapping: rotation, rewrap, destruction ------------------------------


def test_rotation_and_rewrap(ring: Keyring, now: datetime) -> None:
    old_id = ring.active_kek_id(now)
    dek = new_dek()
    old_blob = wrap_dek(ring, dek, "cases", "r1", old_id)
    field = seal(dek, b"report", table="cases", row_id="r1", column="body")

    new_id = ring.rotate(now)
    assert new_id == "2026-q4.2"
    assert ring.active_kek_id(now) == new_id
    assert unwrap_dek(ring, old_blob, "cases", "r1") == dek  # old generation still opens

    new_blob = rewrap_dek(ring, old_blob, "cases", "r1", new_id)
    assert kek_id_of(new_blob) == new_id
    assert unwrap_dek(ring, new_blob, "cases", "r1") == dek
    # The field ciphertext is untouched by rotation.
    assert open_(dek, field, table="cases", row_id="r1", column="body") == b"report"

    ring.retire(old_id)
    with pytest.raises(KeyDestroyedError):
        unwrap_dek(ring, old_blob, "cases", "r1")
    assert unwrap_dek(ring, new_blob, "cases", "r1") == dek


def test_destroyed_epoch_shreds(ring: Keyring, now: datetime, keys_dir) -> None:
    kek_id = ring.active_kek_id(now)
    dek = new_dek()
    blob = wrap_dek(ring, dek, "cases", "r1", kek_id)
    assert ring.destroy_epoch("2026-q4") == ["2026-q4.1"]
    with pytest.raises(KeyDestroyedError):
        unwrap_dek(ring, blob, "cases", "r1")
    # A fresh load from disk agrees: the KEK is gone from keyring.bin.
    with pytest.raises(KeyDestroyedError):
        unwrap_dek(Keyring.load(keys_dir), blob, "cases", "r1")
    with pytest.raises(KeyDestroyedError):
        wrap_dek(ring, dek, "cases", "r2", kek_id)


def test_unknown_kek_id_is_key_destroyed(ring: Keyring) -> None:
    with pytest.raises(KeyDestroyedError):
        wrap_dek(ring, new_dek(), "cases", "r1", "2019-q1.1")
