"""The dispatcher's and the outbox pump's loop: a wake-up that arrives while a step is
running (work committed on the database thread just after the step looked) is acted on at
once, not after the idle poll."""

from __future__ import annotations

import asyncio
import time

from relay.loops import run_until_stopped


async def test_a_wake_during_an_idle_step_is_not_lost() -> None:
    wake, stop = asyncio.Event(), asyncio.Event()
    calls: list[float] = []

    async def step() -> bool:
        calls.append(time.perf_counter())
        if len(calls) == 1:
            wake.set()  # new work arrives while this step finds none
        else:
            stop.set()
        return False

    started = time.perf_counter()
    await asyncio.wait_for(run_until_stopped(step, wake, stop, name="test", idle_poll=5.0), 10)
    assert len(calls) == 2
    assert calls[1] - started < 1.0  # the second step ran at once, not after 5 s


async def test_an_idle_loop_waits_for_a_wake_or_the_poll() -> None:
    wake, stop = asyncio.Event(), asyncio.Event()
    calls: list[float] = []

    async def step() -> bool:
        calls.append(time.perf_counter())
        if len(calls) == 3:
            stop.set()
        return False

    started = time.perf_counter()
    await asyncio.wait_for(run_until_stopped(step, wake, stop, name="test", idle_poll=0.2), 10)
    assert len(calls) == 3
    assert calls[2] - started >= 0.35  # two idle waits: no busy loop without a wake
