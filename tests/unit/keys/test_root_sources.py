"""Root secret sources: key file, systemd credentials directory, Argon2id passphrase."""

from __future__ import annotations

import base64
import json
import os
import sys
from datetime import datetime
from pathlib import Path

import pytest

from keys import (
    Argon2UnavailableError,
    InsecurePermissionsError,
    KdfParams,
    Keyring,
    KeyringCorruptError,
    MissingKeyError,
    RootSecret,
    WrongKeyError,
    init_keys_dir,
    load_root_from_credentials,
    load_root_from_dir,
    load_root_from_passphrase,
    new_dek,
    unwrap_dek,
    wrap_dek,
)
from keys.kdf import PRODUCTION_KDF, argon2id_root
from tests.unit.keys.conftest import LIGHT_KDF


def test_production_params_match_the_design() -> None:
    assert KdfParams(memory_kib=256 * 1024, iterations=2, lanes=4) == PRODUCTION_KDF
    with pytest.raises(ValueError, match="memory_kib"):
        KdfParams(memory_kib=8, iterations=1, lanes=4)


def test_key_file_source(ring: Keyring, keys_dir: Path) -> None:
    root = load_root_from_dir(keys_dir)
    assert root.reveal() == (keys_dir / "root.key").read_bytes()
    assert "redacted" in repr(root)


def test_credentials_source(keys_dir: Path, tmp_path: Path, now: datetime) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o500)
    secret = os.urandom(32)
    cred = creds / "relay-root"
    cred.write_bytes(secret)
    cred.chmod(0o400)

    root = load_root_from_credentials(creds)
    init_keys_dir(keys_dir, now, "quarter", root=root)
    assert not (keys_dir / "root.key").exists()
    ring = Keyring.load(keys_dir, load_root_from_credentials(creds))
    assert ring.active_kek_id(now) == "2026-q4.1"

    with pytest.raises(MissingKeyError, match=r"root\.key"):
        Keyring.load(keys_dir)  # no root.key in this directory, and no fallback
    with pytest.raises(MissingKeyError, match=r"LoadCredentialEncrypted=other"):
        load_root_from_credentials(creds, "other")
    cred.chmod(0o440)  # systemd's ACL mask for a non-root service user
    assert load_root_from_credentials(creds).reveal() == secret
    cred.chmod(0o444)
    with pytest.raises(InsecurePermissionsError, match="accessible by others"):
        load_root_from_credentials(creds)


def test_passphrase_source(keys_dir: Path, now: datetime) -> None:
    ring = init_keys_dir(keys_dir, now, "year", passphrase="correct horse", kdf_params=LIGHT_KDF)
    assert not (keys_dir / "root.key").exists()
    kdf = json.loads((keys_dir / "kdf.json").read_text())
    assert kdf["algorithm"] == "argon2id"
    assert (kdf["memory_kib"], kdf["iterations"], kdf["lanes"]) == (64, 1, 1)
    assert len(base64.b64decode(kdf["salt"])) == 16
    assert "correct horse" not in (keys_dir / "kdf.json").read_text()

    dek = new_dek()
    blob = wrap_dek(ring, dek, "cases", "r1", ring.active_kek_id(now))
    again = Keyring.load(keys_dir, load_root_from_passphrase(keys_dir, b"correct horse"))
    assert unwrap_dek(again, blob, "cases", "r1") == dek
    assert again.active_kek_id(now) == "2026.1"


def test_wrong_passphrase_fails_key_check(keys_dir: Path, now: datetime) -> None:
    init_keys_dir(keys_dir, now, "quarter", passphrase=b"right", kdf_params=LIGHT_KDF)
    with pytest.raises(WrongKeyError, match="passphrase"):
        Keyring.load(keys_dir, load_root_from_passphrase(keys_dir, b"wrong"))
    with pytest.raises(MissingKeyError, match="passphrase"):
        Keyring.load(keys_dir)  # key-file source on a passphrase directory
    with pytest.raises(ValueError, match="empty"):
        load_root_from_passphrase(keys_dir, b"")


def test_passphrase_and_root_are_exclusive(keys_dir: Path, now: datetime) -> None:
    with pytest.raises(ValueError, match="not both"):
        init_keys_dir(keys_dir, now, "quarter", root=RootSecret.generate(), passphrase=b"x")


def test_malformed_kdf_json(keys_dir: Path, now: datetime) -> None:
    init_keys_dir(keys_dir, now, "quarter", passphrase=b"pw", kdf_params=LIGHT_KDF)
    path = keys_dir / "kdf.json"
    body = json.loads(path.read_text())
    path.write_text(json.dumps({**body, "algorithm": "scrypt"}))
    with pytest.raises(KeyringCorruptError, match="algorithm"):
        load_root_from_passphrase(keys_dir, b"pw")
    path.write_text("{")
    with pytest.raises(KeyringCorruptError, match="malformed"):
        load_root_from_passphrase(keys_dir, b"pw")


def test_argon2id_known_answer() -> None:
    # Same inputs, same output; different salt or passphrase, different output.
    salt = bytes(16)
    a = argon2id_root(b"pw", salt, LIGHT_KDF)
    assert a == argon2id_root(b"pw", salt, LIGHT_KDF)
    assert a != argon2id_root(b"pw", bytes([1]) * 16, LIGHT_KDF)
    assert a != argon2id_root(b"pW", salt, LIGHT_KDF)
    assert len(a) == 32


def test_missing_argon2_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.kdf.argon2", None)
    with pytest.raises(Argon2UnavailableError, match=r"cryptography>=45"):
        argon2id_root(b"pw", bytes(16), LIGHT_KDF)


def test_root_secret_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        RootSecret(b"short")
