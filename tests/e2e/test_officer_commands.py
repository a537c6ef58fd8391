"""Officers and coordinators handle cases from Signal: every command, refusals, bad input."""

from __future__ import annotations

import asyncio

import pytest

from relay.sandbox import Phone
from tests.e2e.conftest import Running, Starter, expect, report, say

pytestmark = pytest.mark.asyncio


async def _case(run: Running, category: str = "7") -> tuple[Phone, str]:
    reporter = run.org.reporter("Kim")
    ref = await report(reporter, identity="anonymous", scope="1", category=category,
                       story=("canary-thread-text",))
    await expect(run.org.officer("rc-marcus"), ref)
    return reporter, ref


async def _group_says(run: Running, officer: str, text: str, expect_text: str) -> str:
    phone = run.org.officer(officer)
    await phone.send_group(run.org.group("regen-group"), text)
    got = await expect(phone, expect_text)
    return got.text or ""


async def test_cases_case_note_status(start_org: Starter) -> None:
    run = await start_org("mpp")
    kim, ref = await _case(run)
    listing = await _group_says(run, "rc-ines", "/cases", "open cases (1)")
    assert ref in listing
    assert "not claimed" in listing
    thread = await _group_says(run, "rc-ines", f"/case {ref}", f"case {ref}")
    assert "canary-thread-text" in thread
    await _group_says(run, "rc-ines", f"/note {ref} called her, will follow up", "note added")
    thread = await _group_says(run, "rc-tomas", f"/case {ref}", "note by")
    assert "will follow up" in thread
    await _group_says(run, "rc-ines", f"/status {ref} waiting", "is now waiting")
    await asyncio.sleep(0.3)
    assert not any("follow up" in (m.text or "") for m in kim.messages)  # notes stay inside
    await _group_says(run, "rc-ines", f"/status {ref} sleeping", "usage: /status")


async def test_close_and_reopen_tell_the_reporter(start_org: Starter) -> None:
    run = await start_org("mpp")
    kim, ref = await _case(run)
    await _group_says(run, "rc-devi", f"/close {ref}", "closed case")
    await expect(kim, "has been closed")
    await _group_says(run, "rc-devi", f"/reopen {ref}", "reopened case")
    reopened = await expect(kim, "has been reopened")
    assert "canary" not in (reopened.text or "")


async def test_recusal_in_a_team_scope_reroutes_without_the_officer(start_org: Starter) -> None:
    run = await start_org("mpp")
    kim, ref = await _case(run)
    await _group_says(run, "rc-marcus", f"/recuse {ref}", "stepped back")
    marcus = run.org.officer("rc-marcus")
    seen = len(marcus.messages)
    await say(kim, "One more thing: it happened again.", "added to your report")
    follow = await expect(run.org.officer("rc-ines"), "it happened again")
    assert follow.group_id is None  # the group includes Marcus, so it goes 1:1 now
    await asyncio.sleep(0.3)
    assert not any("happened again" in (m.text or "") for m in marcus.messages[seen:])


async def test_recusal_of_the_chosen_officer_asks_the_reporter(start_org: Starter) -> None:
    run = await start_org("mpp")
    rae = run.org.reporter("Rae")
    ref = await report(rae, identity="anonymous", scope="2", officer="3", category="7")
    marcus = run.org.officer("rc-marcus")
    await expect(marcus, ref)
    await marcus.send(f"/recuse {ref}")
    await expect(marcus, "stepped back")
    question = await expect(rae, "who would you like instead")
    assert "Marcus" not in (question.text or "")
    line = next(x for x in (question.text or "").splitlines() if "Ines" in x)
    await rae.send(line.split(".")[0])
    await expect(run.org.officer("rc-ines"), f"You now have case {ref}")
    seen = len(marcus.messages)
    await say(rae, "Thank you.", "added to your report")
    await expect(run.org.officer("rc-ines"), "Thank you.")
    await asyncio.sleep(0.3)
    assert not any("Thank you." in (m.text or "") for m in marcus.messages[seen:])


async def test_handoff_and_claims(start_org: Starter) -> None:
    run = await start_org("mpp")
    kim, ref = await _case(run)
    await _group_says(run, "rc-ines", f"/claim {ref}", "has taken case")
    await expect(kim, "picked up your report")
    taken = await _group_says(run, "rc-tomas", f"/claim {ref}", "already taken")
    assert "Ines" in taken
    await _group_says(run, "rc-ines", f"/handoff {ref} @Tomas", "handed case")
    await _group_says(run, "rc-ines", f"/handoff {ref} @Nobody", "usage: /handoff")
    await _group_says(run, "rc-tomas", f"/unclaim {ref}", "has let go of case")
    listing = await _group_says(run, "rc-devi", "/cases", "open cases (1)")
    assert "not claimed" in listing


async def test_coordinator_commands_and_refusals(start_org: Starter) -> None:
    run = await start_org("mpp")
    _, ref = await _case(run, category="1")  # immediate review
    rowan = run.org.officer("rc-rowan")  # a coordinator
    await rowan.send("/escalations")
    alerts = await expect(rowan, "open alerts")
    assert ref in (alerts.text or "")
    assert "immediate review" in (alerts.text or "")
    await rowan.send("/stats")
    stats = await expect(rowan, "cases by state")
    assert "open 1" in (stats.text or "")
    await rowan.send("/roster")
    roster = await expect(rowan, "roster")
    assert "Marcus (Regenerative Culture): officer, support" in (roster.text or "")
    await rowan.send(f"/ack {ref}")
    await expect(rowan, f"alerts for {ref} stop")
    await rowan.send("/escalations")
    await expect(rowan, "no open alerts")
    aaliyah = run.org.officer("rc-aaliyah")  # an officer, not a coordinator
    await aaliyah.send("/stats")
    await expect(aaliyah, "only coordinators")


async def test_malformed_commands_get_the_usage_line(start_org: Starter) -> None:
    run = await start_org("mpp")
    _, ref = await _case(run)
    for text, answer in [
        ("/reply", "to reply, send /reply"),
        ("/reply 12; DROP TABLE cases", "to reply, send /reply"),
        ("/note", "usage: /note"),
        (f"/note {ref}", "usage: /note"),
        ("/claim KKK", "usage: /claim"),
        ("/case ZZZ-ZZ", "no open case"),
        ("/frobnicate", "don't know that command"),
        ("/help", "commands"),
    ]:
        await _group_says(run, "rc-ines", text, answer)


async def test_a_stranger_cannot_use_commands(start_org: Starter) -> None:
    run = await start_org("mpp")
    kim, ref = await _case(run)
    mallory = run.org.sandbox.add_phone("Mallory", "+15550166666", profile_name="Ines")
    await mallory.send(f"/close {ref}")
    await asyncio.sleep(0.3)
    # a DM from a non-officer is a conversation with a would-be reporter, never a command
    assert not any("has been closed" in (m.text or "") for m in kim.messages)
    group = run.org.group("regen-group")
    group.members.append(mallory)
    await mallory.send_group(group, f"/close {ref}")
    await expect(run.org.officer("rc-ines"), "only registered officers")
    assert not any("has been closed" in (m.text or "") for m in kim.messages)
