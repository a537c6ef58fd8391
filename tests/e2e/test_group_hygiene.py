"""A stranger in an officer group: case content is withheld, coordinators are told, and
delivery resumes once the group is clean again."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from relay.groups import is_clean
from relay.store.models import OutboxRow
from tests.e2e.conftest import Running, Starter, expect, report, say


async def until_group(run: Running, clean: bool) -> None:
    """Wait until relay has re-read the group after the update frame."""
    scope = run.org.cfg.scope("regen-group")
    for _ in range(200):
        if is_clean(run.relay.roster, run.org.cfg, scope) is clean:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"relay never saw the group as clean={clean}")

pytestmark = pytest.mark.asyncio


async def test_stranger_added_to_the_officer_group(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    kim = org.reporter("Kim")
    ref = await report(kim, identity="anonymous", scope="1", category="7")
    group = org.group("regen-group")
    await expect(org.officer("rc-ines"), ref)
    mallory = org.sandbox.add_phone("Mallory", "+15550188888", profile_name="Mallory")
    await org.sandbox.add_member(group, mallory, by=org.officer("rc-tomas"))
    await until_group(run, clean=False)  # the update frame makes relay re-read the group
    await say(kim, "He messaged me again last night.", "added to your report")
    rowan = org.officer("rc-rowan")  # a coordinator
    warning = await expect(rowan, "not on the roster", wait=15)
    assert "messaged me" not in (warning.text or "")
    await asyncio.sleep(0.5)
    assert not any("messaged me" in (m.text or "") for m in mallory.messages)
    assert not any("messaged me" in (m.text or "") for m in org.officer("rc-ines").messages)
    with run.relay.sessions.begin() as s:
        held = s.scalars(select(OutboxRow).where(OutboxRow.status == "held")).all()
        assert held
    await org.sandbox.remove_member(group, mallory, by=org.officer("rc-tomas"))
    await until_group(run, clean=True)
    resumed = await expect(org.officer("rc-ines"), "messaged me again", wait=15)
    assert resumed.group_id == group.id
    assert not any("messaged me" in (m.text or "") for m in mallory.messages)


async def test_a_pending_invite_also_holds_content(start_org: Starter) -> None:
    run = await start_org("mpp")
    org = run.org
    kim = org.reporter("Kim")
    ref = await report(kim, identity="anonymous", scope="1", category="7")
    group = org.group("regen-group")
    await expect(org.officer("rc-ines"), ref)
    stranger = org.sandbox.add_phone("Stranger", "+15550199999", profile_name="S",
                                     profile_key_known=False)
    await org.sandbox.invite(group, stranger, by=org.officer("rc-tomas"))
    await until_group(run, clean=False)
    await say(kim, "Another detail.", "added to your report")
    await expect(org.officer("rc-devi"), "not on the roster", wait=15)
    await asyncio.sleep(0.3)
    assert not any("Another detail" in (m.text or "") for m in org.officer("rc-ines").messages)


async def test_an_officer_yet_to_accept_the_invitation_does_not_hold_content(
        start_org: Starter) -> None:
    """A new group (`relay groups create`) has roster officers as pending invites until
    they accept; they may read the cases, so nothing is held for them."""
    run = await start_org("mpp")
    org = run.org
    kim = org.reporter("Kim")
    ref = await report(kim, identity="anonymous", scope="1", category="7")
    group = org.group("regen-group")
    await expect(org.officer("rc-ines"), ref)
    aaliyah = org.officer("rc-aaliyah")
    await org.sandbox.remove_member(group, aaliyah, by=org.officer("rc-tomas"))
    await org.sandbox.invite(group, aaliyah, by=org.officer("rc-tomas"))
    await asyncio.sleep(0.3)  # the update frames make relay re-read the group
    assert await run.relay.roster.refresh()
    assert run.relay.roster.groups[group.id].pending  # she really is only invited
    await until_group(run, clean=True)
    await say(kim, "One more detail.", "added to your report")
    await expect(org.officer("rc-ines"), "One more detail", wait=15)
    assert not any("not on the roster" in (m.text or "")
                   for m in org.officer("rc-rowan").messages)
