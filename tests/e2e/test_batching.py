"""A burst goes through the batched paths (frames sharing a transaction, outbox rows
claimed and recorded a batch at a time, sends to different people at once): everything
arrives once, each person's messages in the order they were written, and a clean stop
right after the burst leaves nothing to resend."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from relay.outbox import Status
from relay.store.models import InboxRow, OutboxRow
from tests.e2e.conftest import Starter, expect, report

pytestmark = pytest.mark.asyncio
BURST = 24


async def test_a_burst_arrives_once_in_order_and_a_clean_stop_resends_nothing(
        start_org: Starter) -> None:
    run = await start_org("mpp")
    kim, lee = run.org.reporter("Kim"), run.org.reporter("Lee")
    kim_ref = await report(kim, identity="anonymous", scope="1", category="7")
    lee_ref = await report(lee, identity="anonymous", scope="2", officer="3", category="7")
    marcus = run.org.officer("rc-marcus")  # in the team group, and Lee's chosen officer
    await expect(marcus, lee_ref)
    for n in range(BURST):  # both reporters at once, as fast as the sandbox takes them
        await kim.send(f"kim burst {n:02d}")
        await lee.send(f"lee burst {n:02d}")
    await expect(marcus, f"kim burst {BURST - 1:02d}", wait=30)
    await expect(marcus, f"lee burst {BURST - 1:02d}", wait=30)
    await run.restart()  # a clean stop at once: results still in memory are recorded
    await asyncio.sleep(0.5)
    for who, ref in (("kim", kim_ref), ("lee", lee_ref)):
        seen = [m.text or "" for m in marcus.messages if f"{who} burst" in (m.text or "")]
        numbers = [next(int(w) for w in t.split() if w.isdigit()) for t in seen]
        assert numbers == list(range(BURST)), (who, ref)  # once each, in order
    assert not any("Possible repeat" in (m.text or "") for m in marcus.messages)
    acks = [m for m in kim.messages if "added to your report" in (m.text or "").lower()]
    assert len(acks) == BURST
    async with asyncio.timeout(10):
        while True:
            with run.relay.sessions.begin() as s:
                left = s.scalar(select(func.count()).select_from(OutboxRow).where(
                    OutboxRow.status.in_((Status.PENDING, Status.SENDING))))
                marked = s.scalar(select(func.count()).select_from(OutboxRow).where(
                    OutboxRow.possible_repeat.is_(True)))
                pending = s.scalar(select(func.count()).select_from(InboxRow).where(
                    InboxRow.status != "done"))
            if left == 0:
                break
            await asyncio.sleep(0.1)
    assert marked == 0
    assert pending == 0
