"""`relay register`, `relay profile set`, `relay pin set|remove`, `relay link`.

Set up the bot's Signal account on signal-cli-rest-api (WIRE §10) through
:mod:`relay.signal_admin`. Output names config fields (``signal.bot_number``), never the
number, the profile name or a PIN. Missing values are prompted for when stdin is a
terminal; otherwise the command says which option to pass.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from relay.cli.common import load_or_exit
from relay.signal_admin import (
    CAPTCHA_URL,
    AlreadyRegisteredError,
    ApiError,
    CaptchaInvalidError,
    CaptchaRequiredError,
    NoPendingRegistrationError,
    PinIncorrectError,
    PinRequiredError,
    SignalAdmin,
    SignalAdminError,
)

T = TypeVar("T")
CODE_DIGITS = 6
PIN_MIN = 4
PIN_MAX = 64
CAPTCHA_ATTEMPTS = 3

ConfigOpt = typer.Option(Path("relay.toml"), "--config", "-c", help="organisation TOML file")

CAPTCHA_HELP = f"""\
Signal wants a captcha before it sends the verification code:
  1. Open {CAPTCHA_URL} in a browser and solve the captcha.
  2. Right-click the "Open Signal" link and copy the link address; it starts with
     signalcaptcha://
  3. Run: relay register --captcha 'signalcaptcha://signal-...'
     (keep the quotes: the link contains characters the shell would change)
Captchas expire after a few minutes, so use it right away."""

NEXT_STEPS = """\
signal.bot_number is registered. Next:
  relay profile set NAME   (groups need a profile name; members see it)
  relay pin set            (registration lock: stops anyone re-registering the number)"""

LINK_WARNING = """\
WARNING: linking does not give the relay its own account. The relay BECOMES the
person whose phone scans the code:
  - it is that person on Signal: same number, same identity, their rights in groups;
  - Signal sends the relay a copy (sync transcript) of every message that person sends
    from their phone, and the relay sees them as if they were its own (WIRE F22);
  - everything the relay sends, reports to officers included, shows up on that
    person's phone and their other linked devices;
  - Signal unlinks devices that stay inactive for a long time (about 30 days), and the
    relay then stops working until someone links it again.
A confidential relay should have its own number: use `relay register` instead."""


def register(app: typer.Typer) -> None:
    """Add `register`, `link`, `profile set` and `pin set|remove` to the `relay` app."""
    app.command("register")(register_number)
    app.command("link")(link_device)
    profile_app = typer.Typer(no_args_is_help=True, help="The bot account's Signal profile.")
    profile_app.command("set")(profile_set)
    app.add_typer(profile_app, name="profile")
    pin_app = typer.Typer(no_args_is_help=True, help="The bot account's registration-lock PIN.")
    pin_app.command("set")(pin_set)
    pin_app.command("remove")(pin_remove)
    app.add_typer(pin_app, name="pin")


# -- shared helpers ------------------------------------------------------------------------
def _fail(command: str, message: str, code: int = 1) -> NoReturn:
    print(f"relay {command}: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _admin(config: Path) -> SignalAdmin:
    cfg = load_or_exit(config)
    signal = cfg.signal
    return SignalAdmin(service=signal.service, number=signal.bot_number, scheme=signal.connection)


def _run(command: str, call: Coroutine[Any, Any, T], *expect: type[ApiError]) -> T:
    """Run one client call; failures other than the ``expect``-ed ones end the command."""
    try:
        return asyncio.run(call)
    except SignalAdminError as exc:
        if isinstance(exc, expect):
            raise
        _fail(command, str(exc))


def _normalise_code(code: str) -> str:
    digits = code.replace("-", "").replace(" ", "")
    if len(digits) != CODE_DIGITS or not digits.isdigit():
        _fail("register", "--code: expected the 6-digit code Signal sent, e.g. 123-456 or 123456")
    return digits


def _check_pin(command: str, pin: str) -> str:
    if not PIN_MIN <= len(pin) <= PIN_MAX or any(ch.isspace() for ch in pin):
        _fail(command, f"a PIN needs {PIN_MIN} to {PIN_MAX} characters and no spaces")
    return pin


# -- relay register ------------------------------------------------------------------------
def register_number(
    config: Path = ConfigOpt,
    captcha: str | None = typer.Option(
        None, "--captcha", help="the signalcaptcha://… link from the captcha page"
    ),
    voice: bool = typer.Option(False, "--voice", help="get the code by voice call, not SMS"),  # noqa: FBT003
    code: str | None = typer.Option(
        None, "--code", help="verify with the code Signal sent (123-456 or 123456)"
    ),
    pin: str | None = typer.Option(
        None, "--pin", help="the registration-lock PIN, if the number has one (with --code)"
    ),
) -> None:
    """Register signal.bot_number as the bot's own Signal account (step 1: request a code;
    step 2: --code CODE)."""
    admin = _admin(config)
    if code is not None:
        _verify(admin, _normalise_code(code), pin)
        return
    if pin is not None:
        _fail("register", "--pin goes with --code (the PIN is checked when you verify)", 2)
    _request_code(admin, captcha, voice=voice)


def _request_code(admin: SignalAdmin, captcha: str | None, *, voice: bool) -> None:
    for _attempt in range(CAPTCHA_ATTEMPTS):
        try:
            _run(
                "register",
                admin.register(captcha=captcha, voice=voice),
                AlreadyRegisteredError,
                CaptchaRequiredError,
                CaptchaInvalidError,
            )
            break
        except AlreadyRegisteredError:
            print("signal.bot_number is already registered on this signal-cli-rest-api.")
            print("Next, if not done yet: relay profile set NAME, then relay pin set")
            return
        except (CaptchaRequiredError, CaptchaInvalidError) as exc:
            if isinstance(exc, CaptchaInvalidError):
                print(f"relay register: {exc}", file=sys.stderr)
            print(CAPTCHA_HELP, file=sys.stderr)
            if not _interactive():
                _fail("register", "run again with --captcha 'signalcaptcha://…'")
            captcha = typer.prompt("Paste the signalcaptcha:// link").strip()
    else:
        _fail("register", "too many captcha attempts; run `relay register` again")
    by = "voice call" if voice else "SMS"
    print(f"Signal is sending a verification code to signal.bot_number by {by}.")
    if _interactive():
        entered = typer.prompt(
            "Enter the code (or press Enter to finish later)", default="", show_default=False
        )
        if entered.strip():
            _verify(admin, _normalise_code(entered), None)
            return
    print("Then run: relay register --code CODE   (add --pin PIN if the number is PIN-locked)")


def _verify(admin: SignalAdmin, code: str, pin: str | None) -> None:
    try:
        _run("register", admin.verify(code, pin=pin), ApiError)
    except PinRequiredError:
        if pin is None and _interactive():
            entered = typer.prompt("Registration-lock PIN", hide_input=True)
            _verify(admin, code, _check_pin("register", entered))
            return
        _fail(
            "register",
            "signal.bot_number is locked with a registration-lock PIN; run "
            "`relay register --code CODE --pin PIN` with the PIN set earlier for this number",
        )
    except PinIncorrectError as exc:
        left = "" if exc.tries_remaining is None else f" ({exc.tries_remaining} tries left)"
        _fail("register", f"the registration-lock PIN is wrong{left}; check it and try again")
    except AlreadyRegisteredError:
        print("signal.bot_number is already registered on this signal-cli-rest-api.")
        return
    except NoPendingRegistrationError as exc:
        _fail("register", str(exc))
    except ApiError as exc:
        first = exc.detail.splitlines()[0] if exc.detail else f"HTTP {exc.status}"
        _fail(
            "register",
            f"the verification code was not accepted ({first}); check it, or request a "
            "new one with `relay register`",
        )
    print(NEXT_STEPS)


# -- relay profile set ---------------------------------------------------------------------
def profile_set(
    name: str = typer.Argument(..., help="the name members see for the bot"),
    config: Path = ConfigOpt,
) -> None:
    """Set the bot's Signal profile name (groups cannot be created without one)."""
    name = name.strip()
    if not name or any(ch in name for ch in "\r\n\t"):
        _fail("profile set", "NAME must be a non-empty single line, e.g. 'Conduct Team'", 2)
    admin = _admin(config)
    _run("profile set", admin.set_profile_name(name))
    print(f"profile name set for signal.bot_number ({len(name)} characters).")


# -- relay pin set / remove ----------------------------------------------------------------
def pin_set(
    config: Path = ConfigOpt,
    pin_file: Path | None = typer.Option(
        None, "--pin-file", help="read the PIN from this file (first line) instead of a prompt"
    ),
) -> None:
    """Set the registration-lock PIN: re-registering signal.bot_number then needs it."""
    if pin_file is not None:
        try:
            lines = pin_file.read_text("utf-8").splitlines()
        except OSError as exc:
            _fail("pin set", f"--pin-file: cannot read {pin_file} ({exc.strerror})", 2)
        pin = lines[0].strip() if lines else ""
    elif _interactive():
        pin = typer.prompt("New registration-lock PIN", hide_input=True, confirmation_prompt=True)
    else:
        _fail(
            "pin set", "no PIN given: run it in a terminal to type it, or pass --pin-file FILE", 2
        )
    pin = _check_pin("pin set", pin)
    admin = _admin(config)
    _run("pin set", admin.set_pin(pin))
    print("registration-lock PIN set for signal.bot_number.")
    print("Keep it in the organisation's password manager: re-registering the number needs it.")


def pin_remove(config: Path = ConfigOpt) -> None:
    """Remove the registration-lock PIN."""
    admin = _admin(config)
    _run("pin remove", admin.remove_pin())
    print("registration-lock PIN removed for signal.bot_number.")


# -- relay link ----------------------------------------------------------------------------
def link_device(
    config: Path = ConfigOpt,
    device_name: str = typer.Option("relay", "--device-name", help="name shown on the phone"),
    png: Path | None = typer.Option(
        None, "--png", help="save the QR code as this PNG file instead of printing the link"
    ),
    wait: float = typer.Option(
        300.0, "--wait", min=0.0, help="seconds to wait for the phone to scan"
    ),
    i_understand: bool = typer.Option(
        False,  # noqa: FBT003
        "--i-understand",
        help="confirm you read the warning: the relay becomes that person",
    ),
) -> None:
    """Link the relay to an existing phone's account (not recommended: read the warning)."""
    print(LINK_WARNING)
    if not i_understand:
        if not _interactive():
            _fail("link", "not linking: pass --i-understand once you have read the warning above")
        answer = typer.prompt('Type "yes" to link anyway', default="", show_default=False)
        if answer.strip().lower() != "yes":
            _fail("link", "not linking (you did not type yes)")
    admin = _admin(config)
    if _run("link", admin.is_registered()):
        print("signal.bot_number is already an account on this signal-cli-rest-api; "
              "nothing to link.")  # fmt: skip
        return
    if png is not None:
        data = _run("link", admin.link_png(device_name))
        _write_private(png, data)
        print(f"QR code saved to {png}; open it and scan it with the phone.")
    else:
        uri = _run("link", admin.link_uri(device_name))
        print("Link URI (show it as a QR code, e.g. qrencode -t ansiutf8 'URI'):")
        print(uri)
    print("On the phone: Signal > Settings > Linked devices > Link new device, then scan.")
    print(f"Waiting up to {wait:g} s for the scan ...", flush=True)
    if not _run("link", admin.wait_registered(wait)):
        _fail("link", f"not scanned within {wait:g} s; run `relay link` again for a new code")
    print("linked: signal.bot_number is now a linked device of that person's account.")
    print("Next: relay doctor")


def _write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        _fail("link", f"--png: cannot write {path} ({exc.strerror})", 2)
