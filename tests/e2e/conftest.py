"""End-to-end: the real relay (signalbot inside) against the sandbox over 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keys import Keyring, init_keys_dir
from relay.app import Relay, build
from relay.clock import Clock, SystemClock
from relay.sandbox import Phone, Received
from relay.sandbox_org import SandboxOrg, start_sandbox_org

TIMEOUT = 8.0


@dataclass
class Running:
    org: SandboxOrg
    keyring: Keyring
    db_url: str
    relay: Relay
    restarts: int = 0
    stopped: bool = False
    extra: list[Relay] = field(default_factory=list)
    clock: Clock = field(default_factory=SystemClock)
    ping_interval: float = 20.0

    async def restart(self) -> None:
        await self.relay.stop()
        self.relay = build(self.org.cfg, Keyring.load(self.org.cfg.keys.directory),
                           self.clock, database_url=self.db_url,
                           ping_interval=self.ping_interval)
        await self.relay.start()
        await self.org.sandbox.wait_for_subscriber()
        self.restarts += 1

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.relay.stop()
            await self.org.sandbox.stop()


Starter = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_org(tmp_path: Path, db_url: str) -> AsyncIterator[Starter]:
    running: list[Running] = []

    async def start(example: str = "mpp", *, webhook: bool = False, clock: Clock | None = None,
                    ping_interval: float = 20.0, send_timeout: float | None = None) -> Running:
        """A running relay on a sandbox organisation. Fault tests may inject a clock (the
        outbox's back-off and hold times follow it), a websocket ping interval, and the
        gateway's send timeout (`signal.send_timeout_seconds`)."""
        org = await start_sandbox_org(example, tmp_path / example, database_url=db_url,
                                      webhook=webhook)
        if send_timeout is not None:
            signal = org.cfg.signal.model_copy(update={"send_timeout_seconds": send_timeout})
            org.cfg = org.cfg.model_copy(update={"signal": signal})
        clock = clock or SystemClock()
        keyring = init_keys_dir(org.cfg.keys.directory, clock.now(), org.cfg.retention.epoch)
        relay = build(org.cfg, keyring, clock, database_url=db_url, ping_interval=ping_interval)
        await relay.start()
        await org.sandbox.wait_for_subscriber()
        run = Running(org, keyring, db_url, relay, clock=clock, ping_interval=ping_interval)
        running.append(run)
        return run

    yield start
    for run in running:
        await run.stop()


async def say(phone: Phone, text: str, expect: str, *, wait: float = TIMEOUT) -> Received:
    """Send `text` as `phone` and wait for the bot's message containing `expect`."""
    await phone.send(text)
    return await phone.wait_for(lambda m: expect.lower() in (m.text or "").lower(),
                                timeout=wait)


async def expect(phone: Phone, needle: str, *, wait: float = TIMEOUT) -> Received:
    return await phone.wait_for(lambda m: needle.lower() in (m.text or "").lower(),
                                timeout=wait)


REF = re.compile(r"\b([A-Z0-9]{3}-[A-Z0-9]{2})\b")


def ref_in(text: str | None) -> str:
    match = REF.search(text or "")
    assert match, f"no case reference in the receipt: {text!r}"
    return match.group(1)


async def report(phone: Phone, *, identity: str, scope: str, officer: str | None = None,
                 exclude: str = "none", story: tuple[str, ...] = ("It happened.",),
                 category: str = "1", help_kind: str = "1", who: str = "skip",
                 officer_name: str | None = None, exclude_name: str | None = None,
                 safe: str = "yes") -> str:
    """Walk a full intake and return the case reference from the receipt. An officer to
    choose or exclude can be given by menu number or by (part of) a display name."""
    await say(phone, "hi", "anonymous")
    await say(phone, identity, "kind of help")
    await say(phone, help_kind, "about")
    await say(phone, category, "who should see")
    if officer is not None or officer_name is not None:
        pick = await say(phone, scope, "who would you like")
        officer = officer or option_number(pick.text, officer_name or "")
        exclusions = await say(phone, officer, "must not see")
    else:
        exclusions = await say(phone, scope, "must not see")
    if exclude_name is not None:
        exclude = option_number(exclusions.text, exclude_name)
    await say(phone, exclude, "what happened")
    for part in story:
        await say(phone, part, "got it")
    await say(phone, "DONE", "when")
    await say(phone, "skip", "where")
    await say(phone, "skip", "who was involved")
    await say(phone, who, "safe right now")
    await say(phone, safe, "check in")
    await say(phone, "yes", "send")
    receipt = await say(phone, "SEND", "reference")
    return ref_in(receipt.text)


def option_number(text: str | None, fragment: str) -> str:
    """The number of the numbered option whose line contains `fragment`."""
    for line in (text or "").splitlines():
        match = re.match(r"\s*(\d+)\.\s+(.*)", line)
        if match and fragment.lower() in match.group(2).lower():
            return match.group(1)
    raise AssertionError(f"no option containing {fragment!r} in {text!r}")


def everything_officers_saw(org: SandboxOrg) -> str:
    """Every message any officer's phone (1:1 or in a group) received from the bot."""
    return "\n".join(m.text or "" for phone in org.officers.values() for m in phone.messages)
