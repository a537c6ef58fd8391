"""The one polling loop shape the dispatcher and the outbox pump share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from relay.logs import get_logger

log = get_logger("loops")


async def run_until_stopped(
    step: Callable[[], Awaitable[bool]], wake: asyncio.Event, stop: asyncio.Event,
    *, name: str, idle_poll: float = 1.0,
) -> None:
    """Call `step` while it finds work; when idle, wait for `wake` or `idle_poll` seconds.

    A failing step is logged (type only) and retried after the idle wait, so one bad row
    or a database hiccup never ends the loop. `wake` is cleared before each step, so a
    wake-up that arrives while a step runs (work committed on the database thread just
    after the step looked) is never lost: the loop steps again at once.
    """
    while not stop.is_set():
        wake.clear()
        try:
            busy = await step()
        except Exception as exc:
            log.error("loop.step_failed", component=name, exc_type=type(exc).__name__)
            busy = False
        if not busy:
            waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
            await asyncio.wait(waiters, timeout=idle_poll, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
