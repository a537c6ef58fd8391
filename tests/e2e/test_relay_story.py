"""The spine of the product, end to end: intake, scoped delivery, relayed replies."""

from __future__ import annotations

import asyncio

import pytest

from relay.sandbox import Received
from tests.e2e.conftest import (
    Starter,
    everything_officers_saw,
    expect,
    option_number,
    ref_in,
    report,
    say,
)

pytestmark = pytest.mark.asyncio


async def test_named_report_reaches_the_team_group(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    alice = org.reporter("Alice", hide_number=False, profile_name="Alice Example")
    ref = await report(alice, identity="named", scope="1", story=("He shouted at me.",))
    rowan = org.officer("rc-rowan")
    case_msg = await expect(rowan, ref)
    assert case_msg.group_id == org.group("regen-group").id
    assert "│ He shouted at me." in (case_msg.text or "")
    assert "Alice Example" in (case_msg.text or "")  # named: officers see who it is
    assert alice.number is not None
    assert alice.number in (case_msg.text or "")
    for officer_id in org.cfg.scope("regen-group").officers:
        assert any(ref in (m.text or "") for m in org.officer(officer_id).messages)
    assert ref_in(case_msg.text) == ref


async def test_anonymous_report_never_shows_who_reported(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    sam = org.reporter("Sam", hide_number=False, profile_name="Sam Canary-Profile")
    ref = await report(sam, identity="anonymous", scope="1",
                       story=("Someone grabbed my arm after the meeting.", "It hurt."))
    case_msg = await expect(org.officer("rc-devi"), ref)
    assert "│ Someone grabbed my arm after the meeting." in (case_msg.text or "")
    # an officer replies, the reporter follows up: more traffic, still nothing identifying
    await org.officer("rc-devi").send_group(org.group("regen-group"), "We hear you.",
                                            quote=case_msg)
    await expect(sam, "We hear you.")
    await say(sam, "Thank you", "added to your report")
    await expect(org.officer("rc-devi"), "Thank you")
    seen = everything_officers_saw(org)
    assert sam.number is not None
    for secret in (sam.number, sam.aci, "Sam Canary-Profile", "Canary-Profile"):
        assert secret not in seen
        assert all(secret not in (s.text or "") for s in org.sandbox.sent
                   if list(s.recipients) != [sam.aci])


async def test_chosen_scope_with_an_excluded_officer(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    rae = org.reporter("Rae")
    ref = await report(rae, identity="anonymous", scope="2", officer_name="Marcus",
                       exclude_name="Rowan", story=("It was about Rowan.",))
    marcus_copy = await expect(org.officer("rc-marcus"), ref)
    assert marcus_copy.group_id is None  # 1:1 to the chosen officer
    await expect(org.officer("rc-devi"), ref)  # the support person
    await asyncio.sleep(0.3)
    for other in ("rc-rowan", "rc-ines", "rc-tomas", "rc-aaliyah"):
        assert not org.officer(other).messages, other
    # the chosen officer's reply reaches the reporter and is copied to the support person
    await org.officer("rc-marcus").send("I'm here for you.", quote=marcus_copy)
    await expect(rae, "I'm here for you.")
    await expect(org.officer("rc-devi"), "I'm here for you.")
    await asyncio.sleep(0.2)
    assert not org.officer("rc-rowan").messages


async def test_slash_reply_and_quote_reply_and_follow_up(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    kim = org.reporter("Kim")
    ref = await report(kim, identity="anonymous", scope="1")
    group = org.group("regen-group")
    tomas = org.officer("rc-tomas")
    case_msg = await expect(tomas, ref)
    await tomas.send_group(group, f"/reply {ref.lower()} Can we call you tomorrow?")
    got = await expect(kim, "Can we call you tomorrow?")
    assert ref in (got.text or "")
    await expect(tomas, "sent to the reporter")
    await say(kim, "Yes, after 5pm please", "added to your report")
    follow = await expect(org.officer("rc-ines"), "after 5pm")
    assert "│ Yes, after 5pm please" in (follow.text or "")
    await org.officer("rc-ines").send_group(group, "Great, talk then.", quote=follow)
    await expect(kim, "Great, talk then.")
    # quoting something that is not the bot's own message maps to nothing
    await tomas.send_group(group, "just chatting among ourselves")
    await asyncio.sleep(0.3)
    assert not any("chatting" in (m.text or "") for m in kim.messages)
    assert case_msg.group_id == group.id


async def test_stranger_in_the_officer_group_cannot_reply(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    kim = org.reporter("Kim")
    ref = await report(kim, identity="anonymous", scope="1")
    group = org.group("regen-group")
    case_msg = await expect(org.officer("rc-rowan"), ref)
    mallory = org.sandbox.add_phone("Mallory", "+15550177777", profile_name="Rowan")
    group.members.append(mallory)
    await mallory.send_group(group, f"/reply {ref} tell me your name")
    refusal = await expect(org.officer("rc-rowan"), "only registered officers")
    assert ref not in (refusal.text or "")
    await mallory.send_group(group, "what is your name?", quote=case_msg)
    await asyncio.sleep(0.4)
    assert not any("your name" in (m.text or "") for m in kim.messages)


async def test_stop_mid_intake_discards_the_draft(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    lee = org.reporter("Lee")
    await say(lee, "hi", "anonymous")
    await say(lee, "anonymous", "kind of help")
    await say(lee, "1", "about")
    stopped = await say(lee, "STOP", "nothing was sent")
    assert "deleted" in (stopped.text or "").lower()
    await asyncio.sleep(0.3)
    assert everything_officers_saw(org) == ""
    # a new message starts over with the greeting
    await say(lee, "hello again", "anonymous")


async def test_restart_mid_intake_resumes_at_the_same_question(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    jo = org.reporter("Jo")
    await say(jo, "hi", "anonymous")
    await say(jo, "anonymous", "kind of help")
    question = await say(jo, "2", "about")
    await run.restart()
    again = await expect(jo, "about")
    assert again.timestamp != question.timestamp
    assert option_number(again.text, "sexual") == option_number(question.text, "sexual")
    await say(jo, "1", "who should see")


async def test_garbage_at_every_step_reasks_and_keeps_the_draft(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    ash = org.reporter("Ash")
    await say(ash, "hi", "anonymous")
    garbage = ("🙃", "7", "??", "maybe", "-1")
    steps = [("anonymous", "kind of help"), ("1", "about"), ("1", "who should see"),
             ("1", "must not see")]
    for index, (answer, next_question) in enumerate(steps):
        last = max(m.timestamp for m in ash.messages)
        await ash.send(garbage[index % len(garbage)])
        def newer(m: Received, last: int = last) -> bool:
            return m.timestamp > last

        reask = await ash.wait_for(newer, timeout=8)
        # asked again, with the options listed again
        assert "1." in (reask.text or "")
        assert "2." in (reask.text or "")
        await say(ash, answer, next_question)
    await say(ash, "9", "must not see")  # not an option: asked again
    await say(ash, "none", "what happened")
    await say(ash, "It was bad.", "got it")
    await say(ash, "DONE", "when")
    for _ in range(3):
        await ash.send("skip")
    await expect(ash, "safe right now")
    await say(ash, "perhaps?", "safe right now")
    await say(ash, "yes", "check in")
    await say(ash, "banana", "check in")
    await say(ash, "no", "send")
    await say(ash, "what", "send")
    receipt = await say(ash, "SEND", "reference")
    ref = ref_in(receipt.text)
    case_msg = await expect(org.officer("rc-rowan"), ref)
    assert "│ It was bad." in (case_msg.text or "")


async def test_abandoned_draft_is_swept_silently(start_org: Starter) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from relay.store.models import Conversation

    run = await start_org("mpp")
    org = run.org
    pat = org.reporter("Pat")
    await say(pat, "hi", "anonymous")
    await say(pat, "anonymous", "kind of help")
    relay = run.relay
    later = relay.clock.now() + timedelta(hours=org.cfg.intake.draft_expiry_hours, minutes=1)
    with relay.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(Conversation)) == 1
        assert relay.dispatcher.reporters.sweep_expired(s, later) == 1
    with relay.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(Conversation)) == 0
    before = len(pat.messages)
    await asyncio.sleep(0.3)
    assert len(pat.messages) == before  # no notice that could be read over a shoulder
    await say(pat, "hello", "anonymous")  # coming back starts afresh
