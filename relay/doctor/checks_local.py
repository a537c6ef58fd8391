"""Checks on this machine: the keys directory, the database schema, free disk space."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from keys import Keyring, KeyringError, load_root_from_credentials
from keys.layout import KCV_FILE, KDF_FILE, KEYRING_FILE, ROOT_KEY_FILE
from relay.doctor.context import MIB, Context
from relay.doctor.result import CheckResult, fail, ok, warn
from relay.setup.database import describe
from relay.store.db import make_engine, sqlite_path
from relay.store.migrate import alembic_config, current_revision, head_revision

PRIVATE = 0o077
PG_CONNECT_TIMEOUT = 5
NEEDED = {
    "directory": (ROOT_KEY_FILE, KCV_FILE, KEYRING_FILE),
    "credentials": (KCV_FILE, KEYRING_FILE),
    "passphrase": (KDF_FILE, KCV_FILE, KEYRING_FILE),
}


def _split_fix(message: str) -> tuple[str, str]:
    """A keys error's "what. Fix: how" as (what, how)."""
    what, _, how = message.partition(" Fix: ")
    return what.rstrip(". "), how


def _file_problems(directory: Path, source: str) -> tuple[list[str], list[str]]:
    """(problems, fixes) for modes, owners and missing files; nothing is read."""
    uid = os.getuid()
    problems: list[str] = []
    fixes: list[str] = []
    st = directory.stat()
    if st.st_mode & PRIVATE:
        problems.append(f"keys.directory has mode {stat.S_IMODE(st.st_mode):04o}, not 0700")
        fixes.append(f"chmod 700 {directory}")
    loose: list[str] = []
    foreign: list[str] = [] if st.st_uid == uid else [directory.name + "/"]
    for path in sorted(directory.iterdir()):
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            continue
        if info.st_mode & PRIVATE:
            loose.append(path.name)
        if info.st_uid != uid:
            foreign.append(path.name)
    if loose:
        problems.append(f"readable by others: {', '.join(loose)} (files must be 0600)")
        fixes.append(f"chmod 600 {' '.join(str(directory / n) for n in loose)}")
    if foreign:
        problems.append(f"not owned by the current user (uid {uid}): {', '.join(foreign)}")
        fixes.append("run the doctor as the user relay runs as (e.g. `sudo -u relay relay "
                     f"doctor`), or `chown -R <relay user> {directory}`")
    missing = [n for n in NEEDED[source] if not (directory / n).is_file()]
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
        fixes.append("restore the keys directory from backup (`relay keys init` only for a "
                     "new installation: it cannot read existing reports)")
    return problems, fixes


def _directory_problem(ctx: Context, name: str) -> CheckResult | None:
    directory = ctx.cfg.keys.directory
    if not directory.exists() and not directory.is_symlink():
        return fail(name, f"keys.directory {directory} does not exist",
                    f"`{ctx.cmd('relay keys init')}` for a new installation, or restore the "
                    "directory from backup")
    if directory.is_symlink() or not directory.is_dir():
        return fail(name, f"keys.directory {directory} is not a plain directory",
                    "point keys.directory at the real directory (symlinks are refused)")
    try:
        problems, fixes = _file_problems(directory, ctx.cfg.keys.source)
    except OSError as exc:
        return fail(name, f"cannot read keys.directory {directory} ({type(exc).__name__})",
                    "run the doctor as the user relay runs as (e.g. `sudo -u relay relay "
                    "doctor`)")
    if problems:
        return fail(name, "; ".join(problems), "; ".join(fixes))
    return None


def check_keys(ctx: Context) -> CheckResult:
    """The keys directory: 0700, files 0600, ours; the root key loads and its KCV matches."""
    name = "keys"
    directory = ctx.cfg.keys.directory
    source = ctx.cfg.keys.source
    problem = _directory_problem(ctx, name)
    if problem is not None:
        return problem
    if source == "passphrase":
        return ok(name, f"{directory}: modes and files ok; root key not checked "
                        "(keys.source = passphrase, and the doctor never asks for it)")
    credentials = ctx.environ.get("CREDENTIALS_DIRECTORY")
    if source == "credentials" and not credentials:
        return warn(name, f"{directory}: modes and files ok; root key not checked: "
                          "keys.source = credentials but $CREDENTIALS_DIRECTORY is not set",
                    "run the doctor with relay's credentials, e.g. `systemd-run -P --wait "
                    "-p LoadCredentialEncrypted=relay-root:<file> relay doctor`")
    try:
        root = None if credentials is None or source != "credentials" else (
            load_root_from_credentials(Path(credentials)))
        keyring = Keyring.load(directory, root=root)
    except KeyringError as exc:
        what, how = _split_fix(str(exc))
        return fail(name, what, how or "restore the keys directory and root key from backup")
    return ok(name, f"{directory}: modes ok; root key loads and its key-check value matches "
                    f"({len(keyring.status())} epoch key(s))")


def _known_revision(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def check_database(ctx: Context) -> CheckResult:
    """The database answers and is at the newest schema revision."""
    name = "database"
    url = ctx.cfg.storage.url
    where = describe(url)
    upgrade = f"`{ctx.cmd('relay db upgrade')}`"
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return fail(name, f"the database file {where} does not exist", upgrade)
    engine = make_engine(url) if path is not None else create_engine(
        url, hide_parameters=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT})
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        return fail(name, f"cannot open the database {where} ({type(exc).__name__})",
                    "check storage.url, that the database server is running and accepts "
                    "this user, and the file permissions")
    finally:
        engine.dispose()
    head = head_revision()
    if current is None:
        return fail(name, f"{where} answers but has no relay schema", upgrade)
    if current == head:
        return ok(name, f"{where} answers; schema at the newest revision ({head})")
    if not _known_revision(current):
        return fail(name, f"{where} has schema revision {current}, newer than this relay "
                          f"({head})", "install the relay version that wrote this database")
    return fail(name, f"{where} has schema revision {current}; this relay needs {head}",
                upgrade)


def _existing(path: Path) -> Path:
    """`path`, or its nearest ancestor that exists (where it would be created)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _size(free: int) -> str:
    if free >= 1024 * MIB:
        return f"{free / (1024 * MIB):.1f} GiB"
    return f"{free / MIB:.0f} MiB"


def check_disk(ctx: Context) -> CheckResult:
    """Free space where the SQLite database and the keys live."""
    name = "disk"
    places: list[tuple[str, Path]] = [("keys", _existing(ctx.cfg.keys.directory))]
    db_path = sqlite_path(ctx.cfg.storage.url)
    note = ""
    if db_path is not None:
        places.insert(0, ("database", _existing(db_path.parent)))
    else:
        note = "; the database is on PostgreSQL: watch its server's disk there"
    by_device: dict[int, tuple[list[str], Path]] = {}
    for what, path in places:
        device = path.stat().st_dev
        by_device.setdefault(device, ([], path))[0].append(what)
    limits = ctx.limits
    free, what = min((shutil.disk_usage(path).free, " and ".join(whats))
                     for whats, path in by_device.values())
    found = f"{_size(free)} free where the {what} live{note}"
    fix = ("free space on that filesystem, or move storage.url / keys.directory to a larger "
           "one; relay stops taking reports when the disk is full")
    if free < limits.fail_below:
        return fail(name, f"{found} (under {_size(limits.fail_below)})", fix)
    if free < limits.warn_below:
        return warn(name, f"{found} (under {_size(limits.warn_below)})", fix)
    return ok(name, found)
