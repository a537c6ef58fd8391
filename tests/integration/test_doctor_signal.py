"""`relay doctor` against the sandbox REST API: reachable, mode/version, account, profile."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from relay.doctor import exit_code
from relay.sandbox import Sandbox
from relay.sandbox_org import BOT_ACI, BOT_NUMBER
from tests.integration.doctor_org import DoctorOrg, free_port

pytestmark = pytest.mark.asyncio


OtherSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def other_sandbox(org: DoctorOrg) -> AsyncIterator[OtherSandbox]:
    """Start a sandbox with another account state (`Sandbox` keywords) and point the org's
    signal.service at it; every one is stopped afterwards."""
    started: list[Sandbox] = []

    async def serve(**state: Any) -> Sandbox:
        sandbox = await Sandbox(BOT_NUMBER, BOT_ACI, **state).start()
        started.append(sandbox)
        org.set("signal", "service", sandbox.service)
        return sandbox

    yield serve
    for sandbox in started:
        await sandbox.stop()


async def test_a_set_up_org_passes_the_signal_checks(org: DoctorOrg) -> None:
    lines = await org.lines()
    assert lines["api"].startswith("ok    api")
    assert "signal-cli-rest-api answers at signal.service" in lines["api"]
    assert lines["api-mode"].split() == ["ok", "api-mode", "mode", "json-rpc,", "version",
                                         "0.101"]
    assert lines["account"].startswith("ok")
    assert "is registered" in lines["account"]
    assert lines["profile"].startswith("ok")
    assert "has a profile name" in lines["profile"]
    assert exit_code(await org.run()) == 0


async def test_api_down_fails_with_the_container_fix_and_skips_what_needs_it(
        org: DoctorOrg) -> None:
    await org.org.sandbox.faults.rest_down()
    results = await org.run()
    lines = await org.lines()
    assert lines["api"].startswith("FAIL  api")
    assert "nothing answers at signal.service" in lines["api"]
    assert "docker compose up -d signal-cli-rest-api" in lines["api"]
    assert "never publish the API on a public port" in lines["api"]
    for later in ("api-mode", "account", "profile", "group:regen-group", "roster:regen-group"):
        assert "skipped: the REST API is not reachable" in lines[later], later
        assert "see 'api' above" in lines[later]
    # independent checks still ran
    assert lines["keys"].startswith("ok")
    assert lines["database"].startswith("ok")
    assert exit_code(results) == 1


async def test_health_not_204_fails(org: DoctorOrg) -> None:
    org.org.sandbox.faults.health_down(503)
    lines = await org.lines()
    assert lines["api"].startswith("FAIL")
    assert "answered HTTP 503, not 204" in lines["api"]


@pytest.mark.parametrize(("version", "status", "says", "fix"), [
    ("0.100", "FAIL", "version 0.100", ("bbernhard/signal-cli-rest-api:0.101 or newer "
                                       "(signalbot 2.2.1 refuses older ones)")),
    ("unset", "warn", "a local build, so signalbot skips its version check",
     "run a released image"),
    ("0.101.0", "ok", "version 0.101.0", ""),
    ("0.102", "ok", "version 0.102", ""),
])
async def test_api_version(org: DoctorOrg, version: str, status: str, says: str,
                           fix: str) -> None:
    org.org.sandbox.faults.about_version(version)
    line = (await org.lines())["api-mode"]
    assert line.split()[0] == status
    assert says in line
    assert fix in line
    assert ("fix:" in line) == (status != "ok")


async def test_api_mode_normal_fails_with_the_mode_fix(org: DoctorOrg) -> None:
    org.org.sandbox.faults.about_mode("normal")
    results = await org.run()
    line = (await org.lines())["api-mode"]
    assert line.startswith("FAIL  api-mode")
    assert "mode normal" in line
    assert "MODE=json-rpc" in line
    assert exit_code(results) == 1


async def test_an_unregistered_number_fails_with_relay_register(
        org: DoctorOrg, other_sandbox: OtherSandbox) -> None:
    await other_sandbox(registered=False)
    results = await org.run()
    lines = await org.lines()
    assert lines["account"].startswith("FAIL  account")
    assert "signal.bot_number is not registered on this REST API" in lines["account"]
    assert f"`relay register -c {org.path}`" in lines["account"]
    assert f"`relay register --code CODE -c {org.path}`" in lines["account"]
    for later in ("profile", "group:regen-group", "roster:regen-group"):
        assert "skipped: signal.bot_number is not registered" in lines[later], later
    assert exit_code(results) == 1


async def test_no_profile_name_fails_with_relay_profile_set(
        org: DoctorOrg, other_sandbox: OtherSandbox) -> None:
    await other_sandbox(bot_profile_name=None)
    results = await org.run()
    line = (await org.lines())["profile"]
    assert line.startswith("FAIL  profile")
    assert "has no profile name: Signal groups cannot be created or messaged" in line
    assert 'relay profile set "<name reporters will see>"' in line
    assert exit_code(results) == 1


async def test_nothing_listening_at_signal_service_fails(org: DoctorOrg) -> None:
    org.set("signal", "service", free_port())  # nothing listens there
    line = (await org.lines())["api"]
    assert line.startswith("FAIL  api")
    assert "ClientConnectorError" in line
