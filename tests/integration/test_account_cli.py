"""`relay register|profile set|pin set|link` against `relay sandbox serve` (a real process).

The bot number is a random canary: no command may print it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from relay.cli.main import app
from tests.canary import Canaries, find_canaries
from tests.integration.sandbox_proc import (
    Served,
    Terminal,
    finish,
    http,
    relay,
    serve,
    start,
    write_config,
)

CAPTCHA = "signalcaptcha://signal-hcaptcha.5fad97ac-7d06.registration.P1_eyJ0eXAi"


@pytest.fixture
def canaries() -> Canaries:
    return Canaries()


@pytest.fixture
def fresh(canaries: Canaries) -> Iterator[Served]:
    """A sandbox whose bot number (the canary) is not registered yet."""
    with serve("--unregistered", "--number", canaries.e164) as sandbox:
        yield sandbox


@pytest.fixture
def ready(canaries: Canaries) -> Iterator[Served]:
    """A sandbox whose bot number (the canary) is a registered account."""
    with serve("--number", canaries.e164) as sandbox:
        yield sandbox


class Cli:
    """`relay …` in-process; every output is checked for the canaries."""

    def __init__(self, config: Path, canaries: Canaries) -> None:
        self.config = config
        self.canaries = canaries
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        result = self.runner.invoke(app, [*args, "-c", str(self.config)])
        leaked = find_canaries(result.stdout + result.stderr, self.canaries)
        assert not leaked, (leaked, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result


def _cli(tmp_path: Path, sandbox: Served, canaries: Canaries) -> Cli:
    return Cli(write_config(tmp_path, sandbox.service, canaries.e164), canaries)


def _code(sandbox: Served) -> str:
    result = relay("sandbox", "code", "--url", sandbox.url)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_register_with_captcha_then_code(tmp_path: Path, fresh: Served, canaries: Canaries) -> None:
    cli = _cli(tmp_path, fresh, canaries)
    number = canaries.e164

    needs = cli("register")
    assert needs.exit_code == 1
    assert "https://signalcaptchas.org/registration/generate.html" in needs.stderr
    assert "relay register --captcha 'signalcaptcha://" in needs.stderr
    assert "Open Signal" in needs.stderr

    bad = cli("register", "--captcha", "signalcaptcha://garbage")
    assert bad.exit_code == 1
    assert "captcha was not accepted" in bad.stderr

    asked = cli("register", "--captcha", CAPTCHA, "--voice")
    assert asked.exit_code == 0, asked.stderr
    assert "by voice call" in asked.stdout
    assert "relay register --code CODE" in asked.stdout
    code = _code(fresh)

    malformed = cli("register", "--code", "12345")
    assert malformed.exit_code == 1
    assert "6-digit code" in malformed.stderr
    wrong = cli("register", "--code", "000000" if code != "000000" else "111111")
    assert wrong.exit_code == 1
    assert "verification code was not accepted" in wrong.stderr
    assert http(f"{fresh.url}/v1/accounts") == (200, [])

    done = cli("register", "--code", f"{code[:3]}-{code[3:]}")
    assert done.exit_code == 0, done.stderr
    assert "signal.bot_number is registered" in done.stdout
    assert "relay profile set NAME" in done.stdout
    assert "relay pin set" in done.stdout
    assert http(f"{fresh.url}/v1/accounts") == (200, [number])

    again = cli("register", "--captcha", CAPTCHA)
    assert again.exit_code == 0
    assert "already registered" in again.stdout


def test_register_on_a_pin_locked_number(tmp_path: Path, fresh: Served, canaries: Canaries) -> None:
    cli = _cli(tmp_path, fresh, canaries)
    assert http(f"{fresh.url}/_sandbox/faults/registration_lock", "POST", {"pin": "4321"})[0] == 204
    assert cli("register", "--captcha", CAPTCHA).exit_code == 0
    code = _code(fresh)

    misplaced = cli("register", "--pin", "4321")
    assert misplaced.exit_code == 2
    assert "--pin goes with --code" in misplaced.stderr
    locked = cli("register", "--code", code)
    assert locked.exit_code == 1
    assert "locked with a registration-lock PIN" in locked.stderr
    assert "--pin PIN" in locked.stderr
    wrong = cli("register", "--code", code, "--pin", "9999")
    assert wrong.exit_code == 1
    assert "PIN is wrong (9 tries left)" in wrong.stderr
    assert "9999" not in wrong.stdout + wrong.stderr

    done = cli("register", "--code", code, "--pin", "4321")
    assert done.exit_code == 0, done.stderr
    assert "4321" not in done.stdout
    assert http(f"{fresh.url}/v1/accounts") == (200, [canaries.e164])


def test_verify_without_a_pending_registration(
    tmp_path: Path, fresh: Served, canaries: Canaries
) -> None:
    result = _cli(tmp_path, fresh, canaries)("register", "--code", "123456")
    assert result.exit_code == 1
    assert "no registration is pending" in result.stderr
    assert "relay register" in result.stderr


def test_profile_set(tmp_path: Path, fresh: Served, canaries: Canaries) -> None:
    cli = _cli(tmp_path, fresh, canaries)
    number = canaries.e164
    early = cli("profile", "set", canaries.profile_name)
    assert early.exit_code == 1
    assert "signal.bot_number is not an account" in early.stderr
    assert "relay register" in early.stderr

    assert cli("register", "--captcha", CAPTCHA).exit_code == 0
    assert cli("register", "--code", _code(fresh)).exit_code == 0
    own = f"{fresh.url}/v1/contacts/{number}/{number}?all_recipients=true"
    assert http(own)[1]["profile"]["given_name"] == ""
    group = {"name": "Officers", "members": []}
    assert http(f"{fresh.url}/v1/groups/{number}", "POST", group)[0] == 400  # F16

    done = cli("profile", "set", canaries.profile_name)
    assert done.exit_code == 0, done.stderr
    assert "profile name set for signal.bot_number" in done.stdout
    assert http(own)[1]["profile"]["given_name"] == canaries.profile_name
    assert http(f"{fresh.url}/v1/groups/{number}", "POST", group)[0] == 201

    blank = cli("profile", "set", "  ")
    assert blank.exit_code == 2
    assert "NAME must be a non-empty single line" in blank.stderr


def test_pin_set_from_a_file_never_echoes_it(
    tmp_path: Path, ready: Served, canaries: Canaries
) -> None:
    cli = _cli(tmp_path, ready, canaries)
    no_tty = cli("pin", "set")
    assert no_tty.exit_code == 2
    assert "--pin-file FILE" in no_tty.stderr

    short = tmp_path / "short.txt"
    short.write_text("12\n", "utf-8")
    too_short = cli("pin", "set", "--pin-file", str(short))
    assert too_short.exit_code == 1
    assert "a PIN needs 4 to 64 characters" in too_short.stderr
    missing = cli("pin", "set", "--pin-file", str(tmp_path / "absent.txt"))
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr

    pin_file = tmp_path / "pin.txt"
    pin_file.write_text("738261\n", "utf-8")
    done = cli("pin", "set", "--pin-file", str(pin_file))
    assert done.exit_code == 0, done.stderr
    assert "738261" not in done.stdout + done.stderr
    assert "registration-lock PIN set" in done.stdout
    assert http(f"{ready.url}/_sandbox/account")[1]["pin_set"] is True

    removed = cli("pin", "remove")
    assert removed.exit_code == 0
    assert http(f"{ready.url}/_sandbox/account")[1]["pin_set"] is False


def test_link_refuses_without_consent(tmp_path: Path, fresh: Served, canaries: Canaries) -> None:
    result = _cli(tmp_path, fresh, canaries)("link")
    assert result.exit_code == 1
    assert "The relay BECOMES the" in result.stdout
    assert "sync transcript" in result.stdout
    assert "shows up on that\n    person's phone" in result.stdout
    assert "unlinks devices" in result.stdout
    assert "--i-understand" in result.stderr
    assert http(f"{fresh.url}/_sandbox/account")[1]["link_pending"] is False


def test_link_waits_for_the_scan(tmp_path: Path, fresh: Served, canaries: Canaries) -> None:
    config = write_config(tmp_path, fresh.service, canaries.e164)
    proc, lines = start("link", "-c", str(config), "--i-understand", "--wait", "30")
    printed = lines.until("Waiting up to 30 s")
    assert any(line.startswith("sgnl://linkdevice?uuid=") for line in printed)
    assert http(f"{fresh.url}/v1/accounts") == (200, [])

    scanned = relay("sandbox", "scan", "--url", fresh.url)
    assert scanned.returncode == 0, scanned.stderr
    rest = lines.rest()
    code, err = finish(proc)
    assert code == 0, err
    assert "linked: signal.bot_number is now a linked device" in rest
    output = "".join(printed) + rest + err
    assert not find_canaries(output, canaries)
    assert http(f"{fresh.url}/v1/accounts") == (200, [canaries.e164])

    again = Cli(config, canaries)("link", "--i-understand")
    assert again.exit_code == 0
    assert "already an account" in again.stdout


def test_link_png_and_timeout(tmp_path: Path, fresh: Served, canaries: Canaries) -> None:
    png = tmp_path / "link.png"
    result = _cli(tmp_path, fresh, canaries)(
        "link", "--i-understand", "--png", str(png), "--wait", "0.5"
    )
    assert result.exit_code == 1
    assert f"QR code saved to {png}" in result.stdout
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert png.stat().st_mode & 0o077 == 0
    assert "not scanned within 0.5 s" in result.stderr
    assert "relay link" in result.stderr


def test_unreachable_rest_api_names_signal_service(tmp_path: Path, canaries: Canaries) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cli = Cli(write_config(tmp_path, f"127.0.0.1:{port}", canaries.e164), canaries)
    for args in (["register"], ["profile", "set", "Team"], ["link", "--i-understand"]):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert (
            f"signal-cli-rest-api is not reachable at signal.service (127.0.0.1:{port}); "
            "is the container running?"
        ) in result.stderr


def test_broken_config_is_reported_per_field(tmp_path: Path, canaries: Canaries) -> None:
    config = tmp_path / "relay.toml"
    config.write_text('[signal]\nbot_number = "0049 151"\n', "utf-8")
    result = Cli(config, canaries)("register")
    assert result.exit_code == 2
    assert "signal.bot_number" in result.stderr
    assert "problem(s)" in result.stderr  # one line per problem, as every command prints


def test_interactive_register_and_pin(tmp_path: Path, fresh: Served, canaries: Canaries) -> None:
    config = str(write_config(tmp_path, fresh.service, canaries.e164))
    term = Terminal("register", "-c", config)
    term.expect("Paste the signalcaptcha:// link")
    term.type(CAPTCHA)
    term.expect("Enter the code (or press Enter to finish later)")
    term.type(_code(fresh))
    assert term.finish() == 0, term.transcript
    assert "signal.bot_number is registered" in term.transcript
    assert http(f"{fresh.url}/v1/accounts") == (200, [canaries.e164])

    term = Terminal("pin", "set", "-c", config)
    # click prints the prompt, then getpass turns echo off and writes the final " ".
    term.expect("New registration-lock PIN: ")
    term.type("58213")
    term.expect("Repeat for confirmation: ")
    term.type("58213")
    assert term.finish() == 0, term.transcript
    assert "registration-lock PIN set" in term.transcript
    assert "58213" not in term.transcript
    assert http(f"{fresh.url}/_sandbox/account")[1]["pin_set"] is True

    term = Terminal("link", "-c", config)
    term.expect('Type "yes" to link anyway')
    term.type("no")
    assert term.finish() == 1
    assert "not linking (you did not type yes)" in term.transcript
    assert not find_canaries(term.transcript, canaries)
