"""The operator guide's sandbox rehearsal, run exactly as written, from a fresh venv.

The block after `<!-- walkthrough:sandbox -->` in docs/operator-guide.md is what an operator
types; this test runs those lines in order with bash (stopping at the first failure) and
checks that the line works: the reporter is answered, the report reaches the officer, and
the officer's reply reaches the reporter.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operator-guide.md"
MARK = "<!-- walkthrough:sandbox -->"
PORTS = (8080, 8081, 9464)  # the sandbox, relay's webhook sink, relay's /healthz
REPORTER_NUMBER = "+15550100077"
STORY = "Someone shouted at me at the meeting."


def walkthrough() -> str:
    text = GUIDE.read_text("utf-8")
    assert MARK in text, f"{GUIDE.name} lost its {MARK} block"
    match = re.search(r"```sh\n(.*?)```", text.split(MARK, 1)[1], re.DOTALL)
    assert match, f"no ```sh block after {MARK}"
    return match.group(1)


def test_the_block_is_short_and_starts_from_a_fresh_venv() -> None:
    lines = walkthrough().splitlines()
    assert lines[0].startswith("python3 -m venv .venv && .venv/bin/pip install")
    assert len(lines) <= 30
    assert not any("_sandbox" in line for line in lines)  # only relay commands, no raw API


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    taken = [port for port in PORTS if not _port_free(port)]
    if taken:
        pytest.fail(f"the walkthrough uses 127.0.0.1 ports {PORTS}; in use: {taken}")
    (tmp_path / "relay").symlink_to(ROOT, target_is_directory=True)
    return tmp_path


def test_following_the_operator_guide_on_the_sandbox_reaches_a_working_line(
        workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(sys.prefix))  # not this test's venv
    script = "set -euo pipefail\n" + walkthrough()
    proc = subprocess.Popen(["bash", "-c", script], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the walkthrough did not finish in 7 minutes:\n{out[-4000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):  # nothing of it may outlive the test
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-6000:]
    assert (workdir / ".venv" / "bin" / "relay").exists()  # it really ran in its own venv
    doctor = [line for line in out.splitlines()
              if re.match(r"(ok|warn|FAIL)\s+\S+\s", line)]
    assert len(doctor) >= 12
    assert not [line for line in doctor if line.startswith("FAIL")]
    assert "What kind of help" in out  # the reporter was interviewed
    assert "Your report has been sent. Your reference is" in out
    assert "[group] message: New report" in out  # the officers' group got it
    assert "Reply from MPP about your report" in out  # and the officer's answer came back
    assert "call you tomorrow" in out
    log = (workdir / "relay.log").read_text("utf-8")
    assert "relay.ready" in log
    for secret in (REPORTER_NUMBER, STORY, "call you tomorrow"):
        assert secret not in log
