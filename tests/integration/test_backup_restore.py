"""deploy/backup.sh and deploy/restore.sh, run for real on relay databases with real keys.

A SQLite file and a PostgreSQL database (a temporary database created and dropped here) are
filled with real cases, backed up into separate archives, restored into a fresh place, and
checked the way an operator would: `relay keys verify`, `relay audit verify`, and reading a
case's reporter back with the restored keys.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from handlers.flows.catalog import Catalog
from keys import RootSecret, init_keys_dir
from relay.cases import reporter_of
from relay.clock import FakeClock
from relay.config import OrgConfig, load_config
from relay.keysource import load_keyring
from relay.store.db import make_engine, make_sessionmaker
from relay.store.migrate import ensure_schema
from relay.store.models import Case
from relay.store.sealing import Sealer
from tests.conftest import PG_URL, require_pg
from tests.integration.test_rotation import EXAMPLE, NARRATIVE, reporter, seed

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "deploy" / "backup.sh"
RESTORE = ROOT / "deploy" / "restore.sh"
BIN = Path(sys.executable).parent
CASES = 2


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHON"] = sys.executable
    env.update(extra)
    return env


def _run(script: Path, *args: str | Path, cwd: Path,
         **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *map(str, args)], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=180, check=False)


def _config(path: Path, url: str, keys_dir: Path, source: str = "directory") -> Path:
    body = EXAMPLE.read_text("utf-8")
    body = body.replace('url = "sqlite:///relay-data/mpp.db"', f'url = "{url}"')
    body = body.replace('directory = "relay-keys/mpp"', f'directory = "{keys_dir}"')
    body = body.replace('source = "directory"', f'source = "{source}"')
    path.write_text(body, "utf-8")
    return path


def _seed(config: Path, clock: FakeClock) -> list[str]:
    """Real cases, inbox rows and a conversation, sealed with the config's keyring."""
    cfg = load_config(config)
    keyring = load_keyring(cfg)
    engine = make_engine(cfg.storage.url)
    try:
        ensure_schema(engine)
        return seed(make_sessionmaker(engine), Sealer(keyring, clock), cfg,
                    Catalog(cfg.texts), clock, cases=CASES)
    finally:
        engine.dispose()


def _reporters_readable(config: Path, clock: FakeClock, case_ids: list[str]) -> None:
    """The restored database opens with the restored keys: each case's reporter reads back."""
    cfg: OrgConfig = load_config(config)
    sealer = Sealer(load_keyring(cfg), clock)
    engine = make_engine(cfg.storage.url)
    try:
        with make_sessionmaker(engine).begin() as s:
            assert sorted(s.scalars(select(Case.id))) == sorted(case_ids)
            for index, case_id in enumerate(case_ids):
                assert reporter_of(s, sealer, case_id) == reporter(index)
    finally:
        engine.dispose()


def _archives(out: Path, pattern: str) -> Path:
    found = sorted(out.glob(pattern))
    assert len(found) == 1, (pattern, sorted(p.name for p in out.iterdir()))
    return found[0]


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# -- SQLite --------------------------------------------------------------------------------


def test_sqlite_round_trip_restores_a_readable_relay(tmp_path: Path, clock: FakeClock) -> None:
    live, backups, keys_medium, fresh = (tmp_path / n for n in ("live", "b", "k", "fresh"))
    live.mkdir()
    fresh.mkdir()
    config = _config(live / "relay.toml", f"sqlite:///{live / 'data' / 'relay.db'}",
                     live / "keys")
    init_keys_dir(live / "keys", clock.now(), "quarter")
    case_ids = _seed(config, clock)
    signal_dir = live / "signal-cli"
    (signal_dir / "data").mkdir(parents=True)
    (signal_dir / "data" / "account.db").write_bytes(b"signal-cli account")

    done = _run(BACKUP, "-c", config, "-o", backups, "--keys-out", keys_medium,
                "--signal-cli-dir", signal_dir, cwd=live)
    assert done.returncode == 0, done.stderr
    db = _archives(backups, "relay-db-*.sqlite")
    keys = _archives(keys_medium, "relay-keys-*.tar")
    sig = _archives(backups, "signal-cli-*.tar.gz")
    assert not list(backups.glob("relay-keys-*")), "the keys archive must go to --keys-out only"
    assert db.name.removeprefix("relay-db-").removesuffix(".sqlite") == \
        keys.name.removeprefix("relay-keys-").removesuffix(".tar"), "one timestamp per run"
    for archive in (db, keys, sig):
        assert _mode(archive) == 0o600, archive
        assert (archive.parent / (archive.name + ".sha256")).exists()
    # The database archive holds ciphertext only, and never the key that opens it.
    db_bytes = db.read_bytes()
    assert (live / "keys" / "root.key").read_bytes() not in db_bytes
    assert NARRATIVE.encode() not in db_bytes
    number = reporter(0).number
    assert number is not None
    assert number.encode() not in db_bytes

    config2 = _config(fresh / "relay.toml", f"sqlite:///{fresh / 'data' / 'relay.db'}",
                      fresh / "keys")
    restored = _run(RESTORE, "-c", config2, "--db", db, "--keys", keys,
                    "--signal-cli", sig, "--signal-cli-dir", fresh / "signal-cli", cwd=fresh)
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert "ok: every sealed field opened" in restored.stdout
    assert "audit: ok" in restored.stdout
    assert "relay doctor" in restored.stdout
    assert _mode(fresh / "keys") == 0o700
    assert _mode(fresh / "keys" / "root.key") == 0o600
    assert (fresh / "signal-cli" / "data" / "account.db").read_bytes() == b"signal-cli account"
    _reporters_readable(config2, clock, case_ids)


def test_restore_refuses_to_overwrite_without_force(tmp_path: Path, clock: FakeClock) -> None:
    live, backups = tmp_path / "live", tmp_path / "b"
    live.mkdir()
    config = _config(live / "relay.toml", f"sqlite:///{live / 'relay.db'}", live / "keys")
    init_keys_dir(live / "keys", clock.now(), "quarter")
    case_ids = _seed(config, clock)
    assert _run(BACKUP, "-c", config, "-o", backups, cwd=live).returncode == 0
    db, keys = _archives(backups, "relay-db-*.sqlite"), _archives(backups, "relay-keys-*.tar")
    before = hashlib.sha256((live / "relay.db").read_bytes()).hexdigest()

    refused = _run(RESTORE, "-c", config, "--db", db, "--keys", keys, cwd=live)
    assert refused.returncode == 1
    assert "refusing to overwrite" in refused.stderr
    assert hashlib.sha256((live / "relay.db").read_bytes()).hexdigest() == before

    forced = _run(RESTORE, "-c", config, "--db", db, "--keys", keys, "--force", cwd=live)
    assert forced.returncode == 0, forced.stderr + forced.stdout
    assert len(list(live.glob("relay.db.replaced-*"))) == 1, "the old database is kept aside"
    assert len(list(live.glob("keys.replaced-*"))) == 1
    _reporters_readable(config, clock, case_ids)


def test_restore_stops_on_a_damaged_archive_or_keys_that_do_not_fit(
    tmp_path: Path, clock: FakeClock,
) -> None:
    live, backups, fresh = tmp_path / "live", tmp_path / "b", tmp_path / "fresh"
    live.mkdir()
    fresh.mkdir()
    config = _config(live / "relay.toml", f"sqlite:///{live / 'relay.db'}", live / "keys")
    init_keys_dir(live / "keys", clock.now(), "quarter")
    _seed(config, clock)
    assert _run(BACKUP, "-c", config, "-o", backups, cwd=live).returncode == 0
    db, keys = _archives(backups, "relay-db-*.sqlite"), _archives(backups, "relay-keys-*.tar")
    config2 = _config(fresh / "relay.toml", f"sqlite:///{fresh / 'relay.db'}", fresh / "keys")

    damaged = tmp_path / "damaged" / db.name
    damaged.parent.mkdir()
    blob = bytearray(db.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    damaged.write_bytes(bytes(blob))
    (damaged.parent / (db.name + ".sha256")).write_text(
        (db.parent / (db.name + ".sha256")).read_text())
    bad = _run(RESTORE, "-c", config2, "--db", damaged, "--keys", keys, cwd=fresh)
    assert bad.returncode == 1
    assert "damaged or altered" in bad.stderr
    assert not (fresh / "relay.db").exists()
    assert not (fresh / "keys").exists()

    # Keys from another installation: the restore completes, and the check catches it.
    other = tmp_path / "other"
    other.mkdir()
    init_keys_dir(other / "keys", clock.now(), "quarter")
    other_cfg = _config(other / "relay.toml", f"sqlite:///{other / 'relay.db'}",
                        other / "keys")
    _seed(other_cfg, clock)
    assert _run(BACKUP, "-c", other_cfg, "-o", other / "b", cwd=other).returncode == 0
    wrong = _run(RESTORE, "-c", config2, "--db", db,
                 "--keys", _archives(other / "b", "relay-keys-*.tar"), cwd=fresh)
    assert wrong.returncode == 1
    assert "relay keys verify failed" in wrong.stderr


def test_credentials_source_backs_up_the_root_secret_with_the_keys_only(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    live, backups, fresh = tmp_path / "live", tmp_path / "b", tmp_path / "fresh"
    (live / "creds").mkdir(parents=True)
    fresh.mkdir()
    secret = os.urandom(32)
    (live / "creds" / "relay-root").write_bytes(secret)
    (live / "creds" / "relay-root").chmod(0o400)
    config = _config(live / "relay.toml", f"sqlite:///{live / 'relay.db'}", live / "keys",
                     source="credentials")
    init_keys_dir(live / "keys", clock.now(), "quarter", root=RootSecret(secret))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(live / "creds"))
    case_ids = _seed(config, clock)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")

    missing = _run(BACKUP, "-c", config, "-o", backups, cwd=live)
    assert missing.returncode == 1
    assert "--root-credential" in missing.stderr
    assert not backups.exists() or not list(backups.iterdir())

    done = _run(BACKUP, "-c", config, "-o", backups, "--root-credential",
                live / "creds" / "relay-root", cwd=live)
    assert done.returncode == 0, done.stderr
    db, keys = _archives(backups, "relay-db-*.sqlite"), _archives(backups, "relay-keys-*.tar")
    assert secret not in db.read_bytes()
    assert secret in keys.read_bytes()

    (fresh / "creds").mkdir()
    config2 = _config(fresh / "relay.toml", f"sqlite:///{fresh / 'relay.db'}",
                      fresh / "keys", source="credentials")
    restored = _run(RESTORE, "-c", config2, "--db", db, "--keys", keys,
                    "--root-credential-to", fresh / "creds" / "relay-root", cwd=fresh)
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert "ok: every sealed field opened" in restored.stdout
    assert (fresh / "creds" / "relay-root").read_bytes() == secret
    assert _mode(fresh / "creds" / "relay-root") == 0o600
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(fresh / "creds"))
    _reporters_readable(config2, clock, case_ids)


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def pg_databases() -> Iterator[tuple[str, str]]:
    """Two empty temporary databases (source and restore target), dropped afterwards."""
    require_pg()
    names = [f"relay_bk_{uuid.uuid4().hex[:10]}", f"relay_rs_{uuid.uuid4().hex[:10]}"]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = make_url(PG_URL)
    urls = [base.set(database=name).render_as_string(hide_password=False) for name in names]
    yield urls[0], urls[1]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_postgres_round_trip_with_pg_dump_and_pg_restore(
    tmp_path: Path, clock: FakeClock, pg_databases: tuple[str, str],
) -> None:
    source_url, target_url = pg_databases
    live, backups, fresh = tmp_path / "live", tmp_path / "b", tmp_path / "fresh"
    live.mkdir()
    fresh.mkdir()
    config = _config(live / "relay.toml", source_url, live / "keys")
    init_keys_dir(live / "keys", clock.now(), "quarter")
    case_ids = _seed(config, clock)

    done = _run(BACKUP, "-c", config, "-o", backups, cwd=live)
    assert done.returncode == 0, done.stderr
    dump = _archives(backups, "relay-db-*.pgdump")
    assert dump.read_bytes()[:5] == b"PGDMP", "pg_dump's custom format"
    assert NARRATIVE.encode() not in dump.read_bytes()
    keys = _archives(backups, "relay-keys-*.tar")

    config2 = _config(fresh / "relay.toml", target_url, fresh / "keys")
    restored = _run(RESTORE, "-c", config2, "--db", dump, "--keys", keys, cwd=fresh)
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert "ok: every sealed field opened" in restored.stdout
    assert "audit: ok" in restored.stdout
    _reporters_readable(config2, clock, case_ids)

    # The target now has relay's tables: a second restore is refused without --force.
    (fresh / "keys2").mkdir()
    config3 = _config(fresh / "relay3.toml", target_url, fresh / "keys2")
    refused = _run(RESTORE, "-c", config3, "--db", dump, cwd=fresh)
    assert refused.returncode == 1
    assert "refusing to" in refused.stderr
    forced = _run(RESTORE, "-c", config2, "--db", dump, "--force", cwd=fresh)
    assert forced.returncode == 0, forced.stderr + forced.stdout
    _reporters_readable(config2, clock, case_ids)
