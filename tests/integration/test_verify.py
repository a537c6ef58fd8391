"""`verify` opens every sealed field: counts per table, failing row ids, never content.

Also runs the CLI commands (`relay keys verify|rotate`, `relay purge --dry-run`) on a real
config file pointing at the test database and keys directory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from handlers.flows.catalog import Catalog
from keys import Keyring
from relay.cli.main import app
from relay.clock import FakeClock, SystemClock
from relay.config import OrgConfig
from relay.rotation import WRAPPED_TABLES, wrapped_table
from relay.store.models import Case, CaseMessage
from relay.store.sealing import Sealer
from relay.verify import FailureKind, VerifyFailure, verify
from tests.integration.test_rotation import (
    EXAMPLE,
    NARRATIVE,
    catalog,
    cfg,
    new_case,
    reporter,
    seed,
)

__all__ = ["catalog", "cfg"]  # shared fixtures


def _row_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions.begin() as s:
        counts = {
            name: s.scalar(select(func.count()).select_from(wrapped_table(name))) or 0
            for name in (*WRAPPED_TABLES, "case_messages")
        }
    return counts


def test_clean_database_verifies_ok(
    sessions: sessionmaker[Session], keyring: Keyring, sealer: Sealer, clock: FakeClock,
    cfg: OrgConfig, catalog: Catalog,
) -> None:
    seed(sessions, sealer, cfg, catalog, clock, cases=2)
    report = verify(sessions, keyring, batch=2)
    assert report.ok
    assert report.failures == ()
    expected = _row_counts(sessions)
    assert {name: c.ok for name, c in report.tables.items()} == expected
    assert all(c.tampered == c.key_destroyed == 0 for c in report.tables.values())
    assert expected["case_messages"] == 2
    assert expected["conversations"] == 1


def test_flipped_byte_in_case_details_is_reported_as_tampered(
    sessions: sessionmaker[Session], keyring: Keyring, sealer: Sealer, clock: FakeClock,
    cfg: OrgConfig, catalog: Catalog,
) -> None:
    case_ids = seed(sessions, sealer, cfg, catalog, clock, cases=3)
    target = case_ids[1]
    with sessions.begin() as s:
        blob = s.scalar(select(Case.details_sealed).where(Case.id == target))
        assert blob is not None
        middle = len(blob) // 2
        flipped = blob[:middle] + bytes([blob[middle] ^ 0x40]) + blob[middle + 1:]
        s.execute(update(Case).where(Case.id == target).values(details_sealed=flipped))

    report = verify(sessions, keyring)
    assert not report.ok
    assert report.failures == (VerifyFailure("cases", target, "details", FailureKind.TAMPERED),)
    assert (report.tables["cases"].ok, report.tables["cases"].tampered) == (2, 1)
    assert report.tables["case_messages"].ok == 3  # the case's DEK itself is intact
    assert NARRATIVE not in repr(report)
    assert reporter(1).aci not in repr(report)


def test_wrapped_deks_swapped_between_cases_are_both_reported(
    sessions: sessionmaker[Session], keyring: Keyring, sealer: Sealer, clock: FakeClock,
    cfg: OrgConfig, catalog: Catalog,
) -> None:
    first, second, third = seed(sessions, sealer, cfg, catalog, clock, cases=3)
    with sessions.begin() as s:
        a = s.scalar(select(Case.dek_wrapped).where(Case.id == first))
        b = s.scalar(select(Case.dek_wrapped).where(Case.id == second))
        s.execute(update(Case).where(Case.id == first).values(dek_wrapped=b))
        s.execute(update(Case).where(Case.id == second).values(dek_wrapped=a))
        rows = s.execute(select(CaseMessage.case_id, CaseMessage.id)).all()
    messages = {str(row[0]): str(row[1]) for row in rows}

    report = verify(sessions, keyring)
    failed = {(f.table, f.row_id, f.column, f.kind) for f in report.failures}
    assert failed == {
        ("cases", first, "dek", FailureKind.TAMPERED),
        ("cases", second, "dek", FailureKind.TAMPERED),
        ("case_messages", messages[first], "dek", FailureKind.TAMPERED),
        ("case_messages", messages[second], "dek", FailureKind.TAMPERED),
    }
    assert report.tables["cases"].ok == 1
    assert third not in {f.row_id for f in report.failures}


def test_rows_of_a_destroyed_epoch_are_reported_as_key_destroyed(
    sessions: sessionmaker[Session], keyring: Keyring, sealer: Sealer, clock: FakeClock,
    cfg: OrgConfig, catalog: Catalog,
) -> None:
    now = clock.now()
    clock.set(datetime(2026, 5, 1, tzinfo=UTC))
    old = new_case(sessions, sealer, cfg, catalog, clock, 5)
    clock.set(now)
    new_case(sessions, sealer, cfg, catalog, clock, 6)
    assert keyring.destroy_epoch("2026-q2") == ["2026-q2.1"]

    report = verify(sessions, keyring)
    kinds = {(f.table, f.kind) for f in report.failures}
    assert ("cases", FailureKind.KEY_DESTROYED) in kinds
    assert ("reporter_links", FailureKind.KEY_DESTROYED) in kinds
    assert ("case_messages", FailureKind.KEY_DESTROYED) in kinds
    assert old in {f.row_id for f in report.failures}
    assert report.tables["cases"].ok == 1
    assert report.tables["cases"].key_destroyed == 1
    assert all(f.kind is FailureKind.KEY_DESTROYED for f in report.failures)


# -- the CLI -----------------------------------------------------------------------------


def _config_file(tmp_path: Path, db_url: str, keys_dir: Path) -> Path:
    text = EXAMPLE.read_text()
    text = text.replace('url = "sqlite:///relay-data/mpp.db"', f'url = "{db_url}"')
    text = text.replace('directory = "relay-keys/mpp"', f'directory = "{keys_dir}"')
    path = tmp_path / "relay.toml"
    path.write_text(text)
    return path


def test_cli_verify_rotate_and_purge_dry_run(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session], keyring: Keyring,
    sealer: Sealer, clock: FakeClock, cfg: OrgConfig, catalog: Catalog,
) -> None:
    clock.set(SystemClock().now())  # the CLI reads the wall clock
    case_ids = seed(sessions, sealer, cfg, catalog, clock, cases=1)
    config = _config_file(tmp_path, db_url, keyring.path)
    runner = CliRunner()

    ok = runner.invoke(app, ["keys", "verify", "--config", str(config)])
    assert ok.exit_code == 0, ok.output
    assert "cases: 1 ok, 0 tampered, 0 key destroyed" in ok.output
    assert "ok: every sealed field opened" in ok.output

    rotated = runner.invoke(app, ["keys", "rotate", "--config", str(config), "--batch", "2"])
    assert rotated.exit_code == 0, rotated.output
    keyring.reload()
    active = [s.kek_id for s in keyring.status() if s.active]
    assert f"new key {active[-1]}" in rotated.output
    assert "re-wrapped " in rotated.output
    assert "retired " in rotated.output

    dry = runner.invoke(app, ["purge", "--config", str(config), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete: 0 reporter link(s), 0 case(s)" in dry.output

    with sessions.begin() as s:
        s.execute(update(Case).where(Case.id == case_ids[0])
                  .values(details_sealed=b"F1" + bytes(40)))
    bad = runner.invoke(app, ["keys", "verify", "--config", str(config)])
    assert bad.exit_code == 1
    assert f"FAIL cases {case_ids[0]} details: tampered" in bad.output
    for output in (ok.output, rotated.output, dry.output, bad.output):
        assert NARRATIVE not in output
        assert reporter(0).aci not in output


def test_cli_key_errors_exit_2(tmp_path: Path, db_url: str) -> None:
    config = _config_file(tmp_path, db_url, tmp_path / "no-such-keys")
    for args in (["keys", "verify"], ["keys", "rotate"], ["purge"]):
        result = CliRunner().invoke(app, [*args, "--config", str(config)])
        assert result.exit_code == 2, (args, result.output)
        assert "does not exist" in result.output
