"""Creating the keys directory for `relay init` (0700, files 0600), or keeping it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from keys import MissingKeyError
from keys.layout import KCV_FILE, KDF_FILE, KEYRING_FILE, ROOT_KEY_FILE
from relay.config import OrgConfig
from relay.keysource import create_keyring

MIN_PASSPHRASE = 12
Ask = Callable[[str], str]


def has_keys(cfg: OrgConfig) -> bool:
    directory = cfg.keys.directory
    return any((directory / name).exists() or (directory / name).is_symlink()
               for name in (ROOT_KEY_FILE, KDF_FILE, KCV_FILE, KEYRING_FILE))


def create(cfg: OrgConfig, now: datetime, passphrase: str | None = None) -> None:
    """Create the keyring as `keys.source` says. `passphrase` is required for the
    'passphrase' source (already asked twice and checked by the caller)."""
    def ask(_prompt: str) -> str:
        if passphrase is None:
            raise MissingKeyError("keys.source is 'passphrase' but no passphrase was given")
        return passphrase

    create_keyring(cfg, now, ask)


def passphrase_problem(first: str, second: str) -> str | None:
    if len(first) < MIN_PASSPHRASE:
        return f"the passphrase must be at least {MIN_PASSPHRASE} characters long"
    if first != second:
        return "the two passphrases differ"
    return None
