"""Bring the configured database to the newest schema (`relay init`, `relay db upgrade`)."""

from __future__ import annotations

from dataclasses import dataclass

from alembic.util.exc import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from relay.setup.files import make_private_parents
from relay.store.db import make_engine, sqlite_path
from relay.store.migrate import current_revision, head_revision, upgrade


class DatabaseSetupError(Exception):
    """One line: what went wrong with the database and what to do."""


@dataclass(frozen=True)
class Upgraded:
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def describe(url: str) -> str:
    """The database for messages: the SQLite path, or PostgreSQL host/db (no password)."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    try:
        parsed = make_url(url)
    except ValueError:
        return "the PostgreSQL database in storage.url"
    return f"PostgreSQL {parsed.host or 'localhost'}/{parsed.database or ''}"


def upgrade_to_head(url: str) -> Upgraded:
    """Create the SQLite directory (0700) if needed, then migrate to the newest revision."""
    head = head_revision()
    if head is None:
        raise DatabaseSetupError("no database migrations are installed; reinstall relay")
    path = sqlite_path(url)
    if path is not None:
        try:
            make_private_parents(path)
        except OSError as exc:
            raise DatabaseSetupError(
                f"cannot create the directory for {path} ({type(exc).__name__}); check "
                "storage.url and the permissions of its parent directory") from None
    try:
        engine = make_engine(url)
    except OSError as exc:
        raise DatabaseSetupError(
            f"cannot create the database {describe(url)} ({type(exc).__name__}); check "
            "storage.url and the permissions of its directory") from None
    try:
        before = current_revision(engine)
        if before != head:
            upgrade(engine)
        after = current_revision(engine)
    except CommandError:
        raise DatabaseSetupError(
            f"the database {describe(url)} has a schema revision this relay does not know "
            f"(it is newer); install the relay version that created it") from None
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseSetupError(
            f"cannot open the database {describe(url)} ({type(exc).__name__}); check "
            "storage.url, that the server is running, and the file permissions") from None
    finally:
        engine.dispose()
    return Upgraded(before, after or head)
