"""The spine of the product, end to end: intake, scoped delivery, relayed replies."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Starter, expect, ref_in, report, say

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
    # every member of the team group got it, nobody outside the scope did
    for officer_id in org.cfg.scope("regen-group").officers:
        assert any(ref in (m.text or "") for m in org.officer(officer_id).messages)
    assert ref_in(case_msg.text) == ref
