"""The running relay on SQLite: commits never checkpoint, a clean stop empties the WAL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from relay.store.db import sqlite_path
from tests.e2e.conftest import Starter, say

pytestmark = pytest.mark.asyncio


def _wal_bytes(db: Path) -> int:
    """Size of the database's WAL file; 0 when there is none."""
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


async def test_relay_checkpoints_off_its_commits_and_stops_with_an_empty_wal(
        start_org: Starter, db_url: str) -> None:
    path = sqlite_path(db_url)
    if path is None:
        pytest.skip("SQLite only: PostgreSQL has no WAL file to checkpoint")
    run = await start_org()
    assert run.relay.checkpointer is not None
    with run.relay.engine.connect() as conn:
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
    phone = run.org.reporter()
    await say(phone, "hello", "anonymous")  # stored, answered: commits went to the WAL
    assert _wal_bytes(path) > 0
    await run.stop()
    assert _wal_bytes(path) == 0
