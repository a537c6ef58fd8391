"""The health endpoint of a real relay on the sandbox: `/healthz`, `/metrics`, `relay health`.

Sandbox organisations listen on 127.0.0.1 port 0 (any free port); `relay.health.address`
is where the endpoint really is.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event

from keys import init_keys_dir
from relay.app import build
from relay.clock import Clock, FakeClock, SystemClock
from relay.config import OrgConfig
from relay.config.schema import Health
from relay.health import CACHE_SECONDS
from relay.logs import configure_logging
from relay.sandbox_org import example_path, start_sandbox_org
from tests.canary import Canaries, find_canaries
from tests.e2e.conftest import Running, Starter, expect, report, say
from tests.unit.test_metrics import Family, parse_exposition

pytestmark = pytest.mark.asyncio

WAIT = 10.0
RELAY_CLI = Path(sys.executable).parent / "relay"


def sqlite_only(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("does not depend on the database: run on SQLite only")


@pytest.fixture
async def start_custom(tmp_path: Path, db_url: str) -> AsyncIterator[Callable[..., Awaitable[
        Running]]]:
    """Like `start_org`, with `[health]` settings and an optional edit of the config."""
    running: list[Running] = []

    async def start(*, health: dict[str, Any] | None = None, clock: Clock | None = None,
                    edit: Callable[[OrgConfig], OrgConfig] | None = None) -> Running:
        org = await start_sandbox_org("mpp", tmp_path / f"org{len(running)}",
                                      database_url=db_url)
        settings = Health(**{"listen": "127.0.0.1:0", **(health or {})})
        org.cfg = org.cfg.model_copy(update={"health": settings})
        if edit is not None:
            org.cfg = edit(org.cfg)
        clock = clock or SystemClock()
        keyring = init_keys_dir(org.cfg.keys.directory, clock.now(), org.cfg.retention.epoch)
        relay = build(org.cfg, keyring, clock, database_url=db_url)
        run = Running(org, keyring, db_url, relay, clock=clock)
        running.append(run)
        await relay.start()
        await org.sandbox.wait_for_subscriber()
        return run

    yield start
    for run in running:
        await run.stop()


async def get(run: Running, path: str, method: str = "GET") -> tuple[int, str, str]:
    """(status, content type, body) of one request to the running relay's endpoint."""
    assert run.relay.health is not None, "the health endpoint is not listening"
    url = f"http://{run.relay.health.address}{path}"
    async with aiohttp.ClientSession() as session, session.request(method, url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def healthz(run: Running) -> tuple[int, dict[str, Any]]:
    status, content_type, body = await get(run, "/healthz")
    assert content_type.startswith("application/json"), content_type
    return status, json.loads(body)


async def metrics(run: Running) -> dict[str, Family]:
    status, content_type, body = await get(run, "/metrics")
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return parse_exposition(body)


async def until_health(run: Running, status: int, *, wait: float = WAIT) -> dict[str, Any]:
    """Poll /healthz until it answers `status` (the database counts are cached ~2 s)."""
    deadline = time.monotonic() + wait
    while True:
        got, body = await healthz(run)
        if got == status:
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"/healthz stayed {got} {body}, expected {status}")
        await asyncio.sleep(0.1)


async def until_metrics(run: Running, check: Callable[[dict[str, Family]], bool], what: str,
                        *, wait: float = WAIT) -> dict[str, Family]:
    deadline = time.monotonic() + wait
    while True:
        families = await metrics(run)
        if check(families):
            return families
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def cases_total(m: dict[str, Family]) -> float:
    return sum(m["relay_cases"].samples.values())


# -- a healthy relay ----------------------------------------------------------------------------


async def test_healthz_ok_and_metrics_parse_on_a_running_relay(start_org: Starter) -> None:
    run = await start_org("mpp")
    status, body = await healthz(run)
    assert status == 200
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert {name: c["ok"] for name, c in body["checks"].items()} == {
        "receiver": True, "database": True, "dispatcher": True, "outbox": True, "timers": True}
    m = await metrics(run)
    assert m["relay_up"].value() == 1
    assert m["relay_receiver_connected"].value() == 1
    assert m["relay_receiver_reconnects_total"].value() == 0
    assert m["relay_database_up"].value() == 1
    assert m["relay_group_clean"].value(scope="regen-group") == 1
    assert m["relay_cases"].value(state="open") == 0
    assert m["relay_check_ok"].value(check="outbox") == 1
    assert {m[name].type for name in m if name.endswith("_total")} == {"counter"}
    # nothing else is served, and nothing but GET
    assert (await get(run, "/"))[0] == 404
    assert (await get(run, "/metrics", "POST"))[0] == 405


async def test_metrics_count_a_report(start_org: Starter) -> None:
    run = await start_org("mpp")
    before = await metrics(run)
    reporter = run.org.reporter()
    ref = await report(reporter, identity="anonymous", scope="1")
    await expect(run.org.officer("rc-rowan"), ref)

    def counted(m: dict[str, Family]) -> bool:
        return (m["relay_cases"].value(state="open") == 1
                and m["relay_outbox_rows"].value(status="pending") == 0
                and m["relay_outbox_rows"].value(status="sending") == 0)

    after = await until_metrics(run, counted, "the report to be counted")
    assert after["relay_cases_unclaimed"].value() == 1
    assert after["relay_timers_pending"].value() > before["relay_timers_pending"].value()
    intake_steps = 14  # hi ... SEND: one frame and at least one answer each
    for name in ("relay_receiver_frames_total", "relay_dispatcher_processed_total"):
        assert after[name].value() - before[name].value() >= intake_steps, name
    sent = after["relay_sends_total"].value(outcome="sent")
    assert sent - before["relay_sends_total"].value(outcome="sent") >= intake_steps + 1
    assert after["relay_outbox_rows"].value(status="sent") >= sent
    assert after["relay_inbox_pending"].value() == 0

    # an officer claims it: no longer unclaimed, now in progress
    officer = run.org.officer("rc-rowan")
    await officer.send_group(run.org.group("regen-group"), f"/claim {ref}")
    claimed = await until_metrics(
        run, lambda m: m["relay_cases_unclaimed"].value() == 0, "the claim to be counted")
    assert claimed["relay_cases"].value(state="in-progress") == 1


# -- failing checks -----------------------------------------------------------------------------


async def test_receiver_down_is_503_naming_the_receiver(start_org: Starter) -> None:
    run = await start_org("mpp")
    await run.org.sandbox.faults.rest_down()
    body = await until_health(run, 503)
    assert body["status"] == "unhealthy"
    assert body["failing"] == ["receiver"]
    assert body["checks"]["receiver"]["connected"] is False
    m = await metrics(run)
    assert m["relay_receiver_connected"].value() == 0
    assert m["relay_check_ok"].value(check="receiver") == 0

    await run.org.sandbox.faults.rest_up()
    await until_health(run, 200)
    m = await metrics(run)
    assert m["relay_receiver_reconnects_total"].value() >= 1


async def test_outbox_stale_when_sends_keep_failing(
    start_custom: Callable[..., Awaitable[Running]],
) -> None:
    run = await start_custom(health={"outbox_stale_seconds": 1.0})
    reporter = run.org.reporter()
    run.org.sandbox.faults.send_429(times=None, target=reporter)  # rate limited, forever
    await reporter.send("hi")
    body = await until_health(run, 503)
    assert body["failing"] == ["outbox"]
    outbox = body["checks"]["outbox"]
    assert outbox["waiting"] >= 1
    assert outbox["oldest_waiting_age_s"] >= 1.0
    assert outbox["threshold_s"] == 1.0
    m = await metrics(run)
    assert m["relay_outbox_oldest_pending_seconds"].value() >= 1.0
    assert m["relay_check_ok"].value(check="outbox") == 0
    assert m["relay_receiver_connected"].value() == 1


async def test_timers_stale_when_the_clock_passes_without_a_tick(
    start_org: Starter, t0: Any,
) -> None:
    clock = FakeClock(t0)
    run = await start_org("mpp", clock=clock)
    assert (await healthz(run))[0] == 200
    clock.advance(seconds=181)  # the default limit is 180 s; the loop waits 30 real seconds
    status, body = await healthz(run)
    assert status == 503
    assert body["failing"] == ["timers"]
    assert body["checks"]["timers"]["last_run_age_s"] >= 181
    m = await metrics(run)
    assert m["relay_timer_last_run_age_seconds"].value() >= 181
    await run.relay.tick()  # the timer loop runs: healthy again
    status, body = await healthz(run)
    assert status == 200, body


# -- the port is taken ----------------------------------------------------------------------------


async def test_a_taken_port_is_logged_and_relay_keeps_running(
    restore_logging: None, start_custom: Callable[..., Awaitable[Running]], db_url: str,
) -> None:
    sqlite_only(db_url)
    buf = io.StringIO()
    configure_logging(stream=buf, json=True, level=logging.INFO, cache_logger_on_first_use=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = await start_custom(health={"listen": f"127.0.0.1:{port}"})
        assert run.relay.health is None
        reporter = run.org.reporter()
        await say(reporter, "hi", "anonymous")  # reports still flow
    records = [json.loads(line) for line in buf.getvalue().splitlines()]
    failed = [r for r in records if r["event"] == "health.listen_failed"]
    assert failed == [{"event": "health.listen_failed", "level": "error",
                       "timestamp": failed[0]["timestamp"], "component": "health",
                       "check": "health", "kind": "address_in_use", "exc_type": "OSError"}]
    assert "relay.ready" in {r["event"] for r in records}


async def test_health_off_serves_nothing(
    start_custom: Callable[..., Awaitable[Running]], db_url: str,
) -> None:
    sqlite_only(db_url)
    run = await start_custom(health={"enabled": False})
    assert run.relay.health is None
    await say(run.org.reporter(), "hi", "anonymous")


# -- relay health -------------------------------------------------------------------------------


async def relay_health(config: Path) -> tuple[int, str]:
    """Run the installed `relay health -c CONFIG` as Docker would: (exit code, stdout)."""
    proc = await asyncio.create_subprocess_exec(
        str(RELAY_CLI), "health", "-c", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_relay_health_exit_codes(
    start_org: Starter, db_url: str, tmp_path: Path,
) -> None:
    sqlite_only(db_url)
    run = await start_org("mpp")
    assert run.relay.health is not None
    config = tmp_path / "relay.toml"
    config.write_text(example_path("mpp").read_text("utf-8")
                      + f'\n[health]\nlisten = "{run.relay.health.address}"\n', "utf-8")
    assert await relay_health(config) == (0, "healthy\n")

    await run.org.sandbox.faults.rest_down()
    await until_health(run, 503)
    assert await relay_health(config) == (
        1, "unhealthy: receiver (not connected to signal-cli-rest-api)\n")
    await run.org.sandbox.faults.rest_up()
    await until_health(run, 200)

    await run.stop()
    code, out = await relay_health(config)
    assert code == 1
    assert out.startswith("not reachable: is relay running?")


# -- no canary in either body -----------------------------------------------------------------


async def test_no_canary_in_metrics_or_healthz(
    start_custom: Callable[..., Awaitable[Running]], db_url: str,
) -> None:
    sqlite_only(db_url)
    anon_c, named_c = Canaries(), Canaries()
    story_c, who_c, reply_c = Canaries(), Canaries(), Canaries()
    officer_c: dict[str, Canaries] = {}

    def canary_officers(cfg: OrgConfig) -> OrgConfig:
        officers = []
        for officer in cfg.officers:
            officer_c[officer.id] = Canaries(aci=officer.aci)
            officers.append(officer.model_copy(
                update={"display_name": officer_c[officer.id].profile_name}))
        return cfg.model_copy(update={"officers": tuple(officers)})

    run = await start_custom(edit=canary_officers)
    org = run.org
    anon = org.sandbox.add_phone("canary-anon", anon_c.e164, aci=anon_c.aci,
                                 profile_name=anon_c.profile_name, hide_number=False)
    named = org.sandbox.add_phone("canary-named", named_c.e164, aci=named_c.aci,
                                  profile_name=named_c.profile_name, hide_number=False)
    officer = org.officer("rc-rowan")
    anon_ref = await report(anon, identity="anonymous", scope="1",
                            story=(f"Story {story_c.report_text}", anon_c.report_text),
                            who=f"Who {who_c.report_text}")
    await expect(officer, anon_ref)
    named_ref = await report(named, identity="named", scope="1",
                             story=(named_c.report_text,))
    await expect(officer, named_ref)
    await officer.send_group(org.group("regen-group"), f"/reply {anon_ref} {reply_c.report_text}")
    await expect(anon, reply_c.report_text)

    m = await until_metrics(run, lambda m: cases_total(m) == 2, "both cases to be counted")
    assert m["relay_cases"].value(state="open") == 2
    bodies = {"metrics": (await get(run, "/metrics"))[2],
              "healthz": (await get(run, "/healthz"))[2]}
    canaries = {"anon": anon_c, "named": named_c, "story": story_c, "who": who_c,
                "reply": reply_c, **{f"officer.{k}": c for k, c in officer_c.items()}}
    secrets = [org.cfg.signal.bot_number, org.cfg.signal.bot_aci or "",
               *(o.id for o in org.cfg.officers),
               *(g.id for g in org.groups.values()), *(g.internal_id for g in org.groups.values())]
    leaks = {}
    for where, text in bodies.items():
        hits = [f"{name}.{hit}" for name, c in canaries.items()
                for hit in find_canaries(text, c)]
        hits += [f"config:{value[:6]}…" for value in secrets if value and value in text]
        if hits:
            leaks[where] = hits
    assert not leaks, f"canaries in the endpoint: {leaks}"
    # positive control: the scanner sees a canary where one is
    assert find_canaries(bodies["metrics"] + anon_c.profile_name, anon_c) == [
        "profile_name:raw"]


async def test_the_cache_bounds_database_reads(start_org: Starter, db_url: str) -> None:
    """Scrapes within the cache period are answered from one database read."""
    sqlite_only(db_url)
    run = await start_org("mpp")
    reads: list[float] = []

    def count_reads(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "min(outbox.created_at)" in statement.lower():  # only the snapshot asks this
            reads.append(time.monotonic())

    event.listen(run.relay.engine, "before_cursor_execute", count_reads)
    try:
        began = time.monotonic()
        for _ in range(10):
            await get(run, "/metrics")
            await get(run, "/healthz")
        elapsed = time.monotonic() - began
        assert 1 <= len(reads) <= 1 + int(elapsed // CACHE_SECONDS), (len(reads), elapsed)
        await asyncio.sleep(CACHE_SECONDS + 0.1)
        before = len(reads)
        await get(run, "/metrics")
        assert len(reads) == before + 1  # the cache expired: read again
    finally:
        event.remove(run.relay.engine, "before_cursor_execute", count_reads)
