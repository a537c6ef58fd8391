"""`relay init` and `relay db upgrade` on real files: the config it writes loads, keys are
private, the database is at the newest schema, and mistakes are one clear line."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from keys import Keyring
from relay.cli.main import app
from relay.config import ConfigError, ScopeKind, load_config
from relay.store.db import make_engine
from relay.store.migrate import current_revision, head_revision

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"
BOT = "+15550177321"
ACI = "7a3c2f1e-8b9d-4c1e-9a3a-6f1a2b3c4d5e"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative defaults (relay-data/, relay-keys/) land in the test's directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def init(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["init", *args], input=stdin)


def flags(example: str = "blank", **extra: str) -> list[str]:
    args = ["--non-interactive", "--example", example, "--bot-number", BOT]
    if example == "blank":
        args += ["--org-name", "Riverside Tenants", "--coordinator-name", "Sam Okafor",
                 "--coordinator-aci", ACI]
    for key, value in extra.items():
        args += ["--" + key.replace("_", "-"), value]
    return args


def assert_private_keys(directory: Path) -> None:
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def assert_at_head(url: str) -> None:
    engine = make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def assert_nothing_secret(result: Result) -> None:
    for secret in (BOT, BOT[1:], ACI):
        assert secret not in result.output


@pytest.mark.parametrize("example", ["mpp", "score", "caracol", "labour"])
def test_from_each_example(tmp_path: Path, example: str) -> None:
    result = init(*flags(example, timezone="Europe/Berlin", service="10.0.0.5:8080"))
    assert result.exit_code == 0, result.output
    assert_nothing_secret(result)
    path = tmp_path / "relay.toml"
    cfg = load_config(path, allow_pending_groups=True)
    original = tomllib.loads((EXAMPLES / f"{example}.toml").read_text("utf-8"))
    assert cfg.signal.bot_number == BOT
    assert cfg.signal.service == "10.0.0.5:8080"
    assert cfg.organisation.timezone == "Europe/Berlin"
    assert cfg.organisation.name == original["organisation"]["name"]  # the example's default
    assert [o.id for o in cfg.officers] == [o["id"] for o in original["officers"]]
    teams = [s for s in cfg.scopes if s.kind is ScopeKind.TEAM]
    assert teams
    assert all(s.group_id is None for s in teams)
    assert cfg.coordination.group_id is None
    text = path.read_text("utf-8")
    assert "PLACEHOLDERS: the [[officers]] below are the example's made-up people" in text
    example_comments = [line for line in (EXAMPLES / f"{example}.toml").read_text(
        "utf-8").splitlines() if line.startswith("# ") and "group_id" not in line]
    assert all(line in text for line in example_comments)
    # Strict mode (relay run) still refuses, naming the command for each pending group.
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = [str(p) for p in caught.value.problems]
    for scope in teams:
        assert any(f"`relay groups create {scope.id}`" in line for line in lines), lines
    assert_private_keys(tmp_path / "relay-keys" / example)
    assert_at_head(f"sqlite:///{tmp_path / 'relay-data' / f'{example}.db'}")
    for scope in teams:
        assert f"relay groups create {scope.id} -c relay.toml" in result.stdout
    assert "relay register -c relay.toml --captcha TOKEN" in result.stdout
    assert "relay profile set NAME -c relay.toml" in result.stdout
    assert "relay doctor -c relay.toml" in result.stdout


def test_labour_coordination_group_is_pending_too(tmp_path: Path) -> None:
    result = init(*flags("labour", webhook_listen="127.0.0.1:8089"))
    assert result.exit_code == 0, result.output
    cfg = load_config(tmp_path / "relay.toml", allow_pending_groups=True)
    assert cfg.signal.webhook_listen == "127.0.0.1:8089"
    assert cfg.coordination.channel.value == "group"
    assert "relay groups create --coordination -c relay.toml" in result.stdout


def test_blank_on_each_database(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "conf" / "org.toml"
    result = init("-c", str(config), *flags(storage_url=db_url, keys_dir="k",
                                            webhook_listen="127.0.0.1:8090"))
    assert result.exit_code == 0, result.output
    assert_nothing_secret(result)
    cfg = load_config(config, allow_pending_groups=True)
    assert cfg.signal.webhook_listen == "127.0.0.1:8090"
    assert cfg.organisation.name == "Riverside Tenants"
    assert cfg.organisation.short_name == "Riverside Tenants"
    (officer,) = cfg.officers
    assert (officer.id, officer.display_name, officer.aci) == ("sam-okafor", "Sam Okafor", ACI)
    assert [o.id for o in cfg.coordinators()] == ["sam-okafor"]
    (scope,) = cfg.scopes
    assert scope.kind is ScopeKind.TEAM
    assert scope.group_id is None
    assert cfg.categories
    assert cfg.help_kinds
    assert_private_keys(tmp_path / "k")
    Keyring.load(tmp_path / "k")  # the keys open
    assert_at_head(db_url)
    assert f"relay groups create team -c {config}" in result.stdout
    # ... and `db upgrade` then finds it current.
    again = CliRunner().invoke(app, ["db", "upgrade", "-c", str(config)])
    assert again.exit_code == 0, again.output
    assert "already current" in again.stdout


def test_sqlite_directory_is_created_private(tmp_path: Path) -> None:
    result = init(*flags(storage_url="sqlite:///data/deep/relay.db"))
    assert result.exit_code == 0, result.output
    for directory in (tmp_path / "data", tmp_path / "data" / "deep"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text("# mine\n", encoding="utf-8")
    result = init(*flags())
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "relay init: relay.toml already exists; pass --force to overwrite it, or -c PATH to "
        "write a new file")
    assert path.read_text("utf-8") == "# mine\n"
    assert not (tmp_path / "relay-keys").exists()


def test_force_overwrites_and_keeps_existing_keys(tmp_path: Path) -> None:
    assert init(*flags()).exit_code == 0
    root = (tmp_path / "relay-keys" / "root.key").read_bytes()
    result = init(*flags(timezone="Asia/Tokyo"), "--force")
    assert result.exit_code == 0, result.output
    assert "already holds keys; kept them" in result.stdout
    assert (tmp_path / "relay-keys" / "root.key").read_bytes() == root
    assert load_config(tmp_path / "relay.toml",
                       allow_pending_groups=True).organisation.timezone == "Asia/Tokyo"


def test_missing_flags_are_one_line_each(tmp_path: Path) -> None:
    result = init("--non-interactive", "--example", "mpp")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "relay init: --bot-number is required with --non-interactive (the bot's Signal "
        "number, e.g. +4915112345678)")
    assert not (tmp_path / "relay.toml").exists()


def test_invalid_flag_names_the_flag_and_the_reason(tmp_path: Path) -> None:
    result = init(*flags(timezone="Mars/Olympus", key_source="vault"))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "relay init: --timezone: unknown time zone; use an IANA name such as 'Europe/London'",
        "relay init: --key-source: expected one of: 'directory', 'credentials', 'passphrase'",
    ]
    assert not (tmp_path / "relay.toml").exists()


def test_coordinator_flags_only_with_blank(tmp_path: Path) -> None:
    result = init(*flags("mpp", coordinator_name="Sam"))
    assert result.exit_code == 2
    assert "--coordinator-name: only used with --example blank" in result.stderr
    assert not (tmp_path / "relay.toml").exists()


def test_interactive_wizard_re_asks_an_invalid_answer(tmp_path: Path) -> None:
    answers = "".join(line + "\n" for line in [
        "blank",  # example
        "Harbour Collective",  # organisation name
        "",  # short name: the default
        "Mars/Olympus",  # time zone: invalid, re-asked
        "Europe/Lisbon",
        BOT,  # bot number
        "",  # service: default
        "",  # database: default
        "",  # keys directory: default
        "",  # key source: default
        "Rui",  # coordinator name
        "not-a-uuid",  # coordinator aci: invalid, re-asked
        ACI,
        "y",  # write it
    ])
    result = init(stdin=answers)
    assert result.exit_code == 0, result.output
    assert "unknown time zone; use an IANA name such as 'Europe/London'; please try again" in (
        result.output)
    assert "expected a Signal ACI" in result.output
    assert "Time zone (IANA name, e.g. Europe/London) [UTC]:" in result.output
    assert "relay init will write relay.toml:" in result.output
    assert "bot-number         (given, not shown)" in result.output
    cfg = load_config(tmp_path / "relay.toml", allow_pending_groups=True)
    assert cfg.organisation.name == "Harbour Collective"
    assert cfg.organisation.timezone == "Europe/Lisbon"
    assert cfg.storage.url == "sqlite:///relay-data/relay.db"
    assert cfg.officers[0].aci == ACI
    assert_private_keys(tmp_path / "relay-keys")


def test_interactive_no_writes_nothing(tmp_path: Path) -> None:
    result = init("--example", "mpp", "--bot-number", BOT, "--org-name", "MPP Local",
                  stdin="\n" * 6 + "n\n")  # six defaults, then "no"
    assert result.exit_code == 1
    assert "nothing written" in result.stderr
    assert not (tmp_path / "relay.toml").exists()
    assert not (tmp_path / "relay-keys").exists()


def test_passphrase_asked_twice_hidden_and_re_asked(tmp_path: Path) -> None:
    short, good = "too short", "correct horse battery staple"
    given = flags(key_source="passphrase", timezone="UTC", service="127.0.0.1:8080",
                  storage_url="sqlite:///relay-data/relay.db", keys_dir="relay-keys")
    # interactive (no --non-interactive): only the short name is asked, then "write it?"
    result = init(*given[1:], stdin=f"\ny\n{short}\n{short}\n{good}\n{good}\n")
    assert result.exit_code == 0, result.output
    assert "at least 12 characters long; please try again" in result.output
    assert good not in result.output
    from keys import load_root_from_passphrase
    load_root_from_passphrase(tmp_path / "relay-keys", good)  # the keys open with it
    assert_private_keys(tmp_path / "relay-keys")


def test_passphrase_from_stdin_when_non_interactive(tmp_path: Path) -> None:
    result = init(*flags(key_source="passphrase"), stdin="")
    assert result.exit_code == 2
    assert "give the new passphrase as one line on standard input" in result.stderr
    assert not (tmp_path / "relay.toml").exists()


def test_credentials_source_without_systemd_says_what_to_do(tmp_path: Path) -> None:
    result = init(*flags(key_source="credentials"))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("relay init: keys: keys.source is 'credentials' but "
                           "$CREDENTIALS_DIRECTORY is not set")
    assert line.endswith("then run `relay keys init -c relay.toml`")
    load_config(tmp_path / "relay.toml", allow_pending_groups=True)  # the config was written
    assert_at_head(f"sqlite:///{tmp_path / 'relay-data' / 'relay.db'}")


def test_db_upgrade_from_empty_then_current(tmp_path: Path) -> None:
    assert init(*flags()).exit_code == 0
    (tmp_path / "relay-data" / "relay.db").unlink()
    first = CliRunner().invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == (
        f"database relay-data/relay.db: upgraded from empty to schema revision {head_revision()}")
    second = CliRunner().invoke(app, ["db", "upgrade"])
    assert second.stdout.strip() == (
        f"database relay-data/relay.db: already current (schema revision {head_revision()})")


def test_db_upgrade_error_is_one_line(tmp_path: Path) -> None:
    assert init(*flags(storage_url="sqlite:///blocker/relay.db")).exit_code == 0
    (tmp_path / "blocker" / "relay.db").unlink()
    (tmp_path / "blocker").rmdir()
    (tmp_path / "blocker").write_text("a file, not a directory", encoding="utf-8")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("relay db upgrade: cannot ")
    assert "Traceback" not in result.output
