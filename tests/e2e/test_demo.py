"""`relay demo` plays the whole story on the sandbox and shows each phone's screen."""

from __future__ import annotations

import pytest

from relay.demo import run_demo

pytestmark = pytest.mark.asyncio


async def test_demo_shows_the_story_end_to_end(capsys: pytest.CaptureFixture[str],
                                               restore_logging: None) -> None:
    assert await run_demo(pace=0) == 0
    out = capsys.readouterr().out
    assert "Your reference is" in out
    assert "New report" in out  # the officers' group got the case
    assert "Reply from MPP" in out  # the officer's quote reached the reporter
    assert "More from the reporter" in out  # and the reporter's answer reached the officers
    assert "Sam Q." not in out.split("New report", 1)[1]  # anonymous: no profile name
