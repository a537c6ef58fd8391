"""Writing the config file and creating private directories."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

CONFIG_MODE = 0o644  # the config holds no secrets
PRIVATE_DIR_MODE = 0o700


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: temp file, fsync, rename, fsync dir.

    An existing file keeps its permission bits; a new one gets 0644.
    """
    directory = path.parent if str(path.parent) else Path()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = CONFIG_MODE
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def make_private_parents(path: Path) -> list[Path]:
    """Create the missing directories leading to `path` with mode 0700; returns them."""
    missing: list[Path] = []
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists() or not str(parent) or parent == Path():
            break
        missing.append(parent)
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR_MODE)
        directory.chmod(PRIVATE_DIR_MODE)
    return list(reversed(missing))
