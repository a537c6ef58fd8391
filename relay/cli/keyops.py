"""`relay keys rotate`, `relay keys verify` and `relay purge` (registered by `register`).

Output is ids, counts and epoch labels only: never content, identities or key bytes.
Key errors print one line and exit 2; a row that fails to open or re-wrap exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from keys import Keyring
    from relay.config import OrgConfig

ConfigOpt = typer.Option(Path("relay.toml"), "--config", "-c", help="organisation TOML file")


def _load(config: Path) -> OrgConfig:
    from relay.cli.common import load_or_exit

    return load_or_exit(config)


@contextmanager
def _opened(cfg: OrgConfig, command: str) -> Iterator[tuple[Keyring, Engine,
                                                              sessionmaker[Session]]]:
    """Keyring, engine and sessions; key and database errors become one line and exit 2."""
    from sqlalchemy.exc import SQLAlchemyError

    from keys import KeyringError
    from relay.keysource import load_keyring
    from relay.store.db import make_engine, make_sessionmaker
    from relay.store.migrate import ensure_schema

    try:
        keyring = load_keyring(cfg)
    except KeyringError as exc:
        print(f"relay {command}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    engine = None
    try:
        engine = make_engine(cfg.storage.url)
        ensure_schema(engine)
        yield keyring, engine, make_sessionmaker(engine)
    except KeyringError as exc:
        print(f"relay {command}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        print(f"relay {command}: database error at storage.url ({type(exc).__name__}); "
              "check the URL, that the server is running, and the file permissions",
              file=sys.stderr)
        raise typer.Exit(2) from None
    finally:
        if engine is not None:
            engine.dispose()


class _Counter:
    """A one-line progress counter on stderr (rewritten in place on a terminal)."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        self._last = (done, total)
        if self._tty:
            sys.stderr.write(f"\rre-wrapping data keys: {done}/{total}")
            sys.stderr.flush()

    def finish(self) -> None:
        if self._last is None:
            return
        done, total = self._last
        prefix = "\r" if self._tty else ""
        sys.stderr.write(f"{prefix}re-wrapping data keys: {done}/{total}\n")


def keys_rotate(
    config: Path = ConfigOpt,
    batch: int = typer.Option(500, "--batch", min=1, help="rows re-wrapped per transaction"),
) -> None:
    """New generation of the current epoch key; re-wrap every data key; retire the old one.

    Safe to interrupt: running it again finishes the same rotation.
    """
    from relay.clock import SystemClock
    from relay.rotation import rotate

    cfg = _load(config)
    counter = _Counter()
    with _opened(cfg, "keys rotate") as (keyring, _engine, sessions):
        try:
            report = rotate(sessions, keyring, SystemClock().now(), batch=batch,
                            progress=counter)
        finally:
            counter.finish()
    how = "new key" if report.created else "resumed the unfinished rotation to"
    print(f"{how} {report.kek_id} (epoch {report.epoch})")
    per_table = ", ".join(f"{name} {n}" for name, n in report.rewrapped.items())
    print(f"re-wrapped {report.total} data key(s)" + (f" ({per_table})" if per_table else ""))
    if report.retired:
        print(f"retired {', '.join(report.retired)}")
    if not report.finished:
        print(f"relay keys rotate: {report.remaining} row(s) still use "
              f"{', '.join(report.previous)}, which is kept until they are fixed:",
              file=sys.stderr)
        for failure in report.failed:
            print(f"  {failure.table} {failure.row_id}: {failure.kind}", file=sys.stderr)
        print("run `relay keys verify` for details, then `relay keys rotate` again",
              file=sys.stderr)
        raise typer.Exit(1)


def keys_verify(config: Path = ConfigOpt) -> None:
    """Open every sealed field of every row; list rows that fail (ids only). Exit 1 if any."""
    from relay.verify import verify

    cfg = _load(config)
    with _opened(cfg, "keys verify") as (keyring, _engine, sessions):
        report = verify(sessions, keyring)
    for name, counts in report.tables.items():
        print(f"{name}: {counts.ok} ok, {counts.tampered} tampered, "
              f"{counts.key_destroyed} key destroyed")
    for failure in report.failures:
        print(f"FAIL {failure.table} {failure.row_id} {failure.column}: {failure.kind}")
    if not report.ok:
        print(f"relay keys verify: {len(report.failures)} row(s) failed to open",
              file=sys.stderr)
        raise typer.Exit(1)
    print("ok: every sealed field opened")


def purge_command(
    config: Path = ConfigOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="count only; change nothing"),  # noqa: FBT003
) -> None:
    """Apply retention: delete expired rows, destroy unused epoch keys, compact the database."""
    from relay.clock import SystemClock
    from relay.retention import purge

    cfg = _load(config)
    with _opened(cfg, "purge") as (keyring, engine, sessions):
        report = purge(sessions, engine, keyring, cfg, SystemClock().now(), dry_run=dry_run)
    verb, shred = ("would delete", "would destroy") if dry_run else ("deleted", "destroyed")
    print(f"{verb}: {report.reporter_links} reporter link(s), {report.cases} case(s) "
          f"({report.case_messages} message(s), {report.case_outbox} outbox row(s)), "
          f"{report.inbox} inbox row(s), {report.outbox} outbox row(s)")
    if report.moderation_warnings or report.moderation_votes or report.moderation_subjects:
        print(f"{verb} from the moderation ledger: {report.moderation_warnings} expired "
              f"warning(s), {report.moderation_votes} closed vote(s), "
              f"{report.moderation_subjects} warned subject(s) with nothing left")
    print(f"{shred} epoch key(s): {', '.join(report.epochs_destroyed) or 'none'}")
    if not dry_run:
        print("database compacted" if report.compacted else
              "warning: the SQLite WAL could not be truncated (another process was reading);"
              " run purge again when relay is idle")


def register(app: typer.Typer, keys_app: typer.Typer) -> None:
    keys_app.command("rotate")(keys_rotate)
    keys_app.command("verify")(keys_verify)
    app.command("purge")(purge_command)
