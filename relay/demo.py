"""`relay demo`: a whole story on the built-in Signal sandbox, shown phone by phone.

Nothing leaves this machine: the sandbox is a signal-cli-rest-api emulator on 127.0.0.1,
the database and keys live in a temporary directory that is deleted at the end.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import textwrap
from pathlib import Path

from relay.clock import SystemClock
from relay.logs import configure_logging
from relay.sandbox import Phone, Received

WIDTH = 72
SETTLE = 0.35


class Screens:
    """Prints what each simulated phone receives, as it arrives."""

    def __init__(self, phones: dict[str, Phone], pace: float) -> None:
        self._phones = phones
        self._seen = dict.fromkeys(phones, 0)
        self._pace = pace

    def _show(self, who: str, sender: str, text: str, *, group: str | None = None) -> None:
        where = f" in group {group!r}" if group else ""
        print(f"\n┌─ 📱 {who}{where} ".ljust(WIDTH, "─"))
        print(f"│ {sender}:")
        for line in text.splitlines() or [""]:
            indent = "│ " if line.startswith("│ ") else ""
            for piece in textwrap.wrap(line, WIDTH - 6, subsequent_indent=indent) or [""]:
                print(f"│   {piece}")
        print("└" + "─" * (WIDTH - 1))

    def typed(self, who: str, text: str, *, group: str | None = None) -> None:
        self._show(who, "you typed", text, group=group)

    async def settle(self, wait: float = 8.0) -> list[Received]:
        """Wait until messages stop arriving; print the new ones."""
        new: list[Received] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        quiet_since = loop.time()
        while loop.time() < deadline:
            arrived = False
            for name, phone in self._phones.items():
                messages = phone.messages
                for msg in messages[self._seen[name]:]:
                    label = "group" if msg.group_id else "Relay bot"
                    self._show(name, label if msg.group_id is None else "Relay bot",
                               msg.text or "", group="conduct team" if msg.group_id else None)
                    new.append(msg)
                    arrived = True
                self._seen[name] = len(messages)
            if arrived:
                quiet_since = loop.time()
            elif new and loop.time() - quiet_since > SETTLE:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(self._pace)
        return new


async def _say(screens: Screens, phone: Phone, who: str, text: str) -> list[Received]:
    screens.typed(who, text)
    await phone.send(text)
    return await screens.settle()


SCRIPT = (
    "hi",
    "anonymous",
    "1",  # Support
    "3",  # physical violence or threats
    "1",  # the whole Regenerative Culture group
    "none",
    ("After Thursday's canvass, one of the organisers cornered me by the van and said "
    "I'd regret raising the budget question again."),
    "He has done this to two other new volunteers that I know of.",
    "DONE",
    "Thursday evening",
    "Outside the community centre",
    "skip",
    "yes",
    "yes",
    "SEND",
)


async def run_demo(*, interactive: bool = False, pace: float = 0.6) -> int:
    from keys import init_keys_dir
    from relay.app import build
    from relay.sandbox_org import start_sandbox_org

    # not cached: the demo also runs inside the test process, and a cached logger would
    # keep writing through this configuration after the demo ends
    configure_logging(stream=sys.stderr, json=False, level=logging.WARNING,
                      cache_logger_on_first_use=False)
    with tempfile.TemporaryDirectory(prefix="relay-demo-") as tmp:
        org = await start_sandbox_org("mpp", Path(tmp))
        keyring = init_keys_dir(org.cfg.keys.directory, SystemClock().now(),
                                org.cfg.retention.epoch)
        relay = build(org.cfg, keyring, SystemClock())
        try:
            await relay.start()
            await org.sandbox.wait_for_subscriber()
            reporter = org.reporter("Reporter", hide_number=True, profile_name="Sam Q.")
            officer = org.officer("rc-devi")
            screens = Screens({"Reporter": reporter, "Devi (officer)": officer}, pace)
            print(_banner(org.cfg.organisation.name))
            if interactive:
                await _interactive(screens, reporter)
            else:
                for line in SCRIPT:
                    await _say(screens, reporter, "Reporter", line)
            await _officer_turn(screens, org, officer, reporter)
        finally:
            await relay.stop()
            await org.sandbox.stop()
    print("\nDemo finished: the temporary database and keys were deleted.")
    return 0


async def _officer_turn(screens: Screens, org: object, officer: Phone,
                        reporter: Phone) -> None:
    from relay.sandbox_org import SandboxOrg

    assert isinstance(org, SandboxOrg)
    case = next((m for m in reversed(officer.messages) if "New report" in (m.text or "")), None)
    if case is None:
        print("\n(No report was sent, so the officers have nothing to answer.)")
        return
    group = org.group("regen-group")
    reply = ("Thank you for telling us. You are not in trouble for raising it. "
             "Can we talk by phone tomorrow, or would you rather keep it to messages?")
    screens.typed("Devi (officer)", f"[quoting the case message] {reply}", group="conduct team")
    await officer.send_group(group, reply, quote=case)
    await screens.settle()
    await _say(screens, reporter, "Reporter", "Messages please. I'm free after 6pm.")
    print("\nThe officers never saw the reporter's number, Signal name or profile: "
          "only the case reference.")


async def _interactive(screens: Screens, reporter: Phone) -> None:
    print("\nYou are the reporter. Type messages to the conduct line; an empty line ends.\n")
    await screens.settle(wait=0.5)
    while True:
        line = await asyncio.to_thread(input, "you> ")
        if not line.strip():
            return
        await reporter.send(line)
        new = await screens.settle()
        if any("reference" in (m.text or "").lower() for m in new):
            return


def _banner(org: str) -> str:
    return (
        "═" * WIDTH + "\n"
        f" relay demo: the {org} conduct line, on the built-in Signal sandbox\n"
        " A member reports anonymously to the Regenerative Culture group; an officer\n"
        " replies by quoting the case message; the reporter answers.\n" + "═" * WIDTH
    )
