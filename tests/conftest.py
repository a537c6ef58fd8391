"""Shared fixtures: database backends (SQLite file and PostgreSQL), clocks, keyrings."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

PG_URL = os.environ.get("RELAY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except OperationalError as exc:
        return type(exc).__name__
    return None


_PG_PROBLEM: list[str | None] = []


def pg_problem() -> str | None:
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(_pg_available())
    return _PG_PROBLEM[0]


def require_pg() -> None:
    """Skip the calling test, saying so, when PostgreSQL is not reachable; fail under CI."""
    problem = pg_problem()
    if problem is not None:
        message = f"PostgreSQL not reachable at {PG_URL.split('@')[-1]} ({problem})"
        if IN_CI:
            pytest.fail(message + ": CI=true requires it")
        pytest.skip(message + ": PostgreSQL tests SKIPPED")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test; skipped (or failed in CI) without a server."""
    require_pg()
    schema = f"relay_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both databases: a real SQLite file, and a real PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'relay.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def t0() -> datetime:
    return datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def pytest_report_header(config: pytest.Config) -> str:
    problem = pg_problem()
    if problem is None:
        return f"relay: PostgreSQL at {PG_URL.split('@')[-1]}: available"
    return (f"relay: PostgreSQL at {PG_URL.split('@')[-1]}: NOT available ({problem}); "
            "PostgreSQL tests will be skipped" + (" -> FAIL under CI=true" if IN_CI else ""))


FIGURES = "bench_figures"  # a user property: text for the end of the test run's output
_figures: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect figures a test published (also from xdist workers: the report carries them)."""
    if report.when == "call":
        _figures.extend(str(value) for name, value in report.user_properties if name == FIGURES)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the published figures (the benchmark smoke test's tables) in every run's
    output, passing or not: CI prints them without asserting thresholds."""
    for figures in _figures:
        terminalreporter.section("benchmark figures (python -m bench all --short --trace)")
        terminalreporter.write_line(figures)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Tests that configure relay's logging put the process's logging back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    bot = logging.getLogger("signalbot")
    bot_state = (bot.handlers[:], bot.level, bot.propagate)
    raise_exceptions = logging.raiseExceptions
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.captureWarnings(capture=False)
    logging.raiseExceptions = raise_exceptions
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    bot.handlers[:], bot.level, bot.propagate = bot_state
