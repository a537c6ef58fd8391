"""relay's own receive loop on the REST API's websocket.

signalbot 2.2.1 never reconnects after a clean close and loses frames it cannot parse
(WIRE.md F5, F12). This loop reconnects after any close, detects a silent socket with
websocket pings, and hands every frame, unparsed, to the durable inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import websockets
from websockets.exceptions import WebSocketException

from relay.logs import get_logger

log = get_logger("receiver")

Ingest = Callable[[list[str]], Awaitable[None]]
MAX_FRAME = 4 * 1024 * 1024
MAX_BATCH = 64


class Receiver:
    def __init__(self, url: str, ingest: Ingest, *, ping_interval: float = 20.0,
                 ping_timeout: float = 20.0) -> None:
        self._url = url
        self._ingest = ingest
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self.connected = asyncio.Event()
        self.connections = 0
        self.frames = 0

    async def run(self, stop: asyncio.Event) -> None:
        writer = asyncio.create_task(self._write_loop())
        try:
            await self._read_loop(stop)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await self._drain()

    async def _read_loop(self, stop: asyncio.Event) -> None:
        """Reconnect after any close or failure, with back-off from 0.1 s to 5 s."""
        self._delay = 0.1
        while not stop.is_set():
            try:
                await self._connection(stop)
            except (OSError, WebSocketException, TimeoutError) as exc:
                log.warning("receiver.disconnected", exc_type=type(exc).__name__)
            except Exception as exc:  # anything else must not end the one reader either
                log.error("receiver.failed", exc_type=type(exc).__name__)
            finally:
                self.connected.clear()
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._delay)
            self._delay = min(self._delay * 2, 5.0)

    async def _connection(self, stop: asyncio.Event) -> None:
        """One websocket session, until the server closes it, it fails, or we stop."""
        async with websockets.connect(
            self._url, ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout, max_size=MAX_FRAME, open_timeout=10,
        ) as ws:
            self.connections += 1
            self.connected.set()
            self._delay = 0.1
            log.info("receiver.connected", count=self.connections)
            reader = asyncio.ensure_future(self._read(ws))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not reader.done():
                reader.cancel()
            await asyncio.gather(reader, stopper, return_exceptions=True)
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                await reader  # re-raise the reader's failure for the loop to classify

    async def _read(self, ws: websockets.ClientConnection) -> None:
        async for raw in ws:
            text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            self.frames += 1
            self._queue.put_nowait(text)
        log.info("receiver.closed_by_server", status=str(ws.close_code))

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[str]) -> None:
        while True:
            try:
                await self._ingest(batch)
            except Exception as exc:
                log.error("receiver.ingest_failed", exc_type=type(exc).__name__,
                          count=len(batch))
                await asyncio.sleep(0.5)
            else:
                return

    async def _drain(self) -> None:
        batch: list[str] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._commit(batch)
