"""Unmodified signalbot 2.2.1 against the sandbox over real sockets.

The bot runs in its own thread and event loop (``BotThread``): signalbot's public
``bot.stop()`` ends with ``loop.stop()``, which is only harmless on a loop of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from signalbot import DataMessageContext, DataMessageHandler, SendMessage, SignalBot

from relay.sandbox import BotThread, Phone, Sandbox
from tests.sandbox.conftest import BOT_NUMBER


@dataclass(frozen=True)
class Seen:
    text: str | None
    timestamp: int
    source_uuid: str | None
    group_id: str | None


class Recorder(DataMessageHandler):
    """Records every data message; replies (quoting) to texts starting with "ping"."""

    def __init__(self, sink: Callable[[Seen], None]) -> None:
        self.sink = sink

    async def handle_data_message(self, context: DataMessageContext) -> None:
        message = context.message
        group = message.group_info.group_id if message.group_info else None
        self.sink(Seen(message.text, message.timestamp, message.source_uuid, group))
        if message.text and message.text.startswith("ping"):
            await context.reply(SendMessage(text="pong " + message.text))


@dataclass
class Running:
    bot: BotThread
    seen: asyncio.Queue[Seen]

    async def next_seen(self) -> Seen:
        return await asyncio.wait_for(self.seen.get(), 5)


@pytest.fixture
async def running(sandbox: Sandbox) -> AsyncIterator[Running]:
    loop = asyncio.get_running_loop()
    seen: asyncio.Queue[Seen] = asyncio.Queue()

    def sink(item: Seen) -> None:
        loop.call_soon_threadsafe(seen.put_nowait, item)

    def setup(bot: SignalBot) -> None:
        bot.register(Recorder(sink))

    config = {
        "phone_number": BOT_NUMBER,
        "signal_service": sandbox.service,
        "connection_mode": "http_only",
        "storage": {"type": "in-memory"},
    }
    runner = BotThread(config, setup)
    await runner.start()
    try:
        yield Running(runner, seen)
    finally:
        await runner.stop()


async def _ready(sandbox: Sandbox, running: Running) -> None:
    await running.bot.wait_until_ready()
    # wait_until_ready() does not mean subscribed: frames before the handshake are lost.
    await sandbox.wait_for_subscriber()


@pytest.fixture
def grp_phones(sandbox: Sandbox) -> tuple[Phone, Phone]:
    alice = sandbox.add_phone("Alice", "+4917612345678")
    bob = sandbox.add_phone("Bob", "+4917612345679", hide_number=True)
    return alice, bob


async def test_startup_order_and_dm_roundtrip(
    sandbox: Sandbox, running: Running, grp_phones: tuple[Phone, Phone]
) -> None:
    alice, _ = grp_phones
    await _ready(sandbox, running)
    assert sandbox.request_lines() == [
        "GET /v1/health 204",
        "GET /v1/about 200",
        "GET /v1/about 200",
        f"GET /v1/groups/{BOT_NUMBER} 200",
        f"GET /v1/receive/{BOT_NUMBER} 101",
    ]

    ts = await alice.send("hello bot")
    seen = await running.next_seen()
    assert (seen.text, seen.timestamp, seen.source_uuid) == ("hello bot", ts, alice.aci)

    sent = await running.bot.call(lambda bot: bot.messages.send(SendMessage(text="hi"), alice.aci))
    got = await alice.wait_for(lambda m: m.text == "hi")
    assert got.timestamp == sent.timestamp
    assert got.group_id is None
    assert sandbox.sent[-1].timestamp == sent.timestamp


async def test_reply_quotes_the_phone_message(
    sandbox: Sandbox, running: Running, grp_phones: tuple[Phone, Phone]
) -> None:
    _, bob = grp_phones  # hidden number: reached by UUID
    await _ready(sandbox, running)
    ts = await bob.send("ping 1")
    await running.next_seen()
    reply = await bob.wait_for(lambda m: (m.text or "").startswith("pong"))
    assert reply.text == "pong ping 1"
    assert reply.quote_timestamp == ts
    assert reply.quote_author == bob.aci
    assert reply.quote_message == "ping 1"


async def test_group_message_and_reply_reach_every_member(
    sandbox: Sandbox, running: Running, grp_phones: tuple[Phone, Phone]
) -> None:
    alice, bob = grp_phones
    grp = sandbox.create_group("Officers", members=[alice, bob], admins=[alice])
    await _ready(sandbox, running)
    ts = await alice.send_group(grp, "ping group")
    seen = await running.next_seen()
    assert (seen.text, seen.timestamp, seen.group_id) == ("ping group", ts, grp.internal_id)
    for phone in (alice, bob):
        got = await phone.wait_for(lambda m: m.text == "pong ping group")
        assert got.group_id == grp.id
        assert got.quote_timestamp == ts


async def test_group_update_refreshes_and_new_group_is_fetched(
    sandbox: Sandbox, running: Running, grp_phones: tuple[Phone, Phone]
) -> None:
    alice, bob = grp_phones
    await _ready(sandbox, running)
    grp = sandbox.create_group("Late", members=[alice])  # unknown to the bot's registry
    await sandbox.add_member(grp, bob, by=alice)
    await alice.send_group(grp, "after update")
    seen = await running.next_seen()
    assert seen.text == "after update"
    lines = sandbox.request_lines()
    assert f"GET /v1/groups/{BOT_NUMBER}/{grp.id} 200" in lines
    assert lines.count(f"GET /v1/groups/{BOT_NUMBER} 200") >= 2


async def test_attachment_is_downloaded_by_signalbot(
    sandbox: Sandbox, running: Running, grp_phones: tuple[Phone, Phone]
) -> None:
    alice, _ = grp_phones
    await _ready(sandbox, running)
    await alice.send("photo", attachments=[(b"\xff\xd8\xff\xe0jpeg", "image/jpeg", "a.jpg")])
    seen = await running.next_seen()
    assert seen.text == "photo"
    assert any(line.startswith("GET /v1/attachments/") for line in sandbox.request_lines())


async def test_stop_is_clean(sandbox: Sandbox, grp_phones: tuple[Phone, Phone]) -> None:
    del grp_phones
    config = {
        "phone_number": BOT_NUMBER,
        "signal_service": sandbox.service,
        "connection_mode": "http_only",
        "storage": {"type": "in-memory"},
    }
    runner = BotThread(config)
    await runner.start()
    await runner.wait_until_ready()
    await sandbox.wait_for_subscriber()
    await runner.stop()
    await sandbox.wait_for_no_subscriber(timeout=2)


async def test_abort_makes_signalbot_reconnect(
    sandbox: Sandbox, running: Running, grp_phones: tuple[Phone, Phone]
) -> None:
    alice, _ = grp_phones
    await _ready(sandbox, running)
    await sandbox.faults.ws_abort()  # 1006: ReceiveError, restart after 1 s (F4)
    await sandbox.wait_for_no_subscriber(timeout=2)
    lost = await alice.send("while reconnecting")
    assert sandbox.frames[-1].outcome == "dropped"
    await sandbox.wait_for_subscriber(timeout=4)
    ts = await alice.send("after reconnect")
    seen = await running.next_seen()
    assert (seen.text, seen.timestamp) == ("after reconnect", ts)
    assert lost != ts
    assert sandbox.request_lines().count(f"GET /v1/receive/{BOT_NUMBER} 101") == 2
