"""The `relay` console entry on real config files: `config check`, `run` refusals, `keys init`.

Every refusal must come before anything talks to Signal: `signal.service` points at
127.0.0.1:1, socket connects are recorded, and each refusal must be quick.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from keys import init_keys_dir
from relay.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"
ORGS = ("mpp", "score", "caracol", "labour")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
DEAD_SERVICE = "127.0.0.1:1"
QUICK_SECONDS = 5.0


# -- helpers --------------------------------------------------------------------------------


def _set(text: str, key: str, value: str) -> str:
    """Replace the one top-level-style `key = "..."` line of an example."""
    pattern = re.compile(rf'^{key} = ".*"$', re.MULTILINE)
    assert len(pattern.findall(text)) == 1, f"expected exactly one {key} line"
    return pattern.sub(lambda _: f'{key} = "{value}"', text)


def _after_header(text: str, header: str, line: str) -> str:
    """Insert `line` right below the `[header]` line."""
    marker = f"\n[{header}]\n"
    assert text.count(marker) == 1, f"expected exactly one [{header}]"
    return text.replace(marker, f"{marker}{line}\n")


def write_config(
    tmp_path: Path, org: str = "mpp", *, edit: str = "", name: str = "relay.toml"
) -> Path:
    """A copy of an example with storage, keys and Signal pointed somewhere harmless.

    `edit` is one of the named edits below, applied to the TOML text.
    """
    text = (EXAMPLES / f"{org}.toml").read_text("utf-8")
    text = _set(text, "url", f"sqlite:///{tmp_path / 'data' / 'relay.db'}")
    text = _set(text, "directory", str(tmp_path / "keys"))
    text = _set(text, "service", DEAD_SERVICE)
    if edit == "unknown key":
        text = _after_header(text, "intake", "allow_anonymus = true")
    elif edit == "bad bot number":
        text = _set(text, "bot_number", "0151 1234 5678")
    elif edit == "unknown text id":
        text = _after_header(text, "texts", 'farewel = "Bye."')
    elif edit == "unknown placeholder":
        text = _after_header(text, "texts", 'cancelled = "Stopped, {reporter_name}."')
    elif edit == "passphrase source":
        text = _set(text, "source", "passphrase")
    else:
        assert not edit, edit
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


# The problem line each edit must produce: (field named, words of the explanation).
EDITS = {
    "unknown key": ("intake.allow_anonymus", "unknown setting"),
    "bad bot number": ("signal.bot_number", "E.164"),
    "unknown text id": ("texts.farewel", "unknown message id"),
    "unknown placeholder": ("texts.cancelled", "{reporter_name}"),
}


def problem_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("  - ")]


def invoke(*args: str) -> tuple[Result, float]:
    started = time.monotonic()
    result = CliRunner().invoke(app, list(args))
    return result, time.monotonic() - started


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every address anything in the process tries to connect a socket to."""
    seen: list[object] = []

    def refuse(_sock: socket.socket, address: object) -> None:
        seen.append(address)
        raise ConnectionRefusedError(111, "refused by test")

    def refuse_ex(sock: socket.socket, address: object) -> int:
        refuse(sock, address)
        return 111  # pragma: no cover - refuse always raises

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_ex)
    return seen


@pytest.fixture
def no_signal(restore_logging: None, connects: list[object]) -> list[object]:
    """For `relay run` in-process: logging restored afterwards, socket connects recorded."""
    return connects


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- config check ---------------------------------------------------------------------------


@pytest.mark.parametrize("org", ORGS)
def test_config_check_passes_for_each_example(org: str) -> None:
    result, _ = invoke("config", "check", str(EXAMPLES / f"{org}.toml"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{EXAMPLES / f'{org}.toml'}: ok (")
    assert result.stderr == ""


@pytest.mark.parametrize("org", ORGS)
def test_config_check_passes_for_the_edited_copy(tmp_path: Path, org: str) -> None:
    """The helper's edits (tmp paths, dead service) keep every example valid."""
    result, _ = invoke("config", "check", str(write_config(tmp_path, org)))
    assert result.exit_code == 0, result.stderr
    assert ": ok (" in result.stdout


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("org", ["mpp", "labour"])
def test_config_check_names_the_field_of_each_problem(tmp_path: Path, org: str, edit: str) -> None:
    path = write_config(tmp_path, org, edit=edit)
    result, _ = invoke("config", "check", str(path))
    assert result.exit_code == 2
    assert "ok" not in result.stdout
    field, words = EDITS[edit]
    lines = problem_lines(result)
    assert len(lines) == 1, result.stderr
    assert field in lines[0]
    assert words in lines[0]
    assert f"{path}: 1 problem(s)" in result.stderr


def test_config_check_lists_one_line_per_problem(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    text = path.read_text("utf-8")
    text = _after_header(text, "intake", "allow_anonymus = true")
    text = _set(text, "bot_number", "+0151")
    text = _after_header(text, "retention", "keep_forever = true")
    path.write_text(text, "utf-8")
    result, _ = invoke("config", "check", str(path))
    assert result.exit_code == 2
    lines = problem_lines(result)
    assert len(lines) == 3, result.stderr
    named = " ".join(lines)
    for field in ("intake.allow_anonymus", "signal.bot_number", "retention.keep_forever"):
        assert field in named


def test_config_check_lists_every_texts_problem(tmp_path: Path) -> None:
    path = write_config(tmp_path, edit="unknown text id")
    text = _after_header(path.read_text("utf-8"), "texts", 'cancelled = "Stopped, {who}."')
    path.write_text(text, "utf-8")
    result, _ = invoke("config", "check", str(path))
    assert result.exit_code == 2
    lines = problem_lines(result)
    assert len(lines) == 2, result.stderr
    assert any("texts.farewel" in line for line in lines)
    assert any("texts.cancelled" in line and "{who}" in line for line in lines)


@pytest.mark.parametrize("edit", ["unknown text id", "unknown placeholder"])
def test_texts_problem_names_the_field_once(tmp_path: Path, edit: str) -> None:
    result, _ = invoke("config", "check", str(write_config(tmp_path, edit=edit)))
    field, _ = EDITS[edit]
    assert problem_lines(result)[0].startswith(f"  - {field}:")


def test_config_check_on_a_missing_file(tmp_path: Path) -> None:
    result, _ = invoke("config", "check", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    assert "file not found" in result.stderr


def test_config_check_on_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[organisation]\nname = "unterminated\n', "utf-8")
    result, _ = invoke("config", "check", str(path))
    assert result.exit_code == 2
    assert "not valid TOML" in result.stderr


# -- relay run: refusals before Signal ------------------------------------------------------


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_run_refuses_a_bad_config(
    tmp_path: Path, no_signal: list[object], edit: str
) -> None:
    path = write_config(tmp_path, edit=edit)
    result, took = invoke("run", "--config", str(path))
    assert result.exit_code == 2, result.output
    field, words = EDITS[edit]
    lines = problem_lines(result)
    assert len(lines) == 1, result.stderr
    assert field in lines[0]
    assert words in lines[0]
    assert no_signal == []
    assert took < QUICK_SECONDS
    assert not (tmp_path / "data").exists()


def test_run_refuses_a_missing_config_file(
    tmp_path: Path, no_signal: list[object]
) -> None:
    result, took = invoke("run", "-c", str(tmp_path / "relay.toml"))
    assert result.exit_code == 2
    assert "file not found" in result.stderr
    assert no_signal == []
    assert took < QUICK_SECONDS


def test_run_refuses_without_a_keys_directory(
    tmp_path: Path, no_signal: list[object]
) -> None:
    result, took = invoke("run", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 2, result.output
    assert "relay keys init" in result.stderr
    assert str(tmp_path / "keys") in result.stderr
    assert no_signal == []
    assert took < QUICK_SECONDS
    assert not (tmp_path / "keys").exists()
    assert not (tmp_path / "data").exists()


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    init_keys_dir(path, NOW, "quarter")
    return path


def test_run_refuses_a_world_readable_root_key(
    tmp_path: Path, keys_dir: Path, no_signal: list[object]
) -> None:
    (keys_dir / "root.key").chmod(0o644)
    result, took = invoke("run", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 2, result.output
    assert "chmod 600" in result.stderr
    assert "root.key" in result.stderr
    assert no_signal == []
    assert took < QUICK_SECONDS
    assert not (tmp_path / "data").exists()


def test_run_refuses_a_group_readable_keys_directory(
    tmp_path: Path, keys_dir: Path, no_signal: list[object]
) -> None:
    keys_dir.chmod(0o750)
    result, took = invoke("run", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 2, result.output
    assert "chmod 700" in result.stderr
    assert no_signal == []
    assert took < QUICK_SECONDS


def test_run_refuses_the_wrong_root_key(
    tmp_path: Path, keys_dir: Path, no_signal: list[object]
) -> None:
    root_key = keys_dir / "root.key"
    original = root_key.read_bytes()
    other = os.urandom(32)
    assert other != original
    root_key.write_bytes(other)
    assert mode(root_key) == 0o600
    assert root_key.read_bytes() == other
    result, took = invoke("run", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 2, result.output
    assert "root secret does not match" in result.stderr
    assert "key-check value failed" in result.stderr
    assert other.hex() not in result.output
    assert no_signal == []
    assert took < QUICK_SECONDS
    assert not (tmp_path / "data").exists()


def test_connect_recorder_does_see_a_connect(connects: list[object]) -> None:
    """Positive control: the recorder would have caught a connect to Signal."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(ConnectionRefusedError),
    ):
        sock.connect(("127.0.0.1", 1))
    assert connects == [("127.0.0.1", 1)]


# -- relay keys init ------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that grants everything, so the modes must come from relay itself."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_keys_init_creates_a_private_directory(tmp_path: Path, open_umask: None) -> None:
    path = write_config(tmp_path)
    result, _ = invoke("keys", "init", "--config", str(path))
    assert result.exit_code == 0, result.output
    keys_dir = tmp_path / "keys"
    assert str(keys_dir) in result.stdout
    assert mode(keys_dir) == 0o700
    files = sorted(p.name for p in keys_dir.iterdir())
    assert "root.key" in files
    assert "kcv.bin" in files
    assert "keyring.bin" in files
    for name in files:
        assert mode(keys_dir / name) == 0o600, name
    assert len((keys_dir / "root.key").read_bytes()) == 32


def test_keys_init_refuses_to_overwrite(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    first, _ = invoke("keys", "init", "-c", str(path))
    assert first.exit_code == 0, first.output
    keys_dir = tmp_path / "keys"
    before = {p.name: p.read_bytes() for p in keys_dir.iterdir()}
    second, _ = invoke("keys", "init", "-c", str(path))
    assert second.exit_code == 2
    assert "refusing to overwrite" in second.stderr
    assert {p.name: p.read_bytes() for p in keys_dir.iterdir()} == before


def test_keys_init_refuses_a_bad_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, edit="bad bot number")
    result, _ = invoke("keys", "init", "-c", str(path))
    assert result.exit_code == 2
    assert "signal.bot_number" in result.stderr
    assert not (tmp_path / "keys").exists()


def test_keys_init_with_a_passphrase_source_writes_no_root_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, edit="passphrase source")
    phrase = "correct horse battery staple\n"
    mismatch = CliRunner().invoke(app, ["keys", "init", "-c", str(path)],
                             input=phrase + "something else\n")
    assert mismatch.exit_code == 2
    assert "differ" in mismatch.stderr
    made = CliRunner().invoke(app, ["keys", "init", "-c", str(path)], input=phrase * 2)
    assert made.exit_code == 0, made.stderr
    assert not (tmp_path / "keys" / "root.key").exists()
    assert (tmp_path / "keys" / "kdf.json").exists()
    wrong = CliRunner().invoke(app, ["keys", "status", "-c", str(path)], input="not it at all\n")
    assert wrong.exit_code == 2
    right = CliRunner().invoke(app, ["keys", "status", "-c", str(path)], input=phrase)
    assert right.exit_code == 0, right.stderr
