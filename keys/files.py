"""Private file I/O for key material: atomic 0600 writes and mode-checked reads.

Every write goes to a temporary file in the same directory, is fsynced, renamed (or
hard-linked when overwriting is forbidden) onto the final name, and the directory is
fsynced, so a crash leaves either the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from keys.errors import InsecurePermissionsError, KeysExistError, MissingKeyError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
GROUP_OTHER = 0o077
OTHER = 0o007


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write `data` to `path` with mode 0600: temp file, fsync, rename, fsync dir.

    With `overwrite=False` the final step is a hard link, which fails atomically if
    `path` already exists (`KeysExistError`), so a concurrent writer cannot be clobbered.
    """
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            tmp.replace(path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeysExistError(
                    f"{path} already exists; refusing to overwrite key material"
                ) from None
            tmp.unlink()
        _fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _mode_problem(
    path: Path, mode: int, wanted: int, what: str, forbidden: int = GROUP_OTHER
) -> InsecurePermissionsError:
    who = "group or others" if forbidden & 0o070 else "others"
    return InsecurePermissionsError(
        f"{what} {path} has mode {stat.S_IMODE(mode):04o}; it must not be accessible by "
        f"{who}. Fix: chmod {wanted:o} {path}"
    )


def check_private_dir(path: Path) -> None:
    """Refuse a keys directory that is missing, not a directory, or wider than 0700."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise MissingKeyError(
            f"keys directory {path} does not exist. Fix: run `relay keys init` "
            "or point the config's keys.directory at the existing directory"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise MissingKeyError(f"keys directory {path} is not a directory (symlinks refused)")
    if st.st_mode & GROUP_OTHER:
        raise _mode_problem(path, st.st_mode, PRIVATE_DIR_MODE, "keys directory")


def make_private_dir(path: Path) -> None:
    """Create `path` with mode 0700, or tighten an existing empty directory we own."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if path.is_symlink() or not path.is_dir():
        raise KeysExistError(f"{path} is not a plain directory; refusing to use it for keys")
    path.chmod(PRIVATE_DIR_MODE)
    _fsync_dir(path.parent)


def read_private_file(path: Path, *, what: str, fix: str, forbidden: int = GROUP_OTHER) -> bytes:
    """Read a secret file, refusing symlinks, non-regular files and `forbidden` mode bits.

    The mode is checked on the open descriptor, so the file checked is the file read.
    O_NONBLOCK keeps a planted FIFO from hanging start-up.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise MissingKeyError(f"{what} {path} is missing. Fix: {fix}") from None
    except OSError as exc:
        raise MissingKeyError(
            f"{what} {path} cannot be opened ({type(exc).__name__}; symlinks are refused). "
            f"Fix: {fix}"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise MissingKeyError(f"{what} {path} is not a regular file. Fix: {fix}")
        if st.st_mode & forbidden:
            raise _mode_problem(path, st.st_mode, PRIVATE_FILE_MODE, what, forbidden)
        return handle.read()


def read_public_file(path: Path, *, what: str, fix: str) -> bytes:
    """Read a non-secret file of the keys directory (kdf.json, kcv.bin)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MissingKeyError(f"{what} {path} is missing. Fix: {fix}") from None
