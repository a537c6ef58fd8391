"""Sandbox test fixtures: a started sandbox, the fixture identities, websocket helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from relay.sandbox import Phone, Sandbox

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "signal" / "fixtures"
BOT_NUMBER = "+4915112345678"
BOT_ACI = "0b1e5d0c-4f4e-4c1e-9a3a-6f1a2b3c4d5e"
ALICE_NUMBER = "+4917612345678"
ALICE_ACI = "7a3c2f1e-8b9d-4e6f-a1b2-c3d4e5f60718"
REPORTER_ACI = "c9d8e7f6-a5b4-4c3d-8e2f-1a0b9c8d7e6f"
INTERNAL_ID = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PUBLIC_ID = "group.QUFFQ0F3UUZCZ2NJQ1FvTERBME9EeEFSRWhNVUZSWVhHQmthR3h3ZEhoOD0="
BASE_TS = 1767225600000


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text("utf-8")


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    sb = Sandbox(BOT_NUMBER, BOT_ACI)
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


@pytest.fixture
def alice(sandbox: Sandbox) -> Phone:
    return sandbox.add_phone("Alice", ALICE_NUMBER, aci=ALICE_ACI)


@pytest.fixture
def reporter(sandbox: Sandbox) -> Phone:
    return sandbox.add_phone("Reporter", "+4917699999999", aci=REPORTER_ACI, hide_number=True)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(sandbox: Sandbox) -> websockets.ClientConnection:
    """A raw receive-websocket reader, subscribed once this returns."""
    before = sandbox.subscriber_count
    ws = await websockets.connect(sandbox.receive_url)
    await sandbox.wait_for_subscriber(before + 1, timeout=2)
    return ws


async def next_text(ws: websockets.ClientConnection, within: float = 2.0) -> str:
    """The next text frame (fails after ``within`` seconds)."""
    raw = await asyncio.wait_for(ws.recv(), within)
    assert isinstance(raw, str)
    return raw


async def next_frame(ws: websockets.ClientConnection, within: float = 2.0) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(await next_text(ws, within))
    return value


async def call(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    method: str,
    path: str,
    body: str | bytes | dict[str, Any] | None = None,
) -> tuple[int, str]:
    """One REST call; returns (status, body text)."""
    data = json.dumps(body) if isinstance(body, dict) else body
    async with http.request(method, sandbox.base_url + path, data=data) as resp:
        return resp.status, await resp.text()
