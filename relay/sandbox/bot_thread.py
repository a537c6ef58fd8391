"""Run an unmodified signalbot ``SignalBot`` in its own thread and event loop.

``SignalBot.stop()`` ends by calling ``loop.stop()`` on the bot's loop, which would break
a test's own loop (pytest-asyncio, ``asyncio.run``). Giving the bot a dedicated thread
makes the public ``stop()`` the clean shutdown it was meant to be: it cancels the
pipeline, closes the HTTP session, stops the bot's loop, and the thread then closes it.
Use :meth:`BotThread.call` to run coroutines (``bot.messages.send`` …) on the bot's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from signalbot import SignalBot

T = TypeVar("T")


class BotThread:
    """``SignalBot(config)`` started with ``start(run_forever=False)`` on a private loop."""

    def __init__(
        self,
        config: Mapping[str, Any],
        setup: Callable[[SignalBot], None] | None = None,
    ) -> None:
        self._config = dict(config)
        self._setup = setup
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bot: SignalBot | None = None
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()

    @property
    def bot(self) -> SignalBot:
        if self._bot is None:
            msg = "bot not started"
            raise RuntimeError(msg)
        return self._bot

    async def start(self, timeout: float = 10.0) -> SignalBot:  # noqa: ASYNC109 - test API takes a deadline
        """Construct the bot in its thread (``setup`` registers handlers), call
        ``bot.start(run_forever=False)`` and run the loop. Returns once it runs."""
        self._thread = threading.Thread(target=self._main, name="signalbot", daemon=True)
        self._thread.start()
        await asyncio.wait_for(asyncio.wrap_future(self._started), timeout)
        return self.bot

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._create())
            self._started.set_result(None)
            loop.run_forever()
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
        finally:
            _cancel_leftovers(loop)
            loop.close()

    async def _create(self) -> None:
        bot = SignalBot(self._config)  # picks up this (running) loop
        if self._setup is not None:
            self._setup(bot)
        bot.start(run_forever=False)
        self._bot = bot

    def _submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        if self._loop is None:
            msg = "bot not started"
            raise RuntimeError(msg)

        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop)

    async def call(self, factory: Callable[[SignalBot], Awaitable[T]], timeout: float = 10.0) -> T:  # noqa: ASYNC109 - test API takes a deadline
        """Run ``factory(bot)`` on the bot's loop and await its result here."""
        return await asyncio.wait_for(asyncio.wrap_future(self._submit(factory(self.bot))), timeout)

    async def wait_until_ready(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - test API takes a deadline
        """``bot.wait_until_ready()`` (init done; the websocket may not be subscribed yet)."""
        await self.call(lambda bot: bot.wait_until_ready(), timeout)

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - test API takes a deadline
        """``bot.stop()`` on the bot's loop, then join the thread."""
        if self._thread is None or self._loop is None or self._bot is None:
            return
        if self._loop.is_running():
            self._submit(self._bot.stop())
        await asyncio.wait_for(asyncio.to_thread(self._thread.join), timeout)
        self._thread = None


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
