"""`relay doctor` on this machine: config, keys directory, database schema, disk room,
and relay's own endpoints (webhook sink, health) when relay is not running."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from alembic import command
from sqlalchemy import text

from keys import RootSecret, init_keys_dir
from keys.kdf import KdfParams
from relay import webhook
from relay.doctor import DiskLimits, exit_code
from relay.store.db import make_engine
from relay.store.migrate import alembic_config, head_revision
from tests.integration.doctor_org import NOW, DoctorOrg, doctor_org, free_port

pytestmark = pytest.mark.asyncio

LIGHT_KDF = KdfParams(memory_kib=64, iterations=1, lanes=1)
GIB = 1024**3


def keys_dir(org: DoctorOrg) -> Path:
    return org.org.cfg.keys.directory


# -- config ------------------------------------------------------------------------------


async def test_a_valid_config_is_ok(org: DoctorOrg) -> None:
    line = (await org.lines())["config"]
    assert line.startswith("ok    config")
    assert f"{org.path}: 6 officer(s), 2 scope(s)" in line


async def test_a_broken_config_fails_names_the_field_and_skips_the_rest(org: DoctorOrg) -> None:
    org.set("signal", "bot_number", "0049 151 123")
    results = await org.run()
    lines = await org.lines()
    assert lines["config"].startswith("FAIL  config")
    assert "signal.bot_number: expected an E.164 number" in lines["config"]
    assert f"`relay config check {org.path}`" in lines["config"]
    assert "0049 151 123" not in "\n".join(lines.values())
    for name in ("api", "account", "groups", "keys", "database", "disk", "relay"):
        assert lines[name].split()[:4] == ["warn", name, "skipped:", "the"], name
        assert "see 'config' above" in lines[name]
    assert exit_code(results) == 1


async def test_a_bad_texts_override_fails(org: DoctorOrg) -> None:
    org.path.write_text(org.text.replace("[texts]", '[texts]\nno_such_message = "hi"', 1)
                        if "[texts]" in org.text
                        else org.text + '\n[texts]\nno_such_message = "hi"\n', "utf-8")
    line = (await org.lines())["config"]
    assert line.startswith("FAIL")
    assert "texts.no_such_message: unknown message id" in line


async def test_a_missing_config_file_names_relay_init(tmp_path: Path) -> None:
    from relay.doctor import render_lines, run_checks

    results = await run_checks(tmp_path / "nope.toml")
    line = render_lines(results)[0]
    assert line.startswith("FAIL  config")
    assert "file not found" in line
    assert "fix: create it with `relay init`, or pass -c PATH" in line
    assert exit_code(results) == 1


# -- keys --------------------------------------------------------------------------------


async def test_keys_that_load_and_verify_are_ok(org: DoctorOrg) -> None:
    line = (await org.lines())["keys"]
    assert line.startswith("ok    keys")
    assert "root key loads and its key-check value matches (1 epoch key(s))" in line


async def test_a_missing_keys_directory_fails_with_keys_init(org: DoctorOrg) -> None:
    shutil.rmtree(keys_dir(org))
    results = await org.run()
    line = (await org.lines())["keys"]
    assert line.startswith("FAIL  keys")
    assert f"keys.directory {keys_dir(org)} does not exist" in line
    assert f"`relay keys init -c {org.path}`" in line
    assert exit_code(results) == 1


async def test_an_open_keys_directory_fails_with_chmod_700(org: DoctorOrg) -> None:
    keys_dir(org).chmod(0o755)
    line = (await org.lines())["keys"]
    assert line.startswith("FAIL")
    assert "keys.directory has mode 0755, not 0700" in line
    assert f"chmod 700 {keys_dir(org)}" in line


async def test_a_readable_key_file_fails_with_chmod_600(org: DoctorOrg) -> None:
    (keys_dir(org) / "root.key").chmod(0o644)
    line = (await org.lines())["keys"]
    assert line.startswith("FAIL")
    assert "readable by others: root.key (files must be 0600)" in line
    assert f"chmod 600 {keys_dir(org) / 'root.key'}" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
async def test_a_key_file_of_another_user_fails(org: DoctorOrg) -> None:
    os.chown(keys_dir(org) / "keyring.bin", 4321, -1)
    line = (await org.lines())["keys"]
    assert line.startswith("FAIL")
    assert f"not owned by the current user (uid {os.getuid()}): keyring.bin" in line
    assert "sudo -u relay relay doctor" in line


async def test_a_missing_key_file_fails(org: DoctorOrg) -> None:
    (keys_dir(org) / "kcv.bin").unlink()
    line = (await org.lines())["keys"]
    assert line.startswith("FAIL")
    assert "missing: kcv.bin" in line
    assert "restore the keys directory from backup" in line


async def test_the_wrong_root_key_fails_the_key_check(org: DoctorOrg) -> None:
    root = keys_dir(org) / "root.key"
    root.write_bytes(os.urandom(32))
    results = await org.run()
    line = (await org.lines())["keys"]
    assert line.startswith("FAIL  keys")
    assert "key-check value failed" in line
    assert "fix: supply the root secret this keys directory was created with" in line
    assert exit_code(results) == 1


def _credential_keys(org: DoctorOrg, tmp_path: Path) -> tuple[Path, bytes]:
    shutil.rmtree(keys_dir(org))
    secret = os.urandom(32)
    init_keys_dir(keys_dir(org), NOW, "quarter", root=RootSecret(secret))
    org.set("keys", "source", "credentials")
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    (creds / "relay-root").write_bytes(secret)
    (creds / "relay-root").chmod(0o400)
    return creds, secret


async def test_credentials_are_checked_from_credentials_directory(
        org: DoctorOrg, tmp_path: Path) -> None:
    creds, _ = _credential_keys(org, tmp_path)
    line = (await org.lines(environ={"CREDENTIALS_DIRECTORY": str(creds)}))["keys"]
    assert line.startswith("ok")
    assert "key-check value matches" in line


async def test_credentials_without_credentials_directory_warn(
        org: DoctorOrg, tmp_path: Path) -> None:
    _credential_keys(org, tmp_path)
    results = await org.run(environ={})
    line = (await org.lines(environ={}))["keys"]
    assert line.startswith("warn")
    assert "$CREDENTIALS_DIRECTORY is not set" in line
    assert "LoadCredentialEncrypted=relay-root:<file>" in line
    assert exit_code(results) == 0


async def test_a_wrong_credential_fails(org: DoctorOrg, tmp_path: Path) -> None:
    creds, _ = _credential_keys(org, tmp_path)
    (creds / "relay-root").chmod(0o600)
    (creds / "relay-root").write_bytes(os.urandom(32))
    line = (await org.lines(environ={"CREDENTIALS_DIRECTORY": str(creds)}))["keys"]
    assert line.startswith("FAIL")
    assert "key-check value failed" in line


async def test_a_passphrase_is_never_asked_for(org: DoctorOrg) -> None:
    shutil.rmtree(keys_dir(org))
    init_keys_dir(keys_dir(org), NOW, "quarter", passphrase="correct horse battery",
                  kdf_params=LIGHT_KDF)
    org.set("keys", "source", "passphrase")
    line = (await org.lines())["keys"]  # stdin is never read: a prompt would hang or fail
    assert line.startswith("ok")
    assert "root key not checked (keys.source = passphrase, and the doctor never asks" in line
    (keys_dir(org) / "kdf.json").unlink()
    line = (await org.lines())["keys"]
    assert line.startswith("FAIL")
    assert "missing: kdf.json" in line


# -- database ----------------------------------------------------------------------------


@pytest.fixture
async def db_org(tmp_path: Path, db_url: str) -> AsyncIterator[DoctorOrg]:
    made = await doctor_org(tmp_path, db_url=db_url, setup=False)
    yield made
    await made.stop()


def _execute(url: str, *statements: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def _upgrade(url: str, revision: str = "head") -> None:
    engine = make_engine(url)
    cfg = alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


async def test_a_migrated_database_is_ok(db_org: DoctorOrg, db_url: str) -> None:
    _upgrade(db_url)
    line = (await db_org.lines())["database"]
    assert line.startswith("ok    database")
    assert f"schema at the newest revision ({head_revision()})" in line


async def test_a_database_without_schema_fails_with_db_upgrade(
        db_org: DoctorOrg, db_url: str) -> None:
    _execute(db_url, "CREATE TABLE unrelated (a INTEGER)")
    results = await db_org.run()
    line = (await db_org.lines())["database"]
    assert line.startswith("FAIL  database")
    assert "answers but has no relay schema" in line
    assert line.endswith(f"fix: `relay db upgrade -c {db_org.path}`")
    assert exit_code(results) == 1


async def test_an_old_schema_fails_with_db_upgrade(db_org: DoctorOrg, db_url: str) -> None:
    from alembic.script import ScriptDirectory

    revisions = [r.revision for r in ScriptDirectory.from_config(alembic_config())
                 .walk_revisions()]
    if len(revisions) < 2:
        pytest.skip("only one schema revision exists")
    _upgrade(db_url, revisions[-1])  # the first revision
    line = (await db_org.lines())["database"]
    assert line.startswith("FAIL")
    assert f"has schema revision {revisions[-1]}; this relay needs {head_revision()}" in line
    assert "relay db upgrade" in line


async def test_a_newer_schema_fails_with_install_the_newer_relay(
        db_org: DoctorOrg, db_url: str) -> None:
    _upgrade(db_url)
    _execute(db_url, "UPDATE alembic_version SET version_num = 'f00dfeed9999'")
    line = (await db_org.lines())["database"]
    assert line.startswith("FAIL")
    assert "has schema revision f00dfeed9999, newer than this relay" in line
    assert "install the relay version that wrote this database" in line


async def test_a_missing_sqlite_file_fails(tmp_path: Path) -> None:
    made = await doctor_org(tmp_path, setup=False)
    try:
        line = (await made.lines())["database"]
    finally:
        await made.stop()
    assert line.startswith("FAIL")
    assert "relay.db does not exist" in line
    assert "relay db upgrade" in line
    assert not (tmp_path / "mpp" / "relay.db").exists()  # the doctor created nothing


def _garble(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not sqlite" * 100)


async def test_a_file_that_is_not_a_database_fails(org: DoctorOrg) -> None:
    _garble(Path(org.org.cfg.storage.url.removeprefix("sqlite:///")))
    line = (await org.lines())["database"]
    assert line.startswith("FAIL")
    assert "cannot open the database" in line
    assert "DatabaseError" in line


async def test_an_unreachable_postgresql_fails_without_the_password(org: DoctorOrg) -> None:
    url = f"postgresql+psycopg://relay:s3cretpw@{free_port()}/relaydb"
    org.set("storage", "url", url)
    lines = await org.lines()
    assert lines["database"].startswith("FAIL")
    assert "cannot open the database PostgreSQL 127.0.0.1/relaydb (OperationalError)" in lines[
        "database"]
    assert "s3cretpw" not in "\n".join(lines.values())


# -- disk --------------------------------------------------------------------------------


async def test_disk_room(org: DoctorOrg) -> None:
    free = shutil.disk_usage(keys_dir(org)).free
    line = (await org.lines(limits=DiskLimits()))["disk"]
    expected = "FAIL" if free < 200 * 1024**2 else "warn" if free < GIB else "ok"
    assert line.split()[0] == expected
    assert "free where the database and keys live" in line


async def test_too_little_disk_fails_and_little_warns(org: DoctorOrg) -> None:
    huge = 1 << 62
    results = await org.run(limits=DiskLimits(fail_below=huge, warn_below=huge))
    line = (await org.lines(limits=DiskLimits(fail_below=huge, warn_below=huge)))["disk"]
    assert line.startswith("FAIL  disk")
    assert "free where the database and keys live (under" in line
    assert "move storage.url / keys.directory to a larger one" in line
    assert exit_code(results) == 1
    line = (await org.lines(limits=DiskLimits(fail_below=1, warn_below=huge)))["disk"]
    assert line.startswith("warn  disk")


async def test_postgresql_disk_is_left_to_its_server(org: DoctorOrg) -> None:
    org.set("storage", "url", f"postgresql+psycopg://relay@{free_port()}/relaydb")
    line = (await org.lines())["disk"]
    assert line.startswith("ok")
    assert "free where the keys live; the database is on PostgreSQL" in line


# -- relay's endpoints, relay not running ------------------------------------------------


async def test_no_webhook_warns_with_both_settings(org: DoctorOrg) -> None:
    results = await org.run()
    line = (await org.lines())["webhook"]
    assert line.startswith("warn  webhook")
    assert "messages that arrive while relay restarts are lost" in line
    assert "signal.webhook_listen" in line
    assert "RECEIVE_WEBHOOK_URL=http://<relay-host>:8081/v1/receive-webhook" in line
    assert exit_code(results) == 0


async def test_relays_webhook_sink_is_recognised(org: DoctorOrg) -> None:
    listen = free_port()
    org.set("signal", "webhook_listen", listen)
    received: list[list[str]] = []

    async def ingest(frames: list[str]) -> None:
        received.append(frames)

    runner = await webhook.start(ingest, listen)
    try:
        line = (await org.lines())["webhook"]
    finally:
        await runner.cleanup()
    assert line.startswith("ok    webhook")
    assert "relay's webhook sink answers at signal.webhook_listen" in line
    assert received == []  # a GET is not a frame


async def test_no_webhook_sink_and_no_relay_warns_relay_is_not_running(
        org: DoctorOrg) -> None:
    org.set("signal", "webhook_listen", free_port())
    org.set("health", "listen", free_port())
    lines = await org.lines()
    assert lines["webhook"].startswith("warn")
    assert "nothing answers at signal.webhook_listen: relay is not running" in lines["webhook"]
    assert f"`relay run -c {org.path}`" in lines["webhook"]
    assert lines["relay"].startswith("warn  relay")
    assert "relay is not running" in lines["relay"]


async def test_another_program_on_the_webhook_port_fails(org: DoctorOrg) -> None:
    listen = free_port()
    org.set("signal", "webhook_listen", listen)
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    host, _, port = listen.rpartition(":")
    await web.TCPSite(runner, host, int(port)).start()
    try:
        results = await org.run()
        line = (await org.lines())["webhook"]
    finally:
        await runner.cleanup()
    assert line.startswith("FAIL  webhook")
    assert "another program answers at signal.webhook_listen (HTTP 404)" in line
    assert "pick a free port for signal.webhook_listen" in line
    assert exit_code(results) == 1


async def test_a_health_endpoint_on_port_0_is_not_probed(org: DoctorOrg) -> None:
    line = (await org.lines())["relay"]
    assert line.startswith("ok    relay")
    assert "not checked" in line
