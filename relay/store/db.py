"""Engine construction: SQLite pragmas on every connection, BEGIN IMMEDIATE, PostgreSQL.

The running relay turns SQLite's automatic checkpoint off (`autocheckpoint=False`) and runs
a `WalCheckpointer` instead: a PASSIVE checkpoint from its own connection and thread, so no
commit pays for copying the WAL into a large database file. Short-lived commands keep the
automatic checkpoint.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from relay.logs import get_logger

log = get_logger("db")

SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=FULL",
    "foreign_keys=ON",
    "secure_delete=ON",
    "busy_timeout=5000",
    "trusted_schema=OFF",
)
# with the checkpointer: no commit checkpoints; a WAL reused after a checkpoint is cut back
NO_AUTOCHECKPOINT_PRAGMAS = ("wal_autocheckpoint=0", "journal_size_limit=16777216")
CHECKPOINT_SECONDS = 2.0
RESTART_FRAMES = 1000  # a WAL this long is restarted (SQLite's own autocheckpoint size)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The file behind a `sqlite:///` URL; None for PostgreSQL or an in-memory database."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///")
    return Path(path) if path and path != ":memory:" else None


def make_engine(url: str, *, autocheckpoint: bool = True) -> Engine:
    """Build the one engine for this process. Parameters are never shown in errors.

    `autocheckpoint=False` (SQLite): commits never checkpoint; run a `WalCheckpointer`."""
    if url.startswith("sqlite:///"):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": 10})
        pragmas = SQLITE_PRAGMAS if autocheckpoint else SQLITE_PRAGMAS + NO_AUTOCHECKPOINT_PRAGMAS
        _sqlite_events(engine, pragmas)
        return engine
    return create_engine(url, hide_parameters=True, pool_pre_ping=True)


def _sqlite_events(engine: Engine, pragmas: tuple[str, ...]) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself
        cur = dbapi_conn.cursor()
        for pragma in pragmas:
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class WalCheckpointer:
    """Copies an SQLite WAL into the database file from its own connection and thread.

    Every `interval` seconds, when the WAL has changed: a PASSIVE checkpoint, which never
    blocks a writer. A WAL only starts over when a writer finds it fully checkpointed,
    which steady writes can keep from happening; so when it holds more than
    `restart_frames`, a TRUNCATE checkpoint follows, which waits for the commit in
    progress and blocks writers only while it copies what the PASSIVE one could not (a
    few frames). A TRUNCATE checkpoint also runs at `stop`. Durability does not depend on
    any of this: every commit is synced to the WAL (`synchronous=FULL`)."""

    def __init__(self, path: Path, interval: float = CHECKPOINT_SECONDS,
                 restart_frames: int = RESTART_FRAMES) -> None:
        self.path = path
        self.interval = interval
        self.restart_frames = restart_frames
        self.passes = 0  # checkpoints run (for tests and metrics)
        self._wal = path.with_name(path.name + "-wal")
        self._seen: tuple[int, int] | None = None
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-wal-checkpoint",
                                        daemon=True)
        self._thread.start()

    def stop(self, *, truncate: bool = True) -> None:
        """Stop the thread; with `truncate`, checkpoint everything and empty the WAL."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if truncate:
            self.checkpoint("TRUNCATE")
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int] | None:
        """Run one checkpoint: (busy, WAL frames, frames checkpointed), None on an error."""
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                                                 check_same_thread=False)
                    self._conn.execute("PRAGMA busy_timeout=5000")
                row = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            except sqlite3.Error as exc:
                log.warning("db.checkpoint_failed", exc_type=type(exc).__name__)
                return None
            self.passes += 1
            return int(row[0]), int(row[1]), int(row[2])

    def _grown(self) -> bool:
        try:
            st = self._wal.stat()
        except FileNotFoundError:
            return False
        seen = (st.st_size, st.st_mtime_ns)
        grown = seen != self._seen
        self._seen = seen
        return grown

    def _run(self) -> None:
        while not self._halt.wait(self.interval):
            if self._grown():
                done = self.checkpoint()
                if done is not None and done[1] > self.restart_frames:
                    self.checkpoint("TRUNCATE")


def start_checkpointer(engine: Engine, interval: float = CHECKPOINT_SECONDS,
                       ) -> WalCheckpointer | None:
    """A running `WalCheckpointer` for an SQLite file engine; None for anything else."""
    path = engine.url.database if is_sqlite(engine) else None
    if not path or path == ":memory:":
        return None
    checkpointer = WalCheckpointer(Path(path), interval)
    checkpointer.start()
    return checkpointer
