"""A short kill -9 soak for the normal suite: 3 reporters, 5 SIGKILLs, 1 follow-up each.

The full run is `python -m tests.soak.kill --kills 30` (see tests/soak/kill.py).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from relay.sandbox_org import org_config_data
from tests.soak.kill import Settings, classify, run_soak, toml_by_hand

SHORT = Settings(
    kills=5,
    reporters=3,
    followups=1,
    seed=20240611,
    time_limit=100.0,  # generous for slow CI; a normal run takes about 30 s
    # wider than the full run's 0.05-0.8 s so that, with only five kills, some land while
    # cases are created and follow-ups relayed rather than all in the first questions
    kill_delay=(0.2, 2.0),
)


async def test_relay_keeps_its_promise_through_kill_9(tmp_path: Path) -> None:
    result = await run_soak(SHORT, tmp_path / "soak")
    sys.stdout.write(result.render() + "\n")
    assert result.ok, result.render()
    figures = result.figures
    assert figures["kills"].startswith("5 ")
    assert figures["unmarked duplicates"] == 0
    assert figures["integrity_check"] == "ok"


def test_hand_written_toml_reads_back_as_the_same_config(tmp_path: Path) -> None:
    data = org_config_data("mpp", service="127.0.0.1:1", data_dir=tmp_path,
                           webhook_listen="127.0.0.1:2")
    assert tomllib.loads(toml_by_hand(data)) == data


def test_the_script_recognises_each_intake_question() -> None:
    assert classify("Do you want to stay anonymous?\n\n1. Anonymous") == (0, False)
    assert classify("Sorry, I was restarted — we were at:\n\nWhat is it about?") == (2, True)
    more = "Tell us what happened, in your own words. I already have 1 message. Add anything"
    assert classify(more)[0] == 6
    assert classify("Your report has been sent. Your reference is K7F-3Q.") == (None, False)
