"""Errors raised by the keys package.

Messages name files, modes, ids and fixes. They never carry key bytes, plaintext,
identifiers being indexed, or passphrases.
"""

from __future__ import annotations


class KeyringError(Exception):
    """Base class for every error the keys package raises."""


class MissingKeyError(KeyringError):
    """A key file the keyring needs is absent."""


class InsecurePermissionsError(KeyringError):
    """A key file or the keys directory is readable or writable by group or others."""


class WrongKeyError(KeyringError):
    """The root secret does not match this keys directory (key-check value failed)."""


class KeysExistError(KeyringError):
    """`init_keys_dir` refused to overwrite existing key material."""


class KeyringCorruptError(KeyringError):
    """keyring.bin, kcv.bin or kdf.json is malformed or failed authentication."""


class KeyDestroyedError(KeyringError):
    """The KEK a blob names was destroyed (crypto-shredded), retired or never existed."""


class EpochMissingError(KeyringError):
    """No KEK exists yet for the current retention epoch; call `ensure_epoch` first."""


class Argon2UnavailableError(KeyringError):
    """The installed cryptography build cannot run Argon2id."""


class UnknownPurposeError(KeyringError, ValueError):
    """A subkey was requested for a purpose that is not in the fixed list."""


class InvalidIdentifierError(KeyringError, ValueError):
    """A value given to the blind index is not in its kind's accepted form."""


class SealError(KeyringError):
    """Base class for failures to seal or open an envelope."""


class UnknownEnvelopeError(SealError):
    """The blob does not start with a known envelope prefix."""


class TamperedError(SealError):
    """Authentication failed: wrong key, wrong row/column binding, or modified bytes."""


class PlaintextTooLargeError(SealError):
    """The plaintext exceeds the envelope size cap."""
