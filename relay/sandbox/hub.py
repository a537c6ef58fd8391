"""The receive side: ``GET /v1/receive/{number}`` websockets, fan-out and the webhook.

Like the REST API (WIRE §4, §8), one delivery loop handles receive notifications in
order: each is offered to every connected reader of the account (dropped when there is
none, unless ``buffer_when_no_subscriber``), then POSTed to the webhook synchronously;
while that POST runs, REST calls that would go to signal-cli wait (:attr:`Hub.rpc_idle`).
Sockets: no compression, 512-byte read limit, a ping every 54 s, pongs answered, client
frames discarded; the server never closes cleanly on its own (it aborts the TCP).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from relay.sandbox.faults import Faults
from relay.sandbox.ids import go_b64decode
from relay.sandbox.rest import go_json
from relay.sandbox.state import FrameRecord, RequestRecord

PING_INTERVAL_S = 54.0
READ_LIMIT = 512
FRAME_LOG_SIZE = 10_000
_EMPTY_CLOSE_FRAME = b"\x88\x00"
_NOT_WS = "websocket: the client is not using the websocket protocol: "

Outcome = Literal["delivered", "dropped", "buffered", "held"]


@dataclass(eq=False)
class Subscriber:
    """One connected ``/v1/receive/{number}`` reader."""

    ws: web.WebSocketResponse
    request: web.Request
    number: str
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    writing: bool = False

    @property
    def busy(self) -> bool:
        """Still writing (or about to write) an earlier frame: Go's select would miss."""
        return self.writing or not self.queue.empty()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


@dataclass(eq=False)
class _Item:
    text: str
    rpc_line: str | None
    all_accounts: bool
    done: asyncio.Future[Outcome]


class Hub:
    """Receive fan-out, delivery loop and webhook of one sandbox."""

    def __init__(
        self,
        *,
        account: str,
        faults: Faults,
        log: Callable[[RequestRecord], None],
        buffer_when_no_subscriber: bool = False,
        webhook_url: str | None = None,
        webhook_timeout: float | None = None,
        ping_interval: float = PING_INTERVAL_S,
    ) -> None:
        self.account = account
        self.faults = faults
        self.buffer_when_no_subscriber = buffer_when_no_subscriber
        self.webhook_url = webhook_url
        self.subscribers: list[Subscriber] = []
        self.frames: deque[FrameRecord] = deque(maxlen=FRAME_LOG_SIZE)
        self.backlog: list[str] = []
        self.rpc_idle = asyncio.Event()
        self.rpc_idle.set()
        self._log = log
        self._ping_interval = ping_interval
        self._webhook_timeout = webhook_timeout
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._held: list[_Item] = []
        self._reordered: _Item | None = None
        self._changed = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="sandbox-delivery")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        self.abort_all()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- submitting ------------------------------------------------------------------------
    async def submit(
        self, text: str, *, rpc_line: str | None, all_accounts: bool = False
    ) -> Outcome:
        """Queue one receive notification; return once it was fanned out (or dropped,
        buffered, held). The webhook POST happens afterwards in the delivery loop."""
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        item = _Item(text, rpc_line, all_accounts, done)
        if self._loop_task is None:  # not started, or stopped: nobody is listening
            self._record(item, "dropped", 0)
            return "dropped"
        self._queue.put_nowait(item)
        return await done

    async def drain(self) -> None:
        """Wait until every queued notification is fanned out and POSTed to the webhook."""
        await self._queue.join()

    async def wait_for_subscriber(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - test API takes a deadline
        *,
        all_accounts: bool = False,
    ) -> None:
        """Wait until at least ``count`` readers (of the account, or of any account with
        ``all_accounts``) are connected."""
        async with asyncio.timeout(timeout):
            while self.subscriber_count(all_accounts=all_accounts) < count:
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_no_subscriber(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until no reader of any account is connected."""
        async with asyncio.timeout(timeout):
            while self.subscribers:
                self._changed.clear()
                await self._changed.wait()

    def subscriber_count(self, *, all_accounts: bool = False) -> int:
        if all_accounts:
            return len(self.subscribers)
        return sum(1 for sub in self.subscribers if sub.number == self.account)

    # -- delivery loop ---------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._process(item)
            finally:
                self._queue.task_done()

    async def _process(self, item: _Item) -> None:
        if self.faults.take("drop_next"):
            self._record(item, "dropped", 0)
            return
        delay = self.faults.take("delay")
        if delay is not None:
            await asyncio.sleep(float(delay.value))
        burst = self.faults.peek("burst")
        if burst is not None:
            self._held.append(item)
            self._record(item, "held", 0)
            if len(self._held) >= int(burst.value):
                self.faults.clear("burst")
                held, self._held = self._held, []
                for queued in held:
                    await self._emit(queued)
            return
        if self._reordered is None and self.faults.take("reorder"):
            self._reordered = item
            self._record(item, "held", 0)
            return
        await self._emit(item)
        if self._reordered is not None:
            previous, self._reordered = self._reordered, None
            await self._emit(previous)

    async def _emit(self, item: _Item) -> None:
        copies = 2 if self.faults.take("duplicate") else 1
        for _ in range(copies):
            outcome, reached = self._fanout(item)
            self._record(item, outcome, reached)
            if item.rpc_line is not None and self.webhook_url is not None:
                await self._post_webhook(item.rpc_line)

    def _record(self, item: _Item, outcome: Outcome, reached: int) -> None:
        self.frames.append(FrameRecord(item.text, outcome, reached))
        if not item.done.done():
            item.done.set_result(outcome)

    def _fanout(self, item: _Item) -> tuple[Outcome, int]:
        targets = [s for s in self.subscribers if item.all_accounts or s.number == self.account]
        if not targets:
            if self.buffer_when_no_subscriber:
                self.backlog.append(item.text)
                return "buffered", 0
            return "dropped", 0
        reached = 0
        for sub in targets:
            if sub.busy and self.faults.take("drop_if_busy"):
                continue
            sub.queue.put_nowait(item.text)
            reached += 1
        return ("delivered" if reached else "dropped"), reached

    def push_now(self, text: str) -> int:
        """Write ``text`` to every connected reader (any account) right away, bypassing the
        delivery loop and its faults. Returns how many readers got it."""
        for sub in self.subscribers:
            sub.queue.put_nowait(text)
        return len(self.subscribers)

    # -- webhook ---------------------------------------------------------------------------
    async def _post_webhook(self, line: str) -> None:
        url = self.webhook_url
        if url is None:
            return
        self.rpc_idle.clear()
        try:
            slow = self.faults.take("webhook_slow")
            if slow is not None:
                await asyncio.sleep(float(slow.value))
            down = self.faults.take("webhook_down")
            if down is not None:
                status = int(down.value or 0)
            else:
                status = await self._post(url, line)
            self._log(RequestRecord("POST", urlsplit(url).path or "/", status, "webhook"))
        finally:
            self.rpc_idle.set()

    async def _post(self, url: str, line: str) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._webhook_timeout)
            )
        headers = {"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"}
        try:
            async with self._session.post(url, data=line.encode("utf-8"), headers=headers) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            return 0

    # -- websocket endpoint ----------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/receive/{number}``."""
        problem = _handshake_problem(request)
        if problem is not None:
            return _bad_handshake(problem)
        ws = web.WebSocketResponse(
            compress=False,
            heartbeat=None,
            max_msg_size=READ_LIMIT,
            autoping=False,
            timeout=2.0,
        )
        await ws.prepare(request)
        sub = Subscriber(ws=ws, request=request, number=request.match_info["number"])
        self._log(RequestRecord("GET", request.path, 101, "ws"))
        self._add(sub)
        writer = asyncio.create_task(self._writer(sub))
        pinger = asyncio.create_task(self._pinger(sub))
        try:
            await self._reader(sub)
        finally:
            self._remove(sub)
            writer.cancel()
            pinger.cancel()
            await asyncio.gather(writer, pinger, return_exceptions=True)
        return ws

    def _add(self, sub: Subscriber) -> None:
        self.subscribers.append(sub)
        if self.backlog and sub.number == self.account:
            for text in self.backlog:
                sub.queue.put_nowait(text)
            self.backlog.clear()
        self._changed.set()

    def _remove(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        self._changed.set()

    async def _reader(self, sub: Subscriber) -> None:
        while True:
            msg = await sub.ws.receive()
            if msg.type == aiohttp.WSMsgType.PING:
                stall = self.faults.peek("ws_silent_stall")
                if stall is None or not stall.value:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await sub.ws.pong(msg.data)
            elif msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                return

    async def _writer(self, sub: Subscriber) -> None:
        while True:
            text = await sub.queue.get()
            if self.faults.active("ws_silent_stall"):
                continue
            sub.writing = True
            busy = self.faults.peek("drop_if_busy")
            try:
                if busy is not None and busy.value:
                    await asyncio.sleep(float(busy.value))
                await sub.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                sub.abort()
                return
            finally:
                sub.writing = False

    async def _pinger(self, sub: Subscriber) -> None:
        while True:
            await asyncio.sleep(self._ping_interval)
            if self.faults.active("ws_silent_stall"):
                continue
            try:
                await sub.ws.ping(b"")
            except (ConnectionError, RuntimeError):
                return

    # -- actions ---------------------------------------------------------------------------
    def abort_all(self) -> int:
        """Abort every socket (no close frame): readers see 1006."""
        subs = list(self.subscribers)
        for sub in subs:
            sub.abort()
        return len(subs)

    async def close_all(self, code: int | None) -> int:
        """Close every socket with ``code`` (None: a close frame without status code)."""
        subs = list(self.subscribers)
        for sub in subs:
            if code is None:
                transport = sub.request.transport
                if transport is not None:
                    transport.write(_EMPTY_CLOSE_FRAME)
            else:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await sub.ws.close(code=code)
        return len(subs)


def _tokens(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def _handshake_problem(request: web.Request) -> str | None:
    """gorilla/websocket ``Upgrade`` checks, in its order."""
    if "upgrade" not in _tokens(request.headers.get("Connection", "")):
        return _NOT_WS + "'upgrade' token not found in 'Connection' header"
    if "websocket" not in _tokens(request.headers.get("Upgrade", "")):
        return _NOT_WS + "'websocket' token not found in 'Upgrade' header"
    if request.headers.get("Sec-WebSocket-Version", "") != "13":
        return "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header"
    key = go_b64decode(request.headers.get("Sec-WebSocket-Key", ""))
    if key is None or len(key) != 16:
        return (
            "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be "
            "Base64 encoded value of 16-byte in length"
        )
    return None


def _bad_handshake(problem: str) -> web.Response:
    """gorilla's ``http.Error(w, "Bad Request", 400)`` followed by gin's ``c.JSON``."""
    body = b"Bad Request\n" + go_json({"error": problem})
    headers = {"X-Content-Type-Options": "nosniff"}
    if "unsupported version" in problem:
        headers["Sec-Websocket-Version"] = "13"
    return web.Response(
        status=400, body=body, content_type="text/plain", charset="utf-8", headers=headers
    )


__all__ = ["Hub", "Outcome", "Subscriber"]
