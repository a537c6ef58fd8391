"""`relay audit verify` on a real database: intact, an edited row, a deleted row."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import delete, update
from typer.testing import CliRunner

from relay import audit
from relay.cli.main import app
from relay.clock import FakeClock
from relay.store.db import make_engine, make_sessionmaker
from relay.store.migrate import ensure_schema
from relay.store.models import AuditEntry

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "mpp.toml"


def _config(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text("utf-8").replace(
        'url = "sqlite:///relay-data/mpp.db"', f'url = "sqlite:///{tmp_path / "relay.db"}"')
    path = tmp_path / "relay.toml"
    path.write_text(text, "utf-8")
    return path


def test_audit_verify_detects_an_edited_and_a_deleted_row(tmp_path: Path,
                                                          clock: FakeClock) -> None:
    config = _config(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'relay.db'}")
    ensure_schema(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        for i in range(5):
            audit.append(s, "case.claimed", clock.now(), case_ref=f"AAA-A{i + 2}",
                         actor_ref="rc-rowan")
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "-c", str(config)])
    assert ok.exit_code == 0, ok.stderr
    assert "5 entries" in ok.stdout
    engine.dispose()  # the last connection checkpoints the WAL into the file
    shutil.copy(tmp_path / "relay.db", tmp_path / "pristine.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'relay.db'}")
    sessions = make_sessionmaker(engine)

    with sessions.begin() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor_ref="rc-devi"))
    edited = runner.invoke(app, ["audit", "verify", "-c", str(config)])
    assert edited.exit_code == 1
    assert "entry 3 was altered" in edited.stderr

    engine.dispose()
    shutil.copy(tmp_path / "pristine.db", tmp_path / "relay.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'relay.db'}")
    with make_sessionmaker(engine).begin() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    engine.dispose()
    deleted = runner.invoke(app, ["audit", "verify", "-c", str(config)])
    assert deleted.exit_code == 1
    assert "seq gap at 2" in deleted.stderr


def test_audit_verify_on_a_missing_or_empty_database_says_what_to_run(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    missing = runner.invoke(app, ["audit", "verify", "-c", str(config)])
    assert missing.exit_code == 2
    assert "no database at storage.url" in missing.output
    assert not (tmp_path / "relay.db").exists()  # checking must not create an empty file
    make_engine(f"sqlite:///{tmp_path / 'relay.db'}").connect().close()  # an empty file
    empty = runner.invoke(app, ["audit", "verify", "-c", str(config)])
    assert empty.exit_code == 2
    assert "relay db upgrade" in empty.output
    assert "Traceback" not in empty.output
