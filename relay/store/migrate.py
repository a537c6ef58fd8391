"""Schema migrations with Alembic, driven from code on relay's own connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class MigrationsMissingError(RuntimeError):
    """The installed relay has no migration files: refuse rather than run on no schema."""


def ensure_schema(engine: Engine) -> None:
    """Bring the database to the newest schema (a no-op when it is there already)."""
    head = head_revision()
    if head is None:
        raise MigrationsMissingError(
            f"no database migrations found in {MIGRATIONS}; reinstall relay")
    if current_revision(engine) != head:
        upgrade(engine)
