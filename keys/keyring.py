"""The keyring: root-derived subkeys plus random per-epoch KEKs, kept in the keys directory.

Files (see `keys.layout`):
- `kcv.bin` = nonce(12) ‖ AESGCM(K_kcv).encrypt(nonce, b"relay key check", b"relay/v1|kcv");
  checked first on load, so a wrong root secret fails with `WrongKeyError`.
- `keyring.bin` = b"R1" ‖ nonce(12) ‖ AESGCM(K_keyring-wrap).encrypt(nonce, body,
  b"relay/v1|keyring"), where body is UTF-8 JSON:
  `{"format": 1, "period": "quarter",
    "keks": [{"kek_id": "2026-q4.1", "created_at": "<ISO 8601 UTC>", "key": "<base64>"}],
    "tombstones": ["2026-q3.1", ...]}`.
  Tombstones are ids of retired or destroyed KEKs (no key bytes), so generations are never
  reused and a blob naming one fails as `KeyDestroyedError`.

Every change to keyring.bin runs under an exclusive `flock` on `keyring.lock`, re-reads the
file, applies the change and writes it back atomically (temp, fsync, rename, fsync dir),
so a CLI rotation and a running service cannot lose each other's KEKs.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, NamedTuple, NoReturn, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys.epochs import (
    EpochPeriod,
    epoch_label,
    make_kek_id,
    parse_kek_id,
    period_of,
)
from keys.errors import (
    EpochMissingError,
    KeyDestroyedError,
    KeyringCorruptError,
    KeyringError,
    KeysExistError,
    WrongKeyError,
)
from keys.files import (
    check_private_dir,
    make_private_dir,
    read_private_file,
    read_public_file,
    write_atomic,
)
from keys.kdf import (
    PRODUCTION_KDF,
    PURPOSES,
    SALT_LEN,
    KdfFile,
    KdfParams,
    Purpose,
    argon2id_root,
    check_purpose,
    derive_subkey,
)
from keys.layout import (
    INIT_FIX,
    KCV_FILE,
    KDF_FILE,
    KEYRING_FILE,
    LOCK_FILE,
    ROOT_KEY_FILE,
)
from keys.root import RootSecret, load_root_from_dir

KEK_LEN: Final = 32
NONCE_LEN: Final = 12
KCV_PLAINTEXT: Final = b"relay key check"
KCV_AD: Final = b"relay/v1|kcv"
KEYRING_PREFIX: Final = b"R1"
KEYRING_AD: Final = b"relay/v1|keyring"

_T = TypeVar("_T")


class KekStatus(NamedTuple):
    """One KEK as `status()` reports it: a plain tuple that never carries key bytes.

    `active` is true for the newest generation of its epoch: the one new DEKs of that
    epoch are wrapped with. Older generations stay readable until `retire`.
    """

    kek_id: str
    epoch: str
    generation: int
    created_at: datetime
    active: bool


@dataclass(frozen=True, slots=True)
class _Kek:
    kek_id: str
    epoch: str
    generation: int
    created_at: datetime
    key: bytes = field(repr=False)

    @classmethod
    def make(cls, kek_id: str, created_at: datetime, key: bytes) -> _Kek:
        epoch, generation = parse_kek_id(kek_id)
        return cls(kek_id, epoch, generation, created_at, key)


@dataclass(frozen=True, slots=True)
class _State:
    period: EpochPeriod
    keks: dict[str, _Kek] = field(repr=False)
    tombstones: frozenset[str]

    def generations(self, epoch: str) -> list[int]:
        ids = [*self.keks, *self.tombstones]
        return [gen for ep, gen in map(parse_kek_id, ids) if ep == epoch]

    def newest_live(self, epoch: str) -> _Kek | None:
        live = [k for k in self.keks.values() if k.epoch == epoch]
        return max(live, key=lambda k: k.generation, default=None)

    def with_new_generation(self, epoch: str, now: datetime) -> tuple[_State, str]:
        generation = max(self.generations(epoch), default=0) + 1
        kek = _Kek.make(make_kek_id(epoch, generation), _utc(now), AESGCM.generate_key(256))
        return replace(self, keks={**self.keks, kek.kek_id: kek}), kek.kek_id

    def to_json(self) -> bytes:
        body = {
            "format": 1,
            "period": self.period.value,
            "keks": [
                {
                    "kek_id": k.kek_id,
                    "created_at": k.created_at.isoformat(),
                    "key": base64.b64encode(k.key).decode("ascii"),
                }
                for k in sorted(self.keks.values(), key=lambda k: (k.epoch, k.generation))
            ],
            "tombstones": sorted(self.tombstones),
        }
        return json.dumps(body, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> _State:
        try:
            body = json.loads(raw)
            version = body["format"]
            keks = [_kek_from_json(entry) for entry in body["keks"]]
            tombstones = frozenset(str(t) for t in body["tombstones"])
            for tomb in tombstones:
                parse_kek_id(tomb)
            period = period_of(body["period"])
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyringCorruptError(
                f"keyring.bin content is malformed ({type(exc).__name__})"
            ) from None
        by_id = {k.kek_id: k for k in keks}
        if version != 1 or len(by_id) != len(keks):
            raise KeyringCorruptError("keyring.bin has an unsupported version or duplicate ids")
        return cls(period, by_id, tombstones)


def _kek_from_json(entry: dict[str, str]) -> _Kek:
    key = base64.b64decode(entry["key"], validate=True)
    created = datetime.fromisoformat(entry["created_at"])
    if len(key) != KEK_LEN or created.tzinfo is None:
        raise ValueError("malformed KEK entry")
    return _Kek.make(str(entry["kek_id"]), created, key)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("the keyring needs aware datetimes")
    return now.astimezone(UTC)


def _make_kcv(kcv_key: bytes) -> bytes:
    nonce = os.urandom(NONCE_LEN)
    return nonce + AESGCM(kcv_key).encrypt(nonce, KCV_PLAINTEXT, KCV_AD)


def _check_kcv(kcv_key: bytes, blob: bytes, path: Path) -> None:
    if len(blob) != NONCE_LEN + len(KCV_PLAINTEXT) + 16:
        raise KeyringCorruptError(f"{path} is not a key-check value (wrong length)")
    try:
        plain = AESGCM(kcv_key).decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], KCV_AD)
    except InvalidTag:
        raise WrongKeyError(
            f"the root secret does not match {path} (key-check value failed). "
            "Fix: supply the root secret this keys directory was created with "
            "(the right root.key, credential or passphrase); relay will not start "
            "with a different one"
        ) from None
    if plain != KCV_PLAINTEXT:  # pragma: no cover - AES-GCM already authenticated it
        raise WrongKeyError(f"{path} holds an unexpected key-check value")


def _seal_keyring(wrap_key: bytes, state: _State) -> bytes:
    nonce = os.urandom(NONCE_LEN)
    return KEYRING_PREFIX + nonce + AESGCM(wrap_key).encrypt(nonce, state.to_json(), KEYRING_AD)


def _open_keyring(wrap_key: bytes, blob: bytes, path: Path) -> _State:
    head = len(KEYRING_PREFIX)
    if blob[:head] != KEYRING_PREFIX or len(blob) < head + NONCE_LEN + 16:
        raise KeyringCorruptError(f"{path} is not a relay keyring (bad header or truncated)")
    try:
        raw = AESGCM(wrap_key).decrypt(
            blob[head : head + NONCE_LEN], blob[head + NONCE_LEN :], KEYRING_AD
        )
    except InvalidTag:
        raise KeyringCorruptError(
            f"{path} failed authentication although the key-check value passed: the file "
            "is damaged or belongs to another keys directory. Fix: restore keyring.bin "
            "from this directory's backup"
        ) from None
    return _State.from_json(raw)


def _derive_subkeys(root: RootSecret) -> dict[Purpose, bytes]:
    return {purpose: derive_subkey(root.reveal(), purpose) for purpose in PURPOSES}


def _read_state(keys_dir: Path, wrap_key: bytes) -> _State:
    path = keys_dir / KEYRING_FILE
    return _open_keyring(wrap_key, read_private_file(path, what="keyring", fix=INIT_FIX), path)


class Keyring:
    """Subkeys and epoch KEKs of one keys directory. Build with `load` or `init_keys_dir`.

    Key bytes never appear in `repr`, `str`, `status()` or error messages.
    """

    __slots__ = ("_dir", "_mutex", "_state", "_subkeys")

    def __init__(self, keys_dir: Path, subkeys: dict[Purpose, bytes], state: _State) -> None:
        self._dir = keys_dir
        self._subkeys = subkeys
        self._state = state
        self._mutex = threading.Lock()

    # -- construction -------------------------------------------------------------------

    @classmethod
    def load(cls, keys_dir: Path, root: RootSecret | None = None) -> Keyring:
        """Open a keys directory, check its modes and its key-check value.

        Without `root`, the root secret is read from `root.key` in the directory. The
        credential and passphrase sources pass the `RootSecret` they loaded.
        """
        check_private_dir(keys_dir)
        subkeys = _derive_subkeys(load_root_from_dir(keys_dir) if root is None else root)
        kcv_path = keys_dir / KCV_FILE
        kcv = read_public_file(kcv_path, what="key-check value", fix=INIT_FIX)
        _check_kcv(subkeys["kcv"], kcv, kcv_path)
        return cls(keys_dir, subkeys, _read_state(keys_dir, subkeys["keyring-wrap"]))

    def _read_state(self) -> _State:
        return _read_state(self._dir, self._subkeys["keyring-wrap"])

    def reload(self) -> None:
        """Re-read keyring.bin (after another process rotated or destroyed KEKs)."""
        with self._mutex:
            self._state = self._read_state()

    # -- reading ------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._dir

    @property
    def period(self) -> EpochPeriod:
        return self._state.period

    def subkey(self, purpose: str) -> bytes:
        """The HKDF subkey for one purpose of `keys.kdf.PURPOSES`."""
        return self._subkeys[check_purpose(purpose)]

    def active_kek_id(self, now: datetime) -> str:
        """The newest generation of the current epoch's KEK.

        Raises `EpochMissingError` if the epoch has no KEK yet: creating one is the
        explicit, persisted `ensure_epoch(now)`.
        """
        label = epoch_label(now, self._state.period)
        kek = self._state.newest_live(label)
        if kek is None:
            raise EpochMissingError(
                f"no KEK exists for the current epoch {label}. Fix: call ensure_epoch "
                "(the service does this at start and at each epoch boundary)"
            )
        return kek.kek_id

    def kek_cipher(self, kek_id: str) -> AESGCM:
        """An AES-GCM instance under one KEK; the KEK bytes themselves are not exposed."""
        kek = self._state.keks.get(kek_id)
        if kek is None and kek_id not in self._state.tombstones:
            self.reload()  # another process may have rotated since we loaded
            kek = self._state.keks.get(kek_id)
        if kek is None:
            raise KeyDestroyedError(
                f"KEK {kek_id} is not in the keyring: it was destroyed or retired, "
                "or never existed here"
            )
        return AESGCM(kek.key)

    def status(self) -> list[KekStatus]:
        """Every live KEK, oldest first, without key bytes."""
        state = self._state
        out: list[KekStatus] = []
        for kek in sorted(state.keks.values(), key=lambda k: (k.epoch, k.generation)):
            newest = state.newest_live(kek.epoch)
            active = newest is not None and newest.kek_id == kek.kek_id
            out.append(KekStatus(kek.kek_id, kek.epoch, kek.generation, kek.created_at, active))
        return out

    # -- changing -----------------------------------------------------------------------

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        fd = os.open(
            self._dir / LOCK_FILE,
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _mutate(self, change: Callable[[_State], tuple[_State, _T]]) -> _T:
        with self._mutex, self._file_lock():
            current = self._read_state()
            new_state, result = change(current)
            if new_state is not current:
                blob = _seal_keyring(self._subkeys["keyring-wrap"], new_state)
                write_atomic(self._dir / KEYRING_FILE, blob)
            self._state = new_state
            return result

    def ensure_epoch(self, now: datetime) -> str:
        """Create the current epoch's KEK if it has none (persisted); return the active id."""
        label = epoch_label(now, self._state.period)

        def change(state: _State) -> tuple[_State, str]:
            kek = state.newest_live(label)
            if kek is not None:
                return state, kek.kek_id
            return state.with_new_generation(label, now)

        return self._mutate(change)

    def rotate(self, now: datetime) -> str:
        """Add a new generation for the current epoch; it becomes active. Old ones stay."""
        label = epoch_label(now, self._state.period)
        return self._mutate(lambda state: state.with_new_generation(label, now))

    def retire(self, kek_id: str) -> None:
        """Remove one superseded generation once no row references it (idempotent)."""
        epoch, _ = parse_kek_id(kek_id)

        def change(state: _State) -> tuple[_State, None]:
            if kek_id in state.tombstones:
                return state, None
            if kek_id not in state.keks:
                raise KeyringError(f"KEK {kek_id} is not in the keyring")
            newest = state.newest_live(epoch)
            if newest is not None and newest.kek_id == kek_id:
                raise KeyringError(
                    f"KEK {kek_id} is the newest generation of epoch {epoch}; rotate first, "
                    "or use destroy_epoch to shred the whole epoch"
                )
            keks = {k: v for k, v in state.keks.items() if k != kek_id}
            return replace(state, keks=keks, tombstones=state.tombstones | {kek_id}), None

        self._mutate(change)

    def destroy_epoch(self, label: str) -> list[str]:
        """Crypto-shred an epoch: remove every KEK of `label` from keyring.bin.

        Returns the removed ids (empty if already destroyed). Rows, WAL residue and
        backups whose DEKs were wrapped under them become unreadable.
        """
        make_kek_id(label, 1)  # validates the label

        def change(state: _State) -> tuple[_State, list[str]]:
            doomed = sorted(k for k, v in state.keks.items() if v.epoch == label)
            if not doomed:
                return state, []
            keks = {k: v for k, v in state.keks.items() if v.epoch != label}
            return replace(state, keks=keks, tombstones=state.tombstones | set(doomed)), doomed

        return self._mutate(change)

    # -- no leaks -----------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"Keyring(path={str(self._dir)!r}, period={self._state.period.value!r}, "
            f"keks={len(self._state.keks)}, key material redacted)"
        )

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Keyring cannot be pickled or copied")


def init_keys_dir(
    path: Path,
    now: datetime,
    period: str,
    *,
    root: RootSecret | None = None,
    passphrase: bytes | str | None = None,
    kdf_params: KdfParams = PRODUCTION_KDF,
) -> Keyring:
    """Create a keys directory with the current epoch's KEK; never overwrite keys.

    - default: a random root secret is written to `root.key` (mode 0600);
    - `root=`: the root secret comes from elsewhere (a systemd credential) and is not
      written here;
    - `passphrase=`: a random salt and `kdf_params` go to `kdf.json`, and the root is
      Argon2id(passphrase).

    The directory is created with mode 0700. Then kcv.bin and keyring.bin (0600) follow.
    """
    if root is not None and passphrase is not None:
        raise ValueError("give either root= or passphrase=, not both")
    checked_period = period_of(period)
    label = epoch_label(now, checked_period)
    existing = [
        name
        for name in (ROOT_KEY_FILE, KDF_FILE, KCV_FILE, KEYRING_FILE)
        if (path / name).exists() or (path / name).is_symlink()
    ]
    if existing:
        raise KeysExistError(
            f"{path} already holds key material ({', '.join(existing)}); refusing to "
            "overwrite it. If an earlier init was interrupted before any data was "
            "encrypted, remove the directory and run init again"
        )
    make_private_dir(path)

    if passphrase is not None:
        kdf = KdfFile(os.urandom(SALT_LEN), kdf_params)
        secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
        root = RootSecret(argon2id_root(secret, kdf.salt, kdf.params))
        write_atomic(path / KDF_FILE, kdf.to_json(), overwrite=False)
    elif root is None:
        root = RootSecret.generate()
        write_atomic(path / ROOT_KEY_FILE, root.reveal(), overwrite=False)

    subkeys = _derive_subkeys(root)
    state, _ = _State(checked_period, {}, frozenset()).with_new_generation(label, now)
    write_atomic(path / KCV_FILE, _make_kcv(subkeys["kcv"]), overwrite=False)
    write_atomic(
        path / KEYRING_FILE, _seal_keyring(subkeys["keyring-wrap"], state), overwrite=False
    )
    return Keyring(path, subkeys, state)
