"""WAL checkpoints run off the commit path: on a real SQLite file, commits of an engine
with `autocheckpoint=False` never checkpoint, and the `WalCheckpointer` keeps the WAL small."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, text

from relay.retention import compact
from relay.store.db import make_engine, start_checkpointer

PAGE = 4096
ROW = os.urandom(3000)


def _wal_frames(path: Path) -> int:
    """Frames in the WAL, read from the header-free size: (size - 32) / (24 + page)."""
    wal = path.with_name(path.name + "-wal")
    size = wal.stat().st_size if wal.exists() else 0
    return max(0, (size - 32) // (24 + PAGE))


def _engine(path: Path, *, autocheckpoint: bool) -> Engine:
    engine = make_engine(f"sqlite:///{path}", autocheckpoint=autocheckpoint)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, b BLOB)"))
    return engine


def _commit_many(engine: Engine, n: int, pause: float = 0.0) -> None:
    for _ in range(n):
        with engine.begin() as c:
            c.execute(text("INSERT INTO t (b) VALUES (:b)"), {"b": ROW})
        if pause:
            time.sleep(pause)


def _checkpointed_frames(path: Path) -> int:
    """Frames the WAL holds, from a PASSIVE checkpoint's report (log frames)."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def test_commits_never_checkpoint_without_the_checkpointer(tmp_path: Path) -> None:
    off = tmp_path / "off.db"
    engine = _engine(off, autocheckpoint=False)
    _commit_many(engine, 1500)  # over 1 500 frames: past SQLite's 1 000-page default
    frames = _wal_frames(off)
    engine.dispose()
    assert frames > 1500  # every commit appended; none restarted the WAL

    on = tmp_path / "on.db"  # the contrast: the default engine checkpoints inside a commit
    engine = _engine(on, autocheckpoint=True)
    _commit_many(engine, 1500)
    assert _wal_frames(on) < 1100
    engine.dispose()


def test_checkpointer_keeps_the_wal_bounded(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    engine = _engine(path, autocheckpoint=False)
    checkpointer = start_checkpointer(engine, interval=0.05)
    assert checkpointer is not None
    largest = 0
    try:
        for _ in range(40):  # 4 000 commits, over 8 000 WAL frames written
            _commit_many(engine, 100, pause=0.0005)
            largest = max(largest, _wal_frames(path))
        assert checkpointer.passes > 0
        # nothing is lost: the rows are in the database once the WAL is emptied
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM t")).scalar_one() == 4000
    finally:
        engine.dispose()
        checkpointer.stop()
    assert largest < 1600, largest  # without the checkpointer: more than 8 000 frames
    assert _wal_frames(path) == 0  # the TRUNCATE checkpoint at stop emptied it
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 4000


def test_no_checkpointer_for_postgresql_or_memory() -> None:
    engine = make_engine("sqlite:///:memory:", autocheckpoint=False)
    assert start_checkpointer(engine) is None


def test_purge_compacts_while_a_running_relays_checkpointer_checkpoints(
        tmp_path: Path) -> None:
    """`relay purge` beside a running relay: the relay's checkpointer may be inside a
    checkpoint of its own when purge truncates the WAL; purge waits it out instead of
    reporting the store as not compacted."""
    path = tmp_path / "relay.db"
    engine = _engine(path, autocheckpoint=False)
    checkpointer = start_checkpointer(engine, interval=0.0005)
    assert checkpointer is not None
    try:
        results = []
        for _ in range(5):
            _commit_many(engine, 200)  # the WAL grows while the checkpointer works
            results.append(compact(engine))
    finally:
        checkpointer.stop()
        engine.dispose()
    assert results == [True] * 5
    assert _wal_frames(path) == 0
