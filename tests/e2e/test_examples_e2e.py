"""One report through each organisation's shipped config, end to end."""

from __future__ import annotations

import pytest

from relay.config import ScopeKind
from relay.scopes import members, route
from tests.e2e.conftest import Starter, expect, report

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("example", ["mpp", "score", "caracol", "labour"])
async def test_a_report_through_each_example(start_org: Starter, example: str) -> None:
    run = await start_org(example)
    org = run.org
    scope = org.cfg.scopes[0]
    chosen = scope.officers[0] if scope.kind is ScopeKind.CHOSEN else None
    reporter = org.reporter("Member")
    ref = await report(reporter, identity="anonymous", scope="1",
                       officer="1" if chosen else None, story=("This happened to me.",))
    routing = route(org.cfg, scope.id, chosen, ())
    for officer_id in members(org.cfg, routing):
        got = await expect(org.officer(officer_id), ref)
        assert "│ This happened to me." in (got.text or "")
    receipt = reporter.messages[-1].text or ""
    assert ref in receipt
    outside = {o.id for o in org.cfg.officers} - set(members(org.cfg, routing))
    for officer_id in outside:
        assert not any(ref in (m.text or "") for m in org.officer(officer_id).messages)
