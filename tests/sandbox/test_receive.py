"""Receive websocket: drop/buffer, fan-out, webhook, abort vs close, error frames, faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import websockets
from aiohttp import web
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK

from relay.sandbox import Phone, Sandbox
from tests.sandbox.conftest import BOT_ACI, BOT_NUMBER, call, connect, next_frame, next_text


async def test_frame_without_subscriber_is_dropped(sandbox: Sandbox, alice: Phone) -> None:
    await alice.send("lost")
    assert sandbox.frames[-1].outcome == "dropped"
    ws = await connect(sandbox)
    try:
        ts = await alice.send("kept")
        frame = await next_frame(ws)
        assert frame["envelope"]["timestamp"] == ts
        assert frame["envelope"]["dataMessage"]["message"] == "kept"
    finally:
        await ws.close()


async def test_buffer_when_no_subscriber_flushes_on_connect() -> None:
    async with Sandbox(BOT_NUMBER, BOT_ACI, buffer_when_no_subscriber=True) as sb:
        phone = sb.add_phone("Alice", "+4917612345678")
        first = await phone.send("one")
        second = await phone.send("two")
        assert [f.outcome for f in sb.frames] == ["buffered", "buffered"]
        ws = await connect(sb)
        try:
            got = [(await next_frame(ws))["envelope"]["timestamp"] for _ in range(2)]
        finally:
            await ws.close()
        assert got == [first, second]


async def test_every_subscriber_gets_every_frame(sandbox: Sandbox, alice: Phone) -> None:
    one = await connect(sandbox)
    two = await connect(sandbox)
    try:
        await alice.send("seen twice")
        texts = [await next_text(one), await next_text(two)]
        assert texts[0] == texts[1]
        assert sandbox.frames[-1].subscribers == 2
    finally:
        await one.close()
        await two.close()


async def test_other_account_reader_gets_only_error_frames(sandbox: Sandbox, alice: Phone) -> None:
    other = await websockets.connect(f"ws://{sandbox.service}/v1/receive/+4915100000000")
    mine = await connect(sandbox)
    await sandbox.wait_for_subscriber(2, timeout=2, all_accounts=True)
    try:
        await alice.send("private")
        await next_text(mine)
        await sandbox.faults.error_frame("boom")
        assert await next_text(other) == '{"error":"boom"}'
        assert await next_text(mine) == '{"error":"boom"}'
    finally:
        await other.close()
        await mine.close()


@pytest.fixture
async def sink() -> AsyncIterator[tuple[str, list[tuple[str, str]]]]:
    received: list[tuple[str, str]] = []

    async def ingest(request: web.Request) -> web.Response:
        received.append((request.content_type, await request.text()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/ingest", ingest)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/ingest", received
    finally:
        await runner.cleanup()


async def test_webhook_gets_jsonrpc_line_without_subscriber(
    sink: tuple[str, list[tuple[str, str]]],
) -> None:
    url, received = sink
    async with Sandbox(BOT_NUMBER, BOT_ACI, webhook_url=url) as sb:
        phone = sb.add_phone("Alice", "+4917612345678")
        await phone.send("to the sink")
        await sb.drain()
        assert sb.frames[-1].outcome == "dropped"
        [(content_type, body)] = received
        assert content_type == "application/json"
        assert body.endswith("}\n")
        assert body == (
            '{"jsonrpc":"2.0","method":"receive","params":' + sb.frames[-1].text + "}\n"
        )
        assert json.loads(body)["params"]["envelope"]["dataMessage"]["message"] == "to the sink"
        assert sb.requests[-1].kind == "webhook"
        assert sb.requests[-1].status == 200


async def test_webhook_failures_are_logged_not_retried(
    sink: tuple[str, list[tuple[str, str]]],
) -> None:
    url, received = sink
    async with Sandbox(BOT_NUMBER, BOT_ACI, webhook_url=url) as sb:
        phone = sb.add_phone("Alice", "+4917612345678")
        sb.faults.webhook_down(500, times=1)
        await phone.send("one")
        await phone.send("two")
        await sb.drain()
        statuses = [r.status for r in sb.requests if r.kind == "webhook"]
        assert statuses == [500, 200]
        assert len(received) == 1


async def test_slow_webhook_stalls_rest_calls(
    sink: tuple[str, list[tuple[str, str]]], http: aiohttp.ClientSession
) -> None:
    url, _ = sink
    async with Sandbox(BOT_NUMBER, BOT_ACI, webhook_url=url) as sb:
        phone = sb.add_phone("Alice", "+4917612345678")
        sb.faults.webhook_slow(0.3, times=1)
        await phone.send("slow")
        loop = asyncio.get_running_loop()
        start = loop.time()
        status, _ = await call(http, sb, "GET", f"/v1/groups/{BOT_NUMBER}")
        assert status == 200
        assert loop.time() - start > 0.2
        status, _ = await call(http, sb, "GET", "/v1/health")  # not routed to signal-cli
        assert status == 204


async def test_ws_abort_gives_1006(sandbox: Sandbox) -> None:
    ws = await connect(sandbox)
    assert await sandbox.faults.ws_abort() == 1
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(ws.recv(), 2)
    assert info.value.rcvd is None
    assert ws.close_code == 1006


@pytest.mark.parametrize("code", [1000, 1001, None])
async def test_ws_close_is_clean(sandbox: Sandbox, code: int | None) -> None:
    ws = await connect(sandbox)
    await sandbox.faults.ws_close(code)
    with pytest.raises(ConnectionClosedOK) as info:
        await asyncio.wait_for(ws.recv(), 2)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == (1005 if code is None else code)


@pytest.mark.parametrize("code", [1011, 4000])
async def test_ws_close_error_codes(sandbox: Sandbox, code: int) -> None:
    ws = await connect(sandbox)
    await sandbox.faults.ws_close(code)
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(ws.recv(), 2)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == code


async def test_stop_aborts_readers() -> None:
    sb = Sandbox(BOT_NUMBER, BOT_ACI)
    await sb.start()
    ws = await connect(sb)
    await sb.stop()
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(ws.recv(), 2)
    assert ws.close_code == 1006


async def test_plain_get_on_receive_is_400(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.base_url}/v1/receive/{BOT_NUMBER}") as resp:
        assert resp.status == 400
        assert await resp.text() == (
            "Bad Request\n"
            '{"error":"websocket: the client is not using the websocket protocol: '
            "'upgrade' token not found in 'Connection' header\"}"
        )


async def test_duplicate_burst_and_drop_if_busy(sandbox: Sandbox, alice: Phone) -> None:
    ws = await connect(sandbox)
    try:
        sandbox.faults.duplicate()
        ts = await alice.send("twice")
        assert [(await next_frame(ws))["envelope"]["timestamp"] for _ in range(2)] == [ts, ts]

        sandbox.faults.burst(3)
        sandbox.faults.drop_if_busy()
        sent = [await alice.send(f"burst {i}") for i in range(3)]
        first = await next_frame(ws)
        assert first["envelope"]["timestamp"] == sent[0]
        outcomes = [f.outcome for f in sandbox.frames[-3:]]
        assert outcomes == ["delivered", "dropped", "dropped"]
        with pytest.raises(TimeoutError):
            await next_frame(ws, within=0.2)
    finally:
        await ws.close()


async def test_reorder_and_drop_next(sandbox: Sandbox, alice: Phone) -> None:
    ws = await connect(sandbox)
    try:
        sandbox.faults.reorder()
        a = await alice.send("a")
        b = await alice.send("b")
        got = [(await next_frame(ws))["envelope"]["timestamp"] for _ in range(2)]
        assert got == [b, a]
        sandbox.faults.drop_next(1)
        await alice.send("never")
        c = await alice.send("c")
        assert (await next_frame(ws))["envelope"]["timestamp"] == c
    finally:
        await ws.close()


async def test_legacy_frames_fault(sandbox: Sandbox, alice: Phone) -> None:
    grp = sandbox.create_group("Officers", members=[alice])
    ws = await connect(sandbox)
    try:
        sandbox.faults.legacy_frames()
        await alice.send_group(grp, "old shape")
        info = (await next_frame(ws))["envelope"]["dataMessage"]["groupInfo"]
        assert set(info) == {"groupId", "type"}
        await alice.send_group(grp, "new shape")
        info = (await next_frame(ws))["envelope"]["dataMessage"]["groupInfo"]
        assert info["revision"] == 0
    finally:
        await ws.close()


async def test_silent_stall_swallows_frames(sandbox: Sandbox, alice: Phone) -> None:
    ws = await connect(sandbox)
    try:
        sandbox.faults.ws_silent_stall(no_pong=True)
        await alice.send("into the void")
        with pytest.raises(TimeoutError):
            await next_frame(ws, within=0.2)
        pong = await ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pong, 0.2)
        sandbox.faults.clear("ws_silent_stall")
        ts = await alice.send("back")
        assert (await next_frame(ws))["envelope"]["timestamp"] == ts
    finally:
        ws.transport.abort()


async def test_server_pings_and_answers_pings(http: aiohttp.ClientSession) -> None:
    async with (
        Sandbox(BOT_NUMBER, BOT_ACI, ping_interval=0.05) as sb,
        http.ws_connect(sb.receive_url, autoping=False) as ws,
    ):
        msg = await ws.receive(timeout=2)
        assert msg.type == aiohttp.WSMsgType.PING
        await ws.ping(b"x")
        msg = await ws.receive(timeout=2)
        while msg.type == aiohttp.WSMsgType.PING:
            msg = await ws.receive(timeout=2)
        assert msg.type == aiohttp.WSMsgType.PONG
        assert msg.data == b"x"


async def test_rest_down_refuses_then_recovers(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    ws = await connect(sandbox)
    await sandbox.faults.rest_down()
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(ws.recv(), 2)
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, sandbox, "GET", "/v1/health")
    await sandbox.faults.rest_up()
    status, _ = await call(http, sandbox, "GET", "/v1/health")
    assert status == 204
