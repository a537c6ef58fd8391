"""PostgreSQL for the benchmarks: a throw-away schema on the test server, if it answers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

PG_URL = os.environ.get(
    "RELAY_BENCH_PG_URL",
    os.environ.get("RELAY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)


def where() -> str:
    """The server's address without credentials, for messages."""
    return PG_URL.rsplit("@", 1)[-1]


def probe() -> tuple[str | None, str | None]:
    """(server version, None) when reachable, else (None, the error class)."""
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            version = str(conn.execute(text("show server_version")).scalar())
        engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        return None, type(exc).__name__
    return version, None


@contextmanager
def fresh_schema(tag: str) -> Iterator[str]:
    """A new schema for one run (dropped afterwards); yields a URL whose search_path is it."""
    schema = f"relay_bench_{tag}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
