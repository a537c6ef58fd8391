"""The keys directory: creation, modes, key-check value, epochs, rotation, shredding, leaks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pickle
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys import (
    PURPOSES,
    EpochMissingError,
    InsecurePermissionsError,
    KeyDestroyedError,
    Keyring,
    KeyringCorruptError,
    KeyringError,
    KeysExistError,
    MissingKeyError,
    RootSecret,
    UnknownPurposeError,
    WrongKeyError,
    init_keys_dir,
    new_dek,
    unwrap_dek,
    wrap_dek,
)

KAT_ROOT = bytes(range(0x80, 0xA0))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- init and load --------------------------------------------------------------------


def test_init_creates_private_files(ring: Keyring, keys_dir: Path, now: datetime) -> None:
    assert _mode(keys_dir) == 0o700
    for name in ("root.key", "keyring.bin", "kcv.bin"):
        assert _mode(keys_dir / name) == 0o600, name
    assert (keys_dir / "root.key").stat().st_size == 32
    assert not (keys_dir / "kdf.json").exists()
    assert ring.active_kek_id(now) == "2026-q4.1"
    assert not [p for p in keys_dir.iterdir() if p.name.endswith(".tmp")]


def test_init_refuses_to_overwrite(ring: Keyring, keys_dir: Path, now: datetime) -> None:
    before = (keys_dir / "root.key").read_bytes()
    with pytest.raises(KeysExistError, match=r"root\.key"):
        init_keys_dir(keys_dir, now, "quarter")
    assert (keys_dir / "root.key").read_bytes() == before


def test_init_tightens_an_empty_existing_dir(keys_dir: Path, now: datetime) -> None:
    keys_dir.mkdir(mode=0o755)
    keys_dir.chmod(0o755)
    init_keys_dir(keys_dir, now, "month")
    assert _mode(keys_dir) == 0o700


def test_load_round_trip(ring: Keyring, keys_dir: Path, now: datetime) -> None:
    dek = new_dek()
    blob = wrap_dek(ring, dek, "cases", "r1", ring.active_kek_id(now))
    loaded = Keyring.load(keys_dir)
    assert loaded.period == "quarter"
    assert unwrap_dek(loaded, blob, "cases", "r1") == dek
    for purpose in PURPOSES:
        assert loaded.subkey(purpose) == ring.subkey(purpose)


def test_init_requires_aware_time_and_known_period(keys_dir: Path, now: datetime) -> None:
    with pytest.raises(ValueError, match="aware"):
        init_keys_dir(keys_dir, now.replace(tzinfo=None), "quarter")
    with pytest.raises(ValueError, match="period"):
        init_keys_dir(keys_dir, now, "week")
    assert not keys_dir.exists()


# -- missing files, wrong key, wrong modes --------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(MissingKeyError, match="relay keys init"):
        Keyring.load(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["root.key", "kcv.bin", "keyring.bin"])
def test_missing_file_names_path_and_fix(ring: Keyring, keys_dir: Path, name: str) -> None:
    (keys_dir / name).unlink()
    with pytest.raises(MissingKeyError) as err:
        Keyring.load(keys_dir)
    assert str(keys_dir / name) in str(err.value)
    assert "relay keys init" in str(err.value)


def test_wrong_root_fails_key_check(ring: Keyring, keys_dir: Path) -> None:
    (keys_dir / "root.key").write_bytes(os.urandom(32))
    with pytest.raises(WrongKeyError, match="key-check value") as err:
        Keyring.load(keys_dir)
    assert "Fix" in str(err.value)
    with pytest.raises(WrongKeyError):
        Keyring.load(keys_dir, RootSecret.generate())


def test_root_key_of_wrong_length(ring: Keyring, keys_dir: Path) -> None:
    (keys_dir / "root.key").write_bytes(os.urandom(31))
    with pytest.raises(KeyringCorruptError, match="32"):
        Keyring.load(keys_dir)


def test_world_readable_root_key_refused(ring: Keyring, keys_dir: Path) -> None:
    path = keys_dir / "root.key"
    path.chmod(0o644)
    with pytest.raises(InsecurePermissionsError) as err:
        Keyring.load(keys_dir)
    message = str(err.value)
    assert str(path) in message
    assert "0644" in message
    assert f"chmod 600 {path}" in message


def test_group_readable_dir_refused(ring: Keyring, keys_dir: Path) -> None:
    keys_dir.chmod(0o750)
    with pytest.raises(InsecurePermissionsError) as err:
        Keyring.load(keys_dir)
    assert f"chmod 700 {keys_dir}" in str(err.value)
    assert "0750" in str(err.value)


def test_group_readable_keyring_refused(ring: Keyring, keys_dir: Path) -> None:
    (keys_dir / "keyring.bin").chmod(0o640)
    with pytest.raises(InsecurePermissionsError, match="chmod 600"):
        Keyring.load(keys_dir)


def test_symlinked_root_key_refused(ring: Keyring, keys_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.key"
    (keys_dir / "root.key").rename(target)
    (keys_dir / "root.key").symlink_to(target)
    with pytest.raises(MissingKeyError, match="symlink"):
        Keyring.load(keys_dir)


def test_fifo_root_key_refused_without_hanging(ring: Keyring, keys_dir: Path) -> None:
    (keys_dir / "root.key").unlink()
    os.mkfifo(keys_dir / "root.key", 0o600)
    with pytest.raises(MissingKeyError, match="regular file"):
        Keyring.load(keys_dir)


def test_keyring_file_without_root_is_useless(ring: Keyring, keys_dir: Path) -> None:
    blob = (keys_dir / "keyring.bin").read_bytes()
    assert blob[:2] == b"R1"
    assert b"2026-q4" not in blob  # even the KEK ids are sealed
    with pytest.raises(InvalidTag):
        AESGCM(os.urandom(32)).decrypt(blob[2:14], blob[14:], b"relay/v1|keyring")
    # Under the root secret itself (rather than its keyring-wrap subkey) it stays shut too.
    with pytest.raises(InvalidTag):
        AESGCM((keys_dir / "root.key").read_bytes()).decrypt(
            blob[2:14], blob[14:], b"relay/v1|keyring"
        )


def test_keyring_file_from_another_install_fails(
    keys_dir: Path, tmp_path: Path, now: datetime
) -> None:
    init_keys_dir(keys_dir, now, "quarter")
    other = tmp_path / "other"
    init_keys_dir(other, now, "quarter")
    (keys_dir / "keyring.bin").write_bytes((other / "keyring.bin").read_bytes())
    with pytest.raises(KeyringCorruptError, match="restore"):
        Keyring.load(keys_dir)


# -- formats, checked independently ---------------------------------------------------


def _hkdf_sha256(root: bytes, info: bytes) -> bytes:
    """RFC 5869 with salt=None and L=32, written out with hmac (independent of pyca)."""
    prk = hmac.digest(bytes(32), root, hashlib.sha256)
    return hmac.digest(prk, info + b"\x01", hashlib.sha256)


def test_subkeys_known_answer(keys_dir: Path, now: datetime) -> None:
    ring = init_keys_dir(keys_dir, now, "quarter", root=RootSecret(KAT_ROOT))
    assert ring.subkey("keyring-wrap").hex() == (
        "bd6bba3a96361b619d96dcdbb6b6d962699feb98eb0ba1a013031e94d3d6ef4e"
    )
    assert ring.subkey("kcv").hex() == (
        "21b67ea5ef89ce6d5a428dddf1c1e5cb2fa912cc7aa6febd2cfe320437163c3c"
    )
    for purpose in PURPOSES:
        assert ring.subkey(purpose) == _hkdf_sha256(KAT_ROOT, b"relay/v1/" + purpose.encode())
    assert len({ring.subkey(p) for p in PURPOSES}) == len(PURPOSES)
    # With root= the secret is not written to the directory (credentials source).
    assert not (keys_dir / "root.key").exists()
    assert Keyring.load(keys_dir, RootSecret(KAT_ROOT)).subkey("audit") == ring.subkey("audit")


def test_unknown_purpose(ring: Keyring) -> None:
    with pytest.raises(UnknownPurposeError, match="known purposes"):
        ring.subkey("bidx/email")


def test_kcv_and_keyring_formats(ring: Keyring, keys_dir: Path, now: datetime) -> None:
    kcv = (keys_dir / "kcv.bin").read_bytes()
    assert AESGCM(ring.subkey("kcv")).decrypt(kcv[:12], kcv[12:], b"relay/v1|kcv") == (
        b"relay key check"
    )
    blob = (keys_dir / "keyring.bin").read_bytes()
    body = json.loads(
        AESGCM(ring.subkey("keyring-wrap")).decrypt(blob[2:14], blob[14:], b"relay/v1|keyring")
    )
    assert body["format"] == 1
    assert body["period"] == "quarter"
    assert body["tombstones"] == []
    [entry] = body["keks"]
    assert entry["kek_id"] == "2026-q4.1"
    assert datetime.fromisoformat(entry["created_at"]) == now
    # The KEK found by hand wraps exactly like the keyring's.
    kek = base64.b64decode(entry["key"])
    dek = new_dek()
    blob = wrap_dek(ring, dek, "cases", "r1", "2026-q4.1")
    ad = b"relay/v1|dek|cases|r1|k2026-q4.1"
    assert AESGCM(kek).decrypt(blob[12:24], blob[24:], ad) == dek


# -- epochs, rotation, shredding ------------------------------------------------------


def test_new_epoch_needs_explicit_ensure(ring: Keyring, keys_dir: Path, now: datetime) -> None:
    next_quarter = datetime(2027, 1, 2, tzinfo=UTC)
    with pytest.raises(EpochMissingError, match="2027-q1"):
        ring.active_kek_id(next_quarter)
    assert ring.ensure_epoch(next_quarter) == "2027-q1.1"
    assert ring.ensure_epoch(next_quarter) == "2027-q1.1"  # idempotent
    assert ring.active_kek_id(next_quarter) == "2027-q1.1"
    assert ring.active_kek_id(now) == "2026-q4.1"
    assert Keyring.load(keys_dir).active_kek_id(next_quarter) == "2027-q1.1"  # persisted


def test_rotate_keeps_old_generations(ring: Keyring, now: datetime) -> None:
    assert ring.rotate(now) == "2026-q4.2"
    assert ring.rotate(now + timedelta(days=1)) == "2026-q4.3"
    assert ring.active_kek_id(now) == "2026-q4.3"
    rows = [(kek_id, gen, active) for kek_id, _, gen, _, active in ring.status()]
    assert rows == [("2026-q4.1", 1, False), ("2026-q4.2", 2, False), ("2026-q4.3", 3, True)]


def test_retire_rules(ring: Keyring, now: datetime) -> None:
    with pytest.raises(KeyringError, match="newest generation"):
        ring.retire("2026-q4.1")
    ring.rotate(now)
    ring.retire("2026-q4.1")
    ring.retire("2026-q4.1")  # idempotent
    assert [s.kek_id for s in ring.status()] == ["2026-q4.2"]
    with pytest.raises(KeyringError, match="not in the keyring"):
        ring.retire("2025-q1.1")


def test_destroy_epoch_is_durable_and_generations_never_reused(
    ring: Keyring, keys_dir: Path, now: datetime
) -> None:
    ring.rotate(now)
    assert ring.destroy_epoch("2026-q4") == ["2026-q4.1", "2026-q4.2"]
    assert ring.destroy_epoch("2026-q4") == []
    assert ring.status() == []
    loaded = Keyring.load(keys_dir)
    assert loaded.status() == []
    with pytest.raises(KeyDestroyedError):
        loaded.kek_cipher("2026-q4.2")
    # Re-creating the epoch continues the numbering: an old blob never meets a new key.
    assert loaded.ensure_epoch(now) == "2026-q4.3"
    with pytest.raises(ValueError, match="epoch label"):
        ring.destroy_epoch("2026-Q4")


def test_two_instances_do_not_lose_each_others_keks(
    ring: Keyring, keys_dir: Path, now: datetime
) -> None:
    other = Keyring.load(keys_dir)  # e.g. the CLI while the service runs
    rotated = other.rotate(now)
    blob = wrap_dek(other, new_dek(), "cases", "r1", rotated)
    # The stale instance writes next; the rotation must survive it.
    ring.ensure_epoch(datetime(2027, 1, 2, tzinfo=UTC))
    ids = [s.kek_id for s in Keyring.load(keys_dir).status()]
    assert ids == ["2026-q4.1", "2026-q4.2", "2027-q1.1"]
    # An instance that has not seen the new KEK picks it up on demand.
    stale = Keyring.load(keys_dir)
    other.rotate(now)
    assert len(unwrap_dek(stale, blob, "cases", "r1")) == 32
    assert stale.kek_cipher("2026-q4.3") is not None


def test_corrupt_keyring_body(ring: Keyring, keys_dir: Path) -> None:
    path = keys_dir / "keyring.bin"
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(KeyringCorruptError):
        Keyring.load(keys_dir)
    path.write_bytes(b"R1")
    with pytest.raises(KeyringCorruptError, match="truncated"):
        Keyring.load(keys_dir)


# -- no key material in reprs, status or errors -----------------------------------------


def _encodings(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode(),
        repr(secret),
    ]


def _all_secrets(ring: Keyring, keys_dir: Path) -> list[bytes]:
    blob = (keys_dir / "keyring.bin").read_bytes()
    body = json.loads(
        AESGCM(ring.subkey("keyring-wrap")).decrypt(blob[2:14], blob[14:], b"relay/v1|keyring")
    )
    keks = [base64.b64decode(k["key"]) for k in body["keks"]]
    root = (keys_dir / "root.key").read_bytes()
    return [root, *keks, *(ring.subkey(p) for p in PURPOSES)]


def test_no_key_bytes_in_repr_or_status(ring: Keyring, keys_dir: Path, now: datetime) -> None:
    ring.rotate(now)
    texts = [
        repr(ring),
        str(ring),
        repr(ring.status()),
        str(ring.status()),
        repr(RootSecret((keys_dir / "root.key").read_bytes())),
        repr(ring._state),
    ]
    secrets = _all_secrets(ring, keys_dir)
    assert len(secrets) == 1 + 2 + len(PURPOSES)
    for text in texts:
        for secret in secrets:
            for form in _encodings(secret):
                assert form not in text
    assert "redacted" in repr(ring)
    assert "2026-q4.2" in repr(ring.status())


def test_key_objects_refuse_pickling(ring: Keyring) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(ring)
    with pytest.raises(TypeError):
        pickle.dumps(RootSecret.generate())


def test_errors_carry_no_key_bytes(ring: Keyring, keys_dir: Path) -> None:
    secrets = _all_secrets(ring, keys_dir)
    (keys_dir / "root.key").write_bytes(os.urandom(32))
    with pytest.raises(WrongKeyError) as err:
        Keyring.load(keys_dir)
    text = repr(err.value) + str(err.value) + repr(err.value.__cause__)
    for secret in secrets:
        for form in _encodings(secret):
            assert form not in text
    assert err.value.__cause__ is None
    assert err.value.__suppress_context__
