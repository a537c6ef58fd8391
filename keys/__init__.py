"""Key management and sealing: root secret, HKDF subkeys, epoch KEKs, envelopes, blind index.

This package imports nothing from `relay` or `handlers`. See SECURITY.md §2.
"""

from keys.blind_index import (
    blind_index,
    canonical,
    canonical_aci,
    canonical_e164,
    canonical_name,
    dedupe_key,
)
from keys.envelope import (
    FIELD_VERSION,
    MAX_PLAINTEXT,
    kek_id_of,
    new_dek,
    open_,
    rewrap_dek,
    seal,
    unwrap_dek,
    wrap_dek,
)
from keys.epochs import EpochPeriod, epoch_label, parse_kek_id
from keys.errors import (
    Argon2UnavailableError,
    EpochMissingError,
    InsecurePermissionsError,
    InvalidIdentifierError,
    KeyDestroyedError,
    KeyringCorruptError,
    KeyringError,
    KeysExistError,
    MissingKeyError,
    PlaintextTooLargeError,
    SealError,
    TamperedError,
    UnknownEnvelopeError,
    UnknownPurposeError,
    WrongKeyError,
)
from keys.kdf import PRODUCTION_KDF, PURPOSES, KdfParams, Purpose
from keys.keyring import KekStatus, Keyring, init_keys_dir
from keys.root import (
    RootSecret,
    load_root_from_credentials,
    load_root_from_dir,
    load_root_from_passphrase,
)

__all__ = [
    "FIELD_VERSION",
    "MAX_PLAINTEXT",
    "PRODUCTION_KDF",
    "PURPOSES",
    "Argon2UnavailableError",
    "EpochMissingError",
    "EpochPeriod",
    "InsecurePermissionsError",
    "InvalidIdentifierError",
    "KdfParams",
    "KekStatus",
    "KeyDestroyedError",
    "Keyring",
    "KeyringCorruptError",
    "KeyringError",
    "KeysExistError",
    "MissingKeyError",
    "PlaintextTooLargeError",
    "Purpose",
    "RootSecret",
    "SealError",
    "TamperedError",
    "UnknownEnvelopeError",
    "UnknownPurposeError",
    "WrongKeyError",
    "blind_index",
    "canonical",
    "canonical_aci",
    "canonical_e164",
    "canonical_name",
    "dedupe_key",
    "epoch_label",
    "init_keys_dir",
    "kek_id_of",
    "load_root_from_credentials",
    "load_root_from_dir",
    "load_root_from_passphrase",
    "new_dek",
    "open_",
    "parse_kek_id",
    "rewrap_dek",
    "seal",
    "unwrap_dek",
    "wrap_dek",
]
