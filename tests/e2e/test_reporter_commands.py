"""The reporter's commands end to end: STATUS, ADD, REVEAL, WITHDRAW, FORGET ME."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from relay.cases import case_by_ref
from relay.clock import FakeClock
from relay.sandbox import Phone
from relay.store.models import AuditEntry, Case, CaseMessage, Conversation, ReporterLink
from tests.e2e.conftest import (
    Running,
    Starter,
    everything_officers_saw,
    expect,
    ref_in,
    report,
    say,
)

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # 10:00 in New York, a Tuesday
CHECKIN = "just checking in"


def plain_category(run: Running) -> str:
    """The menu number of a category NOT marked for immediate review (no alerts at once)."""
    index = next(i for i, c in enumerate(run.org.cfg.categories) if not c.immediate_review)
    return str(index + 1)


async def second_report(phone: Phone, story: str) -> str:
    """A reporter with an open case starts another one with NEW."""
    await say(phone, "NEW", "anonymous")
    await say(phone, "anonymous", "kind of help")
    await say(phone, "1", "about")
    await say(phone, "1", "who should see")
    await say(phone, "1", "must not see")
    await say(phone, "none", "what happened")
    await say(phone, story, "got it")
    await say(phone, "DONE", "when")
    for _ in range(3):
        await phone.send("skip")
    await expect(phone, "safe right now")
    await say(phone, "yes", "check in")
    await say(phone, "no", "send")
    return ref_in((await say(phone, "SEND", "reference")).text)


def events(run: Running, ref: str) -> list[str]:
    with run.relay.sessions.begin() as s:
        return list(s.scalars(select(AuditEntry.event).where(AuditEntry.case_ref == ref)
                              .order_by(AuditEntry.seq)))


def case_row(run: Running, ref: str) -> Case:
    with run.relay.sessions.begin() as s:
        row = s.scalar(select(Case).where(Case.ref == ref))
        assert row is not None
        s.expunge(row)
        return row


async def advance(run: Running, clock: FakeClock, **delta: float) -> None:
    clock.advance(timedelta(**delta))
    await run.relay.tick()
    await asyncio.sleep(0.3)  # let the outbox deliver what the tick queued


async def test_status_says_where_each_report_is(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    kim = org.reporter("Kim")
    story = "canary-status-story-7c6b"
    ref = await report(kim, identity="anonymous", scope="1", story=(story,))
    status = await say(kim, "Status?", "your reports")
    assert f"{ref}: waiting for someone to pick it up" in (status.text or "")
    await org.officer("rc-marcus").send_group(org.group("regen-group"), f"/claim {ref}")
    await expect(kim, "picked up your report")
    status = await say(kim, "STATUS", f"{ref}: someone from the team")
    assert story not in (status.text or "")
    assert "Marcus" not in (status.text or "")  # neutral words: nobody's name
    await asyncio.sleep(0.3)
    seen = everything_officers_saw(org)
    assert "│ Status?" not in seen  # a command is never relayed
    assert "│ STATUS" not in seen


async def test_add_sends_the_next_message_to_the_chosen_report(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    kim = org.reporter("Kim")
    first = await report(kim, identity="anonymous", scope="1")
    second = await second_report(kim, "It happened again, elsewhere.")
    which = await say(kim, "add", "which report would you like to add to")
    number = next(line.split(".")[0].strip() for line in (which.text or "").splitlines()
                  if first in line)
    await say(kim, number, f"your next message goes to report {first}")
    await say(kim, "He phoned me twice last night.", f"added to your report {first}")
    follow = await expect(org.officer("rc-rowan"), "He phoned me twice")
    assert first in (follow.text or "")
    assert second not in (follow.text or "")
    assert "│ He phoned me twice last night." in (follow.text or "")
    # naming the case skips the "which report?" question
    await say(kim, f"add {second}", f"your next message goes to report {second}")
    await say(kim, "And he texted.", f"added to your report {second}")


async def test_reveal_asks_twice_then_officers_learn_who_it_is(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    sam = org.reporter("Sam", hide_number=False, profile_name="Sam Canary-Profile")
    assert sam.number is not None
    ref = await report(sam, identity="anonymous", scope="1", story=("He grabbed my arm.",))
    await expect(org.officer("rc-rowan"), ref)
    explained = await say(sam, "reveal", "reply yes")
    assert "Sam Canary-Profile" in (explained.text or "")
    assert sam.number in (explained.text or "")
    before = everything_officers_saw(org)
    await say(sam, "yes", "this cannot be undone. reply reveal to confirm.")
    await asyncio.sleep(0.3)
    assert everything_officers_saw(org) == before  # nothing shared after one YES
    for secret in (sam.number, sam.aci, "Sam Canary-Profile", "Canary-Profile"):
        assert secret not in before
    await say(sam, "REVEAL", "now know who you are")
    told = await expect(org.officer("rc-rowan"), "has chosen to tell you who they are")
    assert (told.text or "") == (f"The reporter of {ref} has chosen to tell you who they are: "
                                 f"Sam Canary-Profile, {sam.number}")
    for officer_id in org.cfg.scope("regen-group").officers:  # everyone in scope
        if officer_id != "rc-rowan":
            await expect(org.officer(officer_id), "has chosen to tell you who they are")
    assert case_row(run, ref).named
    assert "case.revealed" in events(run, ref)
    with run.relay.sessions.begin() as s:
        case = case_by_ref(s, run.relay.sealer, ref)
        assert case is not None
        kinds = list(s.scalars(select(CaseMessage.kind).where(CaseMessage.case_id == case.id)
                               .order_by(CaseMessage.seq)))
    assert kinds[-1] == "system"
    await say(sam, "reveal", "already know who you are")  # and only once


async def test_reveal_cancelled_at_the_second_step_shares_nothing(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    sam = org.reporter("Sam", hide_number=False, profile_name="Sam Canary-Profile")
    assert sam.number is not None
    ref = await report(sam, identity="anonymous", scope="1")
    await expect(org.officer("rc-rowan"), ref)
    await say(sam, "reveal", "reply yes")
    await say(sam, "yes", "reply reveal to confirm")
    await say(sam, "no", "okay, nothing was shared")
    await say(sam, "REVEAL", "reply yes")  # starts over: one word never reveals
    await say(sam, "stop", "okay, nothing was shared")
    await asyncio.sleep(0.4)
    seen = everything_officers_saw(org)
    for secret in (sam.number, sam.aci, "Sam Canary-Profile", "Canary-Profile"):
        assert secret not in seen
    assert "who they are" not in seen
    assert not case_row(run, ref).named
    assert "case.revealed" not in events(run, ref)


async def test_withdraw_closes_the_case_and_stops_checkins(start_org: Starter) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    org = run.org
    lee = org.reporter("Lee")
    ref = await report(lee, identity="anonymous", scope="1", category=plain_category(run))
    await expect(org.officer("rc-tomas"), ref)
    # a sentence that mentions withdrawing is a message for the officers, not the command
    await say(lee, "I want to withdraw from the committee because of him.", "added to your")
    await expect(org.officer("rc-tomas"), "withdraw from the committee")
    assert case_row(run, ref).status != "closed"
    await advance(run, clock, days=1)
    await expect(lee, CHECKIN)  # a command right after a check-in is still a command
    await say(lee, "withdraw", f"close report {ref}")
    await say(lee, "Yes", f"your report {ref} is closed")
    told = await expect(org.officer("rc-tomas"), f"The reporter withdrew case {ref}")
    assert "withdrew" in (told.text or "")
    row = case_row(run, ref)
    assert row.status == "closed"
    assert row.closed_at is not None
    assert "case.withdrawn" in events(run, ref)
    await advance(run, clock, days=30)
    assert len([m for m in lee.messages if CHECKIN in (m.text or "")]) == 1  # none after


async def test_forget_me_closes_everything_and_unlinks_the_reporter(start_org: Starter) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    org = run.org
    ash = org.reporter("Ash")
    first = await report(ash, identity="anonymous", scope="1", category=plain_category(run))
    second = await second_report(ash, "Another thing happened.")
    await expect(org.officer("rc-rowan"), second)
    ask = await say(ash, "forget me", "reply forget to confirm")
    assert first in (ask.text or "")
    assert second in (ask.text or "")
    await say(ash, "no", "nothing was deleted")
    await say(ash, "Forget me!", "reply forget to confirm")
    done = await say(ash, "FORGET", "link between you and them is deleted")
    assert "until the retention period ends" in (done.text or "")
    for ref in (first, second):
        await expect(org.officer("rc-rowan"), f"The reporter withdrew case {ref}")
        assert case_row(run, ref).status == "closed"
    with run.relay.sessions.begin() as s:
        bidx = run.relay.sealer.reporter_index(ash.aci)
        assert s.scalar(select(func.count()).select_from(ReporterLink)
                        .where(ReporterLink.reporter_bidx == bidx)) == 0
        ids = list(s.scalars(select(Case.id).where(Case.ref.in_((first, second)))))
        assert s.scalar(select(func.count()).select_from(ReporterLink)
                        .where(ReporterLink.case_id.in_(ids))) == 0
        assert s.scalar(select(func.count()).select_from(Conversation)
                        .where(Conversation.reporter_bidx == bidx)) == 0
        # what the reporter wrote stays for the officers until retention ends
        kept = s.scalar(select(func.count()).select_from(CaseMessage)
                        .where(CaseMessage.case_id.in_(ids)))
        assert kept is not None
        assert kept > 0
    # officers can no longer reach them
    group = org.group("regen-group")
    await org.officer("rc-rowan").send_group(group, f"/reply {first} Are you there?")
    await asyncio.sleep(0.4)
    assert not any("Are you there?" in (m.text or "") for m in ash.messages)
    await advance(run, clock, days=30)
    assert not any(CHECKIN in (m.text or "") for m in ash.messages)
    # and the bot treats them as someone new
    await say(ash, "hello", "anonymous")
