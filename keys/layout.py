"""File names inside the keys directory and the fix hints errors point to.

| file          | secret | content                                                                 |
|---------------|--------|-------------------------------------------------------------------------|
| `root.key`    | yes    | 32 raw bytes: the root secret (key-file source only), mode 0600         |
| `kdf.json`    | no     | Argon2id salt and parameters (passphrase source only)                   |
| `kcv.bin`     | no     | key-check value: nonce(12) ‖ AESGCM(K_kcv) of b"relay key check"        |
| `keyring.bin` | sealed | b"R1" ‖ nonce(12) ‖ AESGCM(K_keyring-wrap) of the epoch KEKs as JSON    |
| `keyring.lock`| no     | empty; `flock`ed while keyring.bin is rewritten                         |

The directory itself must be mode 0700.
"""

from __future__ import annotations

ROOT_KEY_FILE = "root.key"
KDF_FILE = "kdf.json"
KCV_FILE = "kcv.bin"
KEYRING_FILE = "keyring.bin"
LOCK_FILE = "keyring.lock"

CREDENTIAL_NAME = "relay-root"
"""Default systemd credential name (`LoadCredentialEncrypted=relay-root:...`)."""

INIT_FIX = "run `relay keys init` to create a new keys directory, or restore it from backup"
