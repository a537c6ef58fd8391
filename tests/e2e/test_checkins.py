"""Check-ins and escalations on the sandbox with a fake clock: nothing here sleeps for days."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from relay.clock import FakeClock
from relay.sandbox import Phone, Received
from tests.e2e.conftest import Running, Starter, expect, report, say

pytestmark = pytest.mark.asyncio

# 10:00 in New York (MPP's time zone) on a Tuesday
T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
CHECKIN = "just checking in"


def plain_category(run: Running) -> str:
    """The menu number of a category that is NOT marked for immediate review."""
    index = next(i for i, c in enumerate(run.org.cfg.categories) if not c.immediate_review)
    return str(index + 1)


def coordinators(run: Running) -> list[Phone]:
    return [run.org.officer(o.id) for o in run.org.cfg.coordinators()]


def alerts(phone: Phone) -> list[Received]:
    return [m for m in phone.messages if "relay alert" in (m.text or "")]


async def advance(run: Running, clock: FakeClock, **delta: float) -> None:
    clock.advance(timedelta(**delta))
    await run.relay.tick()
    await asyncio.sleep(0.3)  # let the outbox deliver what the tick queued


async def test_checkins_arrive_on_schedule_and_never_at_night(start_org: Starter) -> None:
    clock = FakeClock(T0.replace(hour=2))  # 21:00 in New York: inside quiet hours soon
    run = await start_org("mpp", clock=clock)
    sam = run.org.reporter("Sam")
    await report(sam, identity="anonymous", scope="1", category=plain_category(run))
    await advance(run, clock, hours=24)  # 21:00 local the next day: quiet hours
    assert not any(CHECKIN in (m.text or "") for m in sam.messages)
    await advance(run, clock, hours=11, minutes=30)  # 08:30 local: still quiet
    assert not any(CHECKIN in (m.text or "") for m in sam.messages)
    await advance(run, clock, minutes=31)  # 09:01 local
    first = await expect(sam, CHECKIN)
    assert "1. I'm okay" in (first.text or "")
    await say(sam, "1", "thank you for letting us know")
    await advance(run, clock, days=2)  # day 3
    checkins = [m for m in sam.messages if CHECKIN in (m.text or "")]
    assert len(checkins) == 2


async def test_update_reaches_officers_and_support_now_alerts_coordinators(
    start_org: Starter,
) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    kim = run.org.reporter("Kim")
    ref = await report(kim, identity="anonymous", scope="1", category=plain_category(run))
    await advance(run, clock, days=1)
    await expect(kim, CHECKIN)
    await say(kim, "2", "asked the team")
    await expect(run.org.officer("rc-marcus"), f"reporter of {ref} would like an update")
    await advance(run, clock, days=2)
    await expect(kim, CHECKIN)
    await say(kim, "3", "need support now")
    await asyncio.sleep(0.3)
    for coordinator in coordinators(run):
        got = [a for a in alerts(coordinator) if "not safe or need support" in (a.text or "")]
        assert len(got) == 1
        assert ref in (got[0].text or "")


async def test_unclaimed_case_alerts_until_claimed(start_org: Starter) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    kim = run.org.reporter("Kim")
    ref = await report(kim, identity="anonymous", scope="1", category=plain_category(run))
    rowan = run.org.officer("rc-rowan")
    await advance(run, clock, hours=23)
    assert not [a for a in alerts(rowan) if "not claimed" in (a.text or "")]
    await advance(run, clock, hours=1, minutes=1)  # the 24 h SLA
    assert len([a for a in alerts(rowan) if "no officer has claimed" in (a.text or "")]) == 1
    await advance(run, clock, hours=12)  # and again on the re-alert schedule
    assert len([a for a in alerts(rowan) if "no officer has claimed" in (a.text or "")]) == 2
    marcus = run.org.officer("rc-marcus")
    await marcus.send_group(run.org.group("regen-group"), f"/claim {ref}")
    await expect(kim, "picked up your report")
    await expect(rowan, "has taken case")
    await advance(run, clock, hours=48)
    assert len([a for a in alerts(rowan) if "no officer has claimed" in (a.text or "")]) == 2


async def test_reacting_to_the_case_message_claims_it(start_org: Starter) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    kim = run.org.reporter("Kim")
    ref = await report(kim, identity="anonymous", scope="1", category=plain_category(run))
    ines = run.org.officer("rc-ines")
    case_msg = await expect(ines, f"New report {ref}")
    await ines.react("👍", case_msg)
    await expect(kim, "picked up your report")
    taken = await expect(run.org.officer("rc-devi"), "has taken case")
    assert "Ines" in (taken.text or "")
    assert "Ines" not in (kim.messages[-1].text or "")  # the reporter is not told who


async def test_immediate_review_category_alerts_at_submission(start_org: Starter) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    ash = run.org.reporter("Ash")
    secret = "canary-immediate-0f9e8d7c"
    ref = await report(ash, identity="named", scope="1", category="1", story=(secret,))
    await asyncio.sleep(0.3)
    category = run.org.cfg.categories[0]
    assert category.immediate_review
    for coordinator in coordinators(run):
        got = [a for a in alerts(coordinator) if "immediate review" in (a.text or "")]
        assert len(got) == 1
        text = got[0].text or ""
        assert ref in text
        assert secret not in text
        assert category.label not in text  # no category names in alerts
        assert "Ash" not in text
        assert (ash.number or "+") not in text


async def test_closed_case_stops_checkins(start_org: Starter) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    lee = run.org.reporter("Lee")
    ref = await report(lee, identity="anonymous", scope="1", category=plain_category(run))
    await run.org.officer("rc-tomas").send_group(run.org.group("regen-group"), f"/close {ref}")
    closing = await expect(lee, "has been closed")
    assert "check-ins stop" in (closing.text or "").lower()
    await advance(run, clock, days=30)
    assert not any(CHECKIN in (m.text or "") for m in lee.messages)


async def test_restart_after_two_day_outage_sends_one_catch_up(start_org: Starter) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    jo = run.org.reporter("Jo")
    await report(jo, identity="anonymous", scope="1", category=plain_category(run))
    await run.relay.stop()
    clock.advance(timedelta(days=2, hours=2))  # the 1-day check-in was missed
    await run.restart()
    await run.relay.tick()
    await run.relay.tick()
    await asyncio.sleep(0.4)
    assert len([m for m in jo.messages if CHECKIN in (m.text or "")]) == 1


async def test_checkins_and_alerts_carry_no_content_or_identity(start_org: Starter) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    sam = run.org.reporter("Sam", hide_number=False, profile_name="Samantha Canary")
    story = "canary-story-5b4a3c2d1e"
    await report(sam, identity="named", scope="1", category="2", story=(story,),
                 who="Alex Canaryperson")
    dana = run.org.reporter("Dana")
    await report(dana, identity="anonymous", scope="1", category=plain_category(run),
                 who="  ALEX canaryperson ")  # the same person, typed differently
    await advance(run, clock, days=1, hours=1)
    await asyncio.sleep(0.3)
    rowan = run.org.officer("rc-rowan")
    same = [a for a in alerts(rowan) if "may concern the same person" in (a.text or "")]
    assert len(same) == 1
    forbidden = [story, "Samantha", "Canary", "canaryperson", sam.number or "+", sam.aci,
                 *(c.label for c in run.org.cfg.categories)]
    sent = [m.text or "" for m in sam.messages + dana.messages if CHECKIN in (m.text or "")]
    sent += [a.text or "" for c in coordinators(run) for a in alerts(c)]
    assert sent
    for text in sent:
        for needle in forbidden:
            assert needle.lower() not in text.lower(), needle
    # no oracle for reporters: neither reporter heard about the match
    for phone in (sam, dana):
        assert not any("same person" in (m.text or "") for m in phone.messages)


async def test_an_excluded_coordinator_hears_nothing_about_the_case(start_org: Starter) -> None:
    """Rowan is a coordinator; a reporter excluding Rowan from an immediate-review case
    must not tip Rowan off through an escalation alert."""
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    rae = run.org.reporter("Rae")
    # an immediate-review category, the whole team but Rowan, and "not safe"
    await report(rae, identity="anonymous", scope="1", category="1", exclude_name="Rowan",
                 story=("It was Rowan.",), safe="no")
    await advance(run, clock, days=3)
    rowan, devi = run.org.officer("rc-rowan"), run.org.officer("rc-devi")
    assert rowan.messages == []
    assert any("immediate review" in (a.text or "") for a in alerts(devi))
    assert any("not safe" in (a.text or "") for a in alerts(devi))
    assert any("no officer has claimed" in (a.text or "") for a in alerts(devi))
