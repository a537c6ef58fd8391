"""`relay sandbox serve|phone|send|inbox|code|scan`: the emulator for rehearsals.

``serve`` runs :class:`relay.sandbox.Sandbox` standalone (``auto_phones`` on, so groups
can name anyone) until SIGINT/SIGTERM. The other subcommands drive a running sandbox
over its HTTP control API (``/_sandbox/…``, :mod:`relay.sandbox.control`). The sandbox's
people are fake, so their numbers and messages are printed; that is the point.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import aiohttp
import typer

from relay.cli.common import load_or_exit
from relay.config import OrgConfig

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_NUMBER = "+15550100001"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CONTROL_TIMEOUT = 10.0
POLL_SECONDS = 0.25
REPLY_SETTLE_SECONDS = 0.5

UrlOpt = typer.Option(DEFAULT_URL, "--url", help="the running sandbox (relay sandbox serve)")


def register(app: typer.Typer) -> None:
    """Add the `sandbox` command group to the `relay` app."""
    sandbox_app = typer.Typer(
        no_args_is_help=True,
        help="A local signal-cli-rest-api emulator with fake phones, for rehearsals.",
    )
    sandbox_app.command("serve")(serve)
    sandbox_app.command("phone")(phone)
    sandbox_app.command("send")(send)
    sandbox_app.command("inbox")(inbox)
    sandbox_app.command("code")(code)
    sandbox_app.command("scan")(scan)
    app.add_typer(sandbox_app, name="sandbox")


def _fail(command: str, message: str, code: int = 1) -> NoReturn:
    print(f"relay sandbox {command}: {message}", file=sys.stderr)
    raise typer.Exit(code)


# -- serve ---------------------------------------------------------------------------------
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="port (0: any free one)"),
    number: str | None = typer.Option(
        None,
        "--number",
        help=f"the bot number (default: signal.bot_number of --phones-from, else {DEFAULT_NUMBER})",
    ),
    unregistered: bool = typer.Option(
        False,  # noqa: FBT003
        "--unregistered",
        help="start with the bot number not registered (rehearse relay register/link)",
    ),
    phones_from: Path | None = typer.Option(
        None, "--phones-from", help="relay.toml: a phone for each [[officers]] entry"
    ),
    webhook_url: str | None = typer.Option(
        None, "--webhook-url", help="also POST receive frames here (RECEIVE_WEBHOOK_URL)"
    ),
) -> None:
    """Run the emulator until Ctrl-C (or SIGTERM)."""
    cfg = _load_phones_config(phones_from) if phones_from is not None else None
    bot_number = number or (cfg.signal.bot_number if cfg is not None else DEFAULT_NUMBER)
    if host not in LOOPBACK:
        print(
            f"relay sandbox serve: warning: {host} is not loopback; the sandbox has no "
            "authentication, anyone who can reach it can drive it",
            file=sys.stderr,
        )
    code = asyncio.run(
        _serve(host, port, bot_number, cfg, unregistered=unregistered, webhook_url=webhook_url)
    )
    raise typer.Exit(code)


def _load_phones_config(path: Path) -> OrgConfig:
    return load_or_exit(path)


async def _serve(
    host: str,
    port: int,
    bot_number: str,
    cfg: OrgConfig | None,
    *,
    unregistered: bool,
    webhook_url: str | None,
) -> int:
    from relay.sandbox import Sandbox  # only `serve` needs the emulator

    sandbox = Sandbox(
        bot_number,
        cfg.signal.bot_aci if cfg is not None else None,
        host=host,
        port=port,
        webhook_url=webhook_url,
        registered=not unregistered,
        auto_phones=True,
    )
    if cfg is not None:
        for officer in cfg.officers:
            sandbox.add_phone(
                officer.id, officer.number, aci=officer.aci, profile_name=officer.display_name
            )
    try:
        await sandbox.start()
    except OSError as exc:
        print(
            f"relay sandbox serve: cannot listen on {host}:{port} ({exc.strerror}); "
            "pick another --port",
            file=sys.stderr,
        )
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        _print_banner(sandbox.base_url, sandbox.service, cfg, unregistered=unregistered)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await sandbox.stop()
    print("sandbox stopped.", flush=True)
    return 0


def _print_banner(url: str, service: str, cfg: OrgConfig | None, *, unregistered: bool) -> None:
    lines = [
        f"sandbox signal-cli-rest-api serving at {url}",
        f'  in relay.toml: [signal] service = "{service}"',
        f"  control API: {url}/_sandbox/state (relay sandbox phone|send|inbox --url {url})",
    ]
    if cfg is not None:
        lines.append(f"  {len(cfg.officers)} officer phone(s) from --phones-from")
    if unregistered:
        lines += [
            "  the bot number is not registered yet: run `relay register` (any captcha",
            "  starting with signalcaptcha://signal- is accepted), read the verification",
            f"  code with `relay sandbox code --url {url}`, then `relay register --code CODE`;",
            f"  or `relay link` and simulate the scan with `relay sandbox scan --url {url}`",
        ]
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


# -- control API client --------------------------------------------------------------------
def _control(
    command: str, url: str, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One control call: (status, decoded JSON or None). Unreachable sandbox ends the command."""

    async def call() -> tuple[int, Any]:
        timeout = aiohttp.ClientTimeout(total=CONTROL_TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(
                method, url.rstrip("/") + path, data=None if body is None else json.dumps(body)
            ) as resp,
        ):
            raw = await resp.read()
            try:
                value = json.loads(raw) if raw else None
            except ValueError:
                value = None
            return resp.status, value

    try:
        return asyncio.run(call())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        _fail(
            command,
            f"the sandbox is not reachable at {url} ({type(exc).__name__}); "
            "start it with `relay sandbox serve` or pass --url",
        )


def _check(command: str, status: int, value: Any, ok: tuple[int, ...]) -> Any:
    if status in ok:
        return value
    text = value.get("error") if isinstance(value, dict) else None
    _fail(command, str(text or f"the sandbox answered HTTP {status}"))


def phone(
    name: str = typer.Argument(..., help="the phone's name (used by send/inbox)"),
    number: str | None = typer.Option(None, "--number", help="its number, e.g. +15550100077"),
    aci: str | None = typer.Option(None, "--aci", help="its ACI (default: a random UUID)"),
    url: str = UrlOpt,
) -> None:
    """Create a fake phone (a Signal user) in the running sandbox."""
    body: dict[str, Any] = {"name": name, "number": number, "aci": aci}
    status, value = _control("phone", url, "POST", "/_sandbox/phones", body)
    created = _check("phone", status, value, (200, 201))
    print(f"phone {name}: number {created.get('number') or '(none)'}, aci {created.get('aci')}")


def send(
    name: str = typer.Argument(..., help="the sending phone"),
    text: str = typer.Argument(..., help="the message"),
    group: str | None = typer.Option(None, "--group", help="send into this group id instead"),
    reply_wait: float = typer.Option(
        0.0,
        "--reply-wait",
        min=0.0,
        help="then wait up to this many seconds for the bot's answer and print it",
    ),
    url: str = UrlOpt,
) -> None:
    """The phone sends a message to the bot (a DM, or into --group)."""
    before = len(_inbox_items(name, url)) if reply_wait else 0
    body: dict[str, Any] = {"text": text}
    if group:
        body["group"] = group
    status, value = _control(
        "send", url, "POST", f"/_sandbox/phones/{quote(name, safe='')}/send", body
    )
    sent = _check("send", status, value, (200,))
    print(f"sent (timestamp {sent.get('timestamp')})")
    if not reply_wait:
        return
    items = _wait_for(name, url, reply_wait, lambda items: len(items) > before)
    if len(items) <= before:
        _fail("send", f"no answer for {name} within {reply_wait:g} s")
    time.sleep(REPLY_SETTLE_SECONDS)  # an answer can come in several messages
    for item in _inbox_items(name, url)[before:]:
        print(_describe(item))


def _inbox_items(name: str, url: str) -> list[dict[str, Any]]:
    status, value = _control("inbox", url, "GET", f"/_sandbox/phones/{quote(name, safe='')}/inbox")
    items: list[dict[str, Any]] = _check("inbox", status, value, (200,))
    return items


def _wait_for(
    name: str, url: str, seconds: float, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        items = _inbox_items(name, url)
        if done(items) or time.monotonic() >= deadline:
            return items
        time.sleep(POLL_SECONDS)


def inbox(
    name: str = typer.Argument(..., help="the phone whose inbox to show"),
    wait: float = typer.Option(
        0.0, "--wait", min=0.0, help="wait up to this many seconds for something to arrive"
    ),
    contains: str | None = typer.Option(
        None, "--contains", help="with --wait: wait for a message containing this text"
    ),
    url: str = UrlOpt,
) -> None:
    """Print what the bot sent this phone (oldest first)."""

    def done(items: list[dict[str, Any]]) -> bool:
        if contains is None:
            return bool(items)
        return any(contains in str(item.get("text") or "") for item in items)

    items = _wait_for(name, url, wait, done)
    if not done(items):
        if wait:
            wanted = f"no message containing {contains!r}" if contains else "nothing"
            _fail("inbox", f"{wanted} arrived for {name} within {wait:g} s")
        if not items:
            print(f"(nothing for {name} yet)")
            return
    for item in items:
        print(_describe(item))


def _describe(item: dict[str, Any]) -> str:
    kind = str(item.get("kind", "message"))
    where = " [group]" if item.get("group_id") else ""
    head = f"{item.get('timestamp')}{where} {kind}"
    if kind == "message":
        files = len(item.get("attachments") or [])
        extra = f" (+{files} attachment(s))" if files else ""
        return f"{head}: {item.get('text') or ''}{extra}"
    if kind == "reaction":
        return f"{head}: {item.get('emoji')} on {item.get('target_timestamp')}"
    return head


def code(url: str = UrlOpt) -> None:
    """Print the pending verification code (what Signal would text the bot number)."""
    status, value = _control("code", url, "GET", "/_sandbox/verification-code")
    if status == 404:  # the control API: nothing pending
        _fail("code", "no registration is pending; run `relay register` first")
    pending = _check("code", status, value, (200,))
    print(pending.get("code"))


def scan(
    url: str = UrlOpt,
    profile_name: str = typer.Option(
        "Linked Person", "--profile-name", help="the linking person's profile name"
    ),
) -> None:
    """Simulate the phone scanning the pending `relay link` code."""
    status, value = _control(
        "scan", url, "POST", "/_sandbox/link/complete", {"profile_name": profile_name}
    )
    _check("scan", status, value, (204,))
    print("scanned: the sandbox bot number is now a linked device.")
