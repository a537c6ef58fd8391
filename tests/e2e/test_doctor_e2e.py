"""`relay doctor` as a user runs it (the console script, in a subprocess) next to a real
relay on the sandbox: all ok on a set-up organisation, the failing line when not, and
never a number, ACI or profile name in what it prints."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from keys import Keyring
from relay.app import Relay, build
from relay.clock import SystemClock
from relay.config import load_config
from relay.sandbox_org import BOT_ACI, BOT_NUMBER
from tests.canary import Canaries, find_canaries
from tests.integration.doctor_org import DoctorOrg, doctor_org, free_port

pytestmark = pytest.mark.asyncio

RELAY_CLI = Path(sys.executable).parent / "relay"
WAIT = 10.0


@dataclass
class Doctor:
    code: int
    out: str
    err: str

    def line(self, check: str) -> str:
        found = [ln for ln in self.out.splitlines() if ln.split()[1:2] == [check]]
        assert len(found) == 1, (check, self.out)
        return found[0]


async def run_doctor(path: Path, *args: str) -> Doctor:
    """The console script, as a user types it, with relay and the sandbox still serving."""
    proc = await asyncio.create_subprocess_exec(
        str(RELAY_CLI), "doctor", "-c", str(path), *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Doctor(proc.returncode, out.decode(), err.decode())


@dataclass
class Live:
    org: DoctorOrg
    relay: Relay


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    """A fully set-up organisation with relay running: webhook sink and health endpoint on."""
    org = await doctor_org(tmp_path, webhook=True, health_listen=free_port())
    cfg = load_config(org.path)
    relay = build(cfg, Keyring.load(cfg.keys.directory), SystemClock())
    await relay.start()
    await org.org.sandbox.wait_for_subscriber()
    yield Live(org, relay)
    await relay.stop()
    await org.stop()


async def _healthz_status(listen: str, wanted: int) -> None:
    deadline = time.monotonic() + WAIT
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"http://{listen}/healthz") as resp:
                if resp.status == wanted:
                    return
            assert time.monotonic() < deadline, f"/healthz never answered {wanted}"
            await asyncio.sleep(0.2)


async def test_a_set_up_organisation_is_all_ok_and_exits_0(live: Live) -> None:
    await _healthz_status(str(load_config(live.org.path).health.listen), 200)
    doctor = await run_doctor(live.org.path)
    assert doctor.err == ""
    lines = doctor.out.splitlines()
    assert [ln.split()[1] for ln in lines] == [
        "config", "api", "api-mode", "account", "profile", "webhook", "group:regen-group",
        "roster:regen-group", "keys", "database", "disk", "relay"]
    assert all(ln.startswith("ok ") for ln in lines), doctor.out
    assert "relay's webhook sink answers" in doctor.line("webhook")
    assert "relay is running and healthy" in doctor.line("relay")
    assert doctor.code == 0


async def test_a_wrong_mode_exits_1_with_the_failing_line(live: Live) -> None:
    live.org.org.sandbox.faults.about_mode("normal")
    doctor = await run_doctor(live.org.path)
    assert doctor.code == 1
    assert doctor.line("api-mode").startswith("FAIL  api-mode")
    assert "fix: set MODE=json-rpc on the signal-cli-rest-api container" in doctor.line(
        "api-mode")
    assert sum(ln.startswith("FAIL") for ln in doctor.out.splitlines()) == 1


async def test_json_output_lists_every_check(live: Live) -> None:
    live.org.org.sandbox.faults.about_version("0.100")
    doctor = await run_doctor(live.org.path, "--json")
    assert doctor.code == 1
    entries = json.loads(doctor.out)
    assert {tuple(sorted(e)) for e in entries} == {("check", "detail", "fix", "status")}
    by_check = {e["check"]: e for e in entries}
    assert by_check["api-mode"]["status"] == "FAIL"
    assert "0.101 or newer" in by_check["api-mode"]["fix"]
    assert by_check["keys"] == {"check": "keys", "status": "ok", "fix": None,
                                "detail": by_check["keys"]["detail"]}


async def test_relay_up_but_its_sink_not_at_webhook_listen_fails(live: Live) -> None:
    # the file now names a port relay's sink is not on (relay started with the old one)
    live.org.set("signal", "webhook_listen", free_port())
    doctor = await run_doctor(live.org.path)
    assert doctor.code == 1
    line = doctor.line("webhook")
    assert line.startswith("FAIL  webhook")
    assert "relay is running but its webhook sink does not answer at signal.webhook_listen" \
        in line
    assert "restart relay" in line


async def test_an_unhealthy_relay_fails_the_relay_check(live: Live) -> None:
    listen = str(load_config(live.org.path).health.listen)
    await live.org.org.sandbox.faults.rest_down()
    await _healthz_status(listen, 503)
    doctor = await run_doctor(live.org.path)
    assert doctor.code == 1
    line = doctor.line("relay")
    assert line.startswith("FAIL  relay")
    assert "relay is running but unhealthy: receiver (not connected to signal-cli-rest-api)" \
        in line
    assert f"`relay health -c {live.org.path}`" in line


async def test_the_output_names_no_number_aci_or_profile_name(live: Live) -> None:
    """Strangers, a removed officer, a pending officer and a wrong key: much to report,
    and nothing personal in it, in either output format."""
    canaries = Canaries()
    sandbox = live.org.org.sandbox
    sandbox.bot.profile_name = canaries.profile_name
    grp = live.org.org.group("regen-group")
    devi = live.org.org.officer("rc-devi")
    stranger = sandbox.add_phone("stranger", canaries.e164, aci=canaries.aci,
                                 profile_name=canaries.profile_name)
    await sandbox.add_member(grp, stranger, by=devi)
    hidden = live.org.org.reporter("hidden", hide_number=True)
    await sandbox.invite(grp, hidden, by=devi)
    await sandbox.remove_member(grp, live.org.org.officer("rc-ines"), by=devi)
    await sandbox.set_admin(grp, sandbox.bot, admin=False, by=devi)
    grp.invite_link = "https://signal.group/#" + canaries.report_text
    sandbox.faults.about_version("unset")
    text_run = await run_doctor(live.org.path)
    json_run = await run_doctor(live.org.path, "--json")
    assert "1 stranger(s) in the group" in text_run.line("roster:regen-group")
    assert "rc-ines" in text_run.line("roster:regen-group")
    cfg = load_config(live.org.path)
    secrets = [BOT_NUMBER, BOT_ACI, canaries.e164, canaries.aci, canaries.profile_name,
               canaries.report_text, hidden.aci,
               *(o.aci for o in cfg.officers), *(o.display_name for o in cfg.officers),
               *(o.number for o in cfg.officers if o.number)]
    for run in (text_run, json_run):
        output = run.out + run.err
        assert run.code == 1
        assert find_canaries(output, canaries) == []
        leaked = [s for s in secrets if s.lower() in output.lower()]
        assert leaked == []
    print(text_run.out)  # noqa: T201 - shown with -s, to read what an operator sees
