"""The 32-byte root secret and its three sources.

Sources, best first (SECURITY.md §2.1):
1. a systemd credential: `load_root_from_credentials(credentials_dir)`, where the caller
   passes `$CREDENTIALS_DIRECTORY` explicitly (library code never reads the environment);
2. an operator passphrase through Argon2id: `load_root_from_passphrase(keys_dir, pw)`,
   with salt and parameters in the keys directory's `kdf.json`;
3. a key file: `load_root_from_dir(keys_dir)` reads `root.key` (mode 0600, dir 0700).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from keys.errors import KeyringCorruptError, MissingKeyError
from keys.files import OTHER, check_private_dir, read_private_file, read_public_file
from keys.kdf import ROOT_LEN, KdfFile, argon2id_root
from keys.layout import CREDENTIAL_NAME, INIT_FIX, KDF_FILE, ROOT_KEY_FILE


class RootSecret:
    """Holds the root secret; never shows it in repr/str and refuses to be pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes) or len(value) != ROOT_LEN:
            raise ValueError(f"a root secret is exactly {ROOT_LEN} bytes")
        self._value = value

    @classmethod
    def generate(cls) -> RootSecret:
        return cls(os.urandom(ROOT_LEN))

    def reveal(self) -> bytes:
        """The raw bytes, for key derivation and for writing `root.key` only."""
        return self._value

    def __repr__(self) -> str:
        return "RootSecret(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a RootSecret cannot be pickled or copied")


def _exact_length(raw: bytes, path: Path, what: str) -> RootSecret:
    if len(raw) != ROOT_LEN:
        raise KeyringCorruptError(
            f"{what} {path} must hold exactly {ROOT_LEN} raw bytes, found {len(raw)}"
        )
    return RootSecret(raw)


def load_root_from_dir(keys_dir: Path) -> RootSecret:
    """Read `root.key` from the keys directory, refusing modes wider than 0600/0700."""
    check_private_dir(keys_dir)
    path = keys_dir / ROOT_KEY_FILE
    if not path.exists() and (keys_dir / KDF_FILE).exists():
        raise MissingKeyError(
            f"{path} is missing, but {keys_dir / KDF_FILE} exists: this keys directory "
            'uses a passphrase. Fix: set keys.source = "passphrase" and enter it'
        )
    return _exact_length(read_private_file(path, what="root key", fix=INIT_FIX), path, "root key")


def load_root_from_credentials(credentials_dir: Path, name: str = CREDENTIAL_NAME) -> RootSecret:
    """Read the root secret from a systemd credentials directory.

    `credentials_dir` is the value of `$CREDENTIALS_DIRECTORY`, read by the composition
    root and passed in.
    """
    path = credentials_dir / name
    fix = (
        f"add `LoadCredentialEncrypted={name}:<file>` to the relay unit "
        "(create <file> with `systemd-creds encrypt`)"
    )
    # systemd grants a non-root service user access through an ACL, which shows up as
    # group bits (the ACL mask, e.g. 0440); only "other" access means a broken setup.
    raw = read_private_file(path, what="root credential", fix=fix, forbidden=OTHER)
    return _exact_length(raw, path, "root credential")


def load_root_from_passphrase(keys_dir: Path, passphrase: bytes | str) -> RootSecret:
    """Derive the root secret with Argon2id from the salt and params in `kdf.json`."""
    check_private_dir(keys_dir)
    kdf = KdfFile.from_json(
        read_public_file(keys_dir / KDF_FILE, what="KDF parameters", fix=INIT_FIX)
    )
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    return RootSecret(argon2id_root(secret, kdf.salt, kdf.params))
