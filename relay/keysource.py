"""Where the root secret comes from, as the config's `keys.source` says.

Called only from the command line (the composition root): it is the one place that reads
`$CREDENTIALS_DIRECTORY` (set by systemd's LoadCredential=) or asks for a passphrase.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from keys import (
    Keyring,
    MissingKeyError,
    init_keys_dir,
    load_root_from_credentials,
    load_root_from_passphrase,
)
from relay.config import OrgConfig

Ask = Callable[[str], str]


def _credentials_dir() -> Path:
    value = os.environ.get("CREDENTIALS_DIRECTORY")
    if not value:
        raise MissingKeyError(
            "keys.source is 'credentials' but $CREDENTIALS_DIRECTORY is not set; run relay "
            "under systemd with LoadCredential=relay-root:<file>, or use source = 'directory'"
        )
    return Path(value)


def ask_passphrase(prompt: str) -> str:
    """getpass on a terminal; one line of standard input otherwise (e.g. a pipe)."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


def load_keyring(cfg: OrgConfig, ask: Ask = ask_passphrase) -> Keyring:
    directory = cfg.keys.directory
    if cfg.keys.source == "credentials":
        return Keyring.load(directory, root=load_root_from_credentials(_credentials_dir()))
    if cfg.keys.source == "passphrase":
        secret = ask("relay passphrase: ")
        return Keyring.load(directory, root=load_root_from_passphrase(directory, secret))
    return Keyring.load(directory)


def create_keyring(cfg: OrgConfig, now: datetime, ask: Ask = ask_passphrase) -> Keyring:
    directory = cfg.keys.directory
    period = cfg.retention.epoch
    if cfg.keys.source == "credentials":
        root = load_root_from_credentials(_credentials_dir())
        return init_keys_dir(directory, now, period, root=root)
    if cfg.keys.source == "passphrase":
        first = ask("new relay passphrase: ")
        if len(first) < 12:
            raise MissingKeyError("the passphrase must be at least 12 characters long")
        if ask("repeat the passphrase: ") != first:
            raise MissingKeyError("the two passphrases differ; nothing was created")
        return init_keys_dir(directory, now, period, passphrase=first)
    return init_keys_dir(directory, now, period)
