"""Key derivation: HKDF subkeys from the root secret, Argon2id root from a passphrase.

Subkeys: `HKDF-SHA256(root, salt=None, info=b"relay/v1/" + purpose, length=32)`.
One purpose, one key; the purposes are a fixed list and nothing else can be derived.

Passphrase: `Argon2id(salt, length=32, iterations, lanes, memory_cost).derive(passphrase)`.
The salt and parameters are not secret and live in `kdf.json` beside the keyring.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from typing import Final, Literal, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keys.errors import (
    Argon2UnavailableError,
    KeyringCorruptError,
    UnknownPurposeError,
)

ROOT_LEN: Final = 32
SUBKEY_LEN: Final = 32
SALT_LEN: Final = 16
INFO_PREFIX: Final = b"relay/v1/"

Purpose = Literal[
    "keyring-wrap",
    "bidx/aci",
    "bidx/e164",
    "bidx/name",
    "bidx/subject",
    "dedupe",
    "match",
    "kcv",
    "audit",
]
PURPOSES: Final[tuple[Purpose, ...]] = get_args(Purpose)

ARGON2_MISSING = (
    "Argon2id is not available in the installed cryptography build; the passphrase source "
    "needs cryptography>=45 built against OpenSSL>=3.2 (the PyPI wheels are). "
    "Fix: pip install 'cryptography>=45', or use the key-file or credentials source"
)

_KDF_LOCK = threading.Lock()
"""Argon2 runs one at a time: each call may take hundreds of MiB."""


def check_purpose(purpose: str) -> Purpose:
    """Return `purpose` as a `Purpose`, or raise `UnknownPurposeError`."""
    for known in PURPOSES:
        if purpose == known:
            return known
    raise UnknownPurposeError(
        f"unknown subkey purpose {purpose!r}; known purposes: {', '.join(PURPOSES)}"
    )


def derive_subkey(root: bytes, purpose: str) -> bytes:
    """HKDF-SHA256 subkey for one purpose of the fixed list."""
    checked = check_purpose(purpose)
    if len(root) != ROOT_LEN:
        raise ValueError(f"root secret must be {ROOT_LEN} bytes")
    return HKDF(
        algorithm=hashes.SHA256(),
        length=SUBKEY_LEN,
        salt=None,
        info=INFO_PREFIX + checked.encode("ascii"),
    ).derive(root)


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters. `memory_kib` is in KiB."""

    memory_kib: int = 256 * 1024
    iterations: int = 2
    lanes: int = 4

    def __post_init__(self) -> None:
        if self.lanes < 1 or self.iterations < 1:
            raise ValueError("Argon2id needs lanes >= 1 and iterations >= 1")
        if self.memory_kib < 8 * self.lanes:
            raise ValueError("Argon2id needs memory_kib >= 8 * lanes")


PRODUCTION_KDF: Final = KdfParams()
"""256 MiB, t=2, p=4: about 0.7 s on two cores, run once per start."""


@dataclass(frozen=True, slots=True)
class KdfFile:
    """Contents of `kdf.json`: not secret."""

    salt: bytes
    params: KdfParams

    def to_json(self) -> bytes:
        body = {
            "format": 1,
            "algorithm": "argon2id",
            "length": ROOT_LEN,
            "salt": base64.b64encode(self.salt).decode("ascii"),
            "memory_kib": self.params.memory_kib,
            "iterations": self.params.iterations,
            "lanes": self.params.lanes,
        }
        return json.dumps(body, indent=2, sort_keys=True).encode("ascii") + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> KdfFile:
        try:
            body = json.loads(raw)
            header = (body["format"], body["algorithm"], body["length"])
            salt = base64.b64decode(body["salt"], validate=True)
            params = KdfParams(
                memory_kib=int(body["memory_kib"]),
                iterations=int(body["iterations"]),
                lanes=int(body["lanes"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyringCorruptError(f"kdf.json is malformed ({type(exc).__name__})") from None
        if header != (1, "argon2id", ROOT_LEN):
            raise KeyringCorruptError("kdf.json has an unsupported format or algorithm")
        if len(salt) < SALT_LEN:
            raise KeyringCorruptError(f"kdf.json salt must be at least {SALT_LEN} bytes")
        return cls(salt=salt, params=params)


def argon2id_root(passphrase: bytes, salt: bytes, params: KdfParams) -> bytes:
    """Derive the 32-byte root secret from a passphrase (serialised across threads)."""
    if not passphrase:
        raise ValueError("the passphrase is empty")
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
    except ImportError:
        raise Argon2UnavailableError(ARGON2_MISSING) from None
    with _KDF_LOCK:
        try:
            return Argon2id(
                salt=salt,
                length=ROOT_LEN,
                iterations=params.iterations,
                lanes=params.lanes,
                memory_cost=params.memory_kib,
            ).derive(passphrase)
        except UnsupportedAlgorithm:  # pragma: no cover - depends on the installed build
            raise Argon2UnavailableError(ARGON2_MISSING) from None
