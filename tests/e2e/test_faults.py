"""Sandbox faults, end to end: what people notice when Signal's side misbehaves.

The promise: once a reporter is told "received", the report reaches its scope whatever
fails in between; relay never crashes or stalls on bad input; failures are classified and
coordinators are told, without content. Fault names follow WIRE.md §6 (F1-F22) and §9.

Every test runs on SQLite and PostgreSQL (`start_org` uses the `db_url` fixture). Retries
that wait out a back-off or a hold use a `FakeClock` injected through `build`: advancing
it and waking the pump makes the row due, so nothing sleeps for minutes.

The REST API outage runs for 3 s by default. The "a minute" variant is the same test:
either `RELAY_FAULT_DOWN_SECONDS=60 pytest tests/e2e/test_faults.py -k outage`, or the
`slow` parametrisation (`pytest -m slow tests/e2e/test_faults.py -k outage`).
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Literal

import pytest
import structlog

from relay.logs import configure_logging
from relay.outbox import HOLD_RETRY
from tests.e2e.conftest import Starter, expect, ref_in, report, say
from tests.e2e.fault_support import (
    advance,
    case_checkin_ok,
    count,
    fake_clock,
    inbox,
    intake_until_send,
    outbox,
    quiet,
    receiver_offline,
    wait_row,
    wait_until,
    ws_subscriptions,
)

pytestmark = pytest.mark.asyncio

DOWN_SECONDS = float(os.environ.get("RELAY_FAULT_DOWN_SECONDS", "3"))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


# -- receive side ------------------------------------------------------------------------


async def test_webhook_delivers_frames_dropped_while_no_reader_is_connected(
    start_org: Starter,
) -> None:
    """F1: the REST API drops frames nobody reads; the webhook still brings them, once."""
    run = await start_org("mpp", webhook=True)
    sandbox = run.org.sandbox
    pia = run.org.reporter("Pia")
    async with receiver_offline(run):
        await say(pia, "hi", "stay anonymous?")
        await say(pia, "anonymous", "kind of help")
        assert [f.outcome for f in sandbox.frames[-2:]] == ["dropped", "dropped"]
    # the reader is back: this one comes over both paths and is handled once
    await say(pia, "1", "what is it about?")
    assert sandbox.frames[-1].outcome == "delivered"
    await sandbox.drain()
    await quiet()
    rows = await inbox(run.relay)
    assert len(rows) == 3  # one row per message, though the last arrived twice
    assert all(r.status == "done" for r in rows)
    assert [r.source for r in rows[:2]] == ["webhook", "webhook"]
    for question in ("stay anonymous?", "kind of help", "what is it about?"):
        assert count(pia, question) == 1, question
    assert len(pia.messages) == len(await outbox(run.relay, kind="reporter", status="sent"))


async def test_burst_while_the_socket_drops_frames_loses_nothing(start_org: Starter) -> None:
    """F2: a slow reader loses frames of a burst on the websocket; the webhook has them."""
    run = await start_org("mpp", webhook=True)
    sandbox = run.org.sandbox
    phones = [run.org.reporter(f"Burst{i}") for i in range(6)]
    sandbox.faults.drop_if_busy(0.2)  # every write to relay's socket takes 0.2 s
    sandbox.faults.burst(len(phones))
    for phone in phones:
        await phone.send(f"hello from {phone.name}")
    await sandbox.drain()
    assert any(f.outcome == "dropped" for f in sandbox.frames), "the burst lost nothing"
    for phone in phones:
        await expect(phone, "stay anonymous?")
    sandbox.faults.clear()
    await quiet()
    for phone in phones:
        assert count(phone, "stay anonymous?") == 1, phone.name
        assert count(phone, "conduct line") == 1, phone.name
    rows = await inbox(run.relay)
    assert len(rows) == len(phones)
    assert all(r.status == "done" for r in rows)
    assert any(r.source == "webhook" for r in rows)


async def test_websocket_abort_reconnects_and_the_conversation_continues(
    start_org: Starter,
) -> None:
    """F4: the TCP connection drops without a close frame (client sees 1006)."""
    run = await start_org()
    sandbox = run.org.sandbox
    pia = run.org.reporter("Pia")
    await say(pia, "hi", "stay anonymous?")
    opened = ws_subscriptions(sandbox)
    assert await sandbox.faults.ws_abort() == 1
    await wait_until(lambda: ws_subscriptions(sandbox) > opened and sandbox.subscriber_count == 1,
                     "relay's reader reconnected")
    await say(pia, "anonymous", "kind of help")
    await say(pia, "1", "what is it about?")
    await quiet()
    assert count(pia, "kind of help") == 1
    assert run.relay.receiver.connections == 2


@pytest.fixture
def broken_log_stream() -> Iterator[None]:
    """relay logs into a stream that is gone (stderr closed, or a broken pipe to journald);
    the previous logging set-up is restored afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level, raise_exceptions = list(root.handlers), root.level, logging.raiseExceptions
    stream = io.StringIO()
    configure_logging(stream=stream, level=logging.INFO, cache_logger_on_first_use=False)
    stream.close()
    try:
        yield
    finally:
        structlog.configure(**saved)
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        logging.raiseExceptions = raise_exceptions


@pytest.mark.usefixtures("broken_log_stream")
async def test_a_broken_log_stream_never_stops_the_receiver(start_org: Starter) -> None:
    """Logging the disconnect into a dead stream used to raise inside the receiver's error
    handler and end the receive loop for good: relay stayed up, but deaf."""
    run = await start_org()
    sandbox = run.org.sandbox
    pia = run.org.reporter("Pia")
    await say(pia, "hi", "stay anonymous?")
    opened = ws_subscriptions(sandbox)
    assert await sandbox.faults.ws_abort() == 1  # relay logs receiver.disconnected
    await wait_until(lambda: ws_subscriptions(sandbox) > opened and sandbox.subscriber_count == 1,
                     "relay's reader reconnected")
    await say(pia, "anonymous", "kind of help")
    assert sandbox.frames[-1].outcome == "delivered"
    assert run.relay.receiver.connections == 2


@pytest.mark.parametrize("code", [1000, 1001, None], ids=["1000", "1001", "no-code"])
async def test_clean_close_reconnects(start_org: Starter, code: int | None) -> None:
    """F5: signalbot 2.2.1 stops reading for good after a clean close; relay reconnects."""
    run = await start_org()
    sandbox = run.org.sandbox
    pia = run.org.reporter("Pia")
    await say(pia, "hi", "stay anonymous?")
    opened = ws_subscriptions(sandbox)
    assert await sandbox.faults.ws_close(code) == 1
    await wait_until(lambda: ws_subscriptions(sandbox) > opened and sandbox.subscriber_count == 1,
                     f"a new subscriber after close {code}")
    answer = await say(pia, "anonymous", "kind of help")
    assert answer.text
    assert sandbox.frames[-1].outcome == "delivered"  # it came over the new socket
    assert run.relay.receiver.connections == 2


async def test_silent_stall_is_detected_and_the_reader_reconnects(start_org: Starter) -> None:
    """F6: a half-open socket: no frames, no pings, no pongs. relay's pings notice."""
    run = await start_org(webhook=True, ping_interval=0.5)
    sandbox = run.org.sandbox
    pia = run.org.reporter("Pia")
    await say(pia, "hi", "stay anonymous?")
    opened = ws_subscriptions(sandbox)
    sandbox.faults.ws_silent_stall(no_pong=True)
    # a message during the stall vanishes in the dead socket; the webhook still has it
    await say(pia, "anonymous", "kind of help")
    await wait_until(lambda: ws_subscriptions(sandbox) > opened,
                     "relay's reader gave up on the silent socket and reconnected")
    sandbox.faults.clear("ws_silent_stall")
    await wait_until(lambda: sandbox.subscriber_count == 1, "one reader connected")
    await say(pia, "1", "what is it about?")
    await quiet()
    assert count(pia, "kind of help") == 1
    assert count(pia, "what is it about?") == 1
    rows = await inbox(run.relay)
    assert len(rows) == 3
    assert all(r.status == "done" for r in rows)


async def test_error_frame_is_quarantined_and_coordinators_alerted_without_its_text(
    start_org: Starter,
) -> None:
    """F12: `{"error": …}` goes to every subscriber; signalbot restarts on it."""
    run = await start_org()
    org, sandbox = run.org, run.org.sandbox
    secret = "Failed to read 7a3c-canary from +15550209999 (IOException)"
    connections = run.relay.receiver.connections
    await sandbox.faults.error_frame(secret)
    coordinators = [org.officer(o.id) for o in org.cfg.coordinators()]
    assert coordinators
    for phone in coordinators:
        alert = await expect(phone, "could not be processed")
        text = alert.text or ""
        for fragment in ("7a3c", "canary", "+15550209999", "IOException", "Failed to read"):
            assert fragment not in text
    rows = await inbox(run.relay)
    assert [(r.status, r.error_class) for r in rows] == [("quarantined", "QuarantineNowError")]
    # the receiver kept going on the same socket
    pia = org.reporter("Pia")
    await say(pia, "hi", "stay anonymous?")
    assert run.relay.receiver.connections == connections
    await quiet()
    for phone in coordinators:
        assert count(phone, "could not be processed") == 1
    for officer_id, phone in org.officers.items():
        if phone not in coordinators:
            assert not phone.messages, officer_id


async def test_frames_signalbot_cannot_parse_are_processed_normally(start_org: Starter) -> None:
    """F12: no `isVoiceNote` on an attachment, no `revision` on a group message."""
    run = await start_org()
    org, sandbox = run.org, run.org.sandbox
    pia = org.reporter("Pia")
    sandbox.faults.legacy_frames(no_voice_note=True, no_revision=False)
    await pia.send("hi", attachments=[(PNG, "image/png", "photo.png")])
    sent = sandbox.frames[-1].text
    assert '"attachments"' in sent
    assert "isVoiceNote" not in sent
    await expect(pia, "stay anonymous?")

    rowan, group = org.officer("rc-rowan"), org.group("regen-group")
    sandbox.faults.legacy_frames(no_voice_note=False, no_revision=True)
    await rowan.send_group(group, "/help")
    sent = sandbox.frames[-1].text
    assert '"groupInfo"' in sent
    assert '"revision"' not in sent
    helped = await expect(rowan, "Commands:")
    assert helped.group_id == group.id

    rows = await inbox(run.relay)
    assert [r.status for r in rows] == ["done", "done"]
    assert run.relay.receiver.connections == 1


async def test_duplicate_frames_make_one_case_one_receipt_and_one_relay(
    start_org: Starter,
) -> None:
    """F17: the same (sender, timestamp) twice, e.g. a replay after a signal-cli restart."""
    run = await start_org()
    org, sandbox = run.org, run.org.sandbox
    kim = org.reporter("Kim")
    await intake_until_send(kim, story="The duplicate-check story.")
    rows_before = len(await inbox(run.relay))
    sandbox.faults.duplicate()
    ref = ref_in((await say(kim, "SEND", "reference")).text)
    first, second = sandbox.frames[-2:]
    assert first.text == second.text
    assert first.outcome == second.outcome == "delivered"
    officers = [org.officer(o) for o in org.cfg.scope("regen-group").officers]
    for phone in officers:
        await expect(phone, ref)
    sandbox.faults.duplicate()
    await say(kim, "He also took my bag.", "added to your report")
    for phone in officers:
        await expect(phone, "took my bag")
    await quiet()
    assert count(kim, "reference is") == 1
    assert count(kim, "added to your report") == 1
    for phone in officers:
        assert count(phone, "The duplicate-check story.") == 1, phone.name
        assert count(phone, "took my bag") == 1, phone.name
    assert len(await inbox(run.relay)) == rows_before + 2
    assert len(await outbox(run.relay, purpose="case")) == 1


# -- send side ---------------------------------------------------------------------------


@pytest.mark.parametrize("tokens", [["3f1b0c1e-9a8d-4c2b-b7e6-5a4d3c2b1a09"], [""]],
                         ids=["challenge-token", "no-captcha"])
async def test_rate_limited_send_is_delivered_after_back_off_once(
    start_org: Starter, tokens: list[str],
) -> None:
    """F8: 429 with `challenge_tokens` (a captcha would lift it) or `[""]`."""
    clock = fake_clock()
    run = await start_org(clock=clock)
    sandbox = run.org.sandbox
    pia = run.org.reporter("Pia")
    await say(pia, "hi", "stay anonymous?")
    sandbox.faults.send_429(tokens, target=pia)
    await pia.send("anonymous")
    await wait_row(run.relay, "the answer was rate limited", kind="reporter",
                   status="pending", error_class="rate_limited")
    assert any(r.path == "/v2/send" and r.status == 429 for r in sandbox.requests)
    await quiet()
    assert count(pia, "You're anonymous") == 0  # not before its back-off is over
    advance(run, clock, timedelta(minutes=1))
    await expect(pia, "You're anonymous")
    await quiet()
    assert count(pia, "You're anonymous") == 1
    assert count(pia, "kind of help") == 1
    rows = await outbox(run.relay, kind="reporter")
    assert all(r.status == "sent" for r in rows)
    assert max(r.attempts for r in rows) == 2
    assert sum(1 for s in sandbox.sent if "You're anonymous" in s.text) == 1


async def test_untrusted_officer_is_held_alerted_once_and_sent_when_trusted(
    start_org: Starter,
) -> None:
    """F9: 400 "untrusted recipient keys" on a 1:1 send to an officer."""
    clock = fake_clock()
    run = await start_org(clock=clock)
    org, sandbox = run.org, run.org.sandbox
    marcus = org.officer("rc-marcus")
    kim = org.reporter("Kim")
    await intake_until_send(kim, story="The held-story text.", officer="Marcus")
    sandbox.faults.send_400_untrusted(target=marcus, times=None)
    ref = ref_in((await say(kim, "SEND", "reference")).text)  # the reporter is told
    held = await wait_row(run.relay, "the case to Marcus is held", purpose="case",
                          kind="officer", ref="rc-marcus", status="held")
    assert held.error_class == "untrusted"
    coordinators = [org.officer(o.id) for o in org.cfg.coordinators()]
    for phone in coordinators:
        alert = await expect(phone, "on hold")
        assert "Marcus" in (alert.text or "")
        assert "held-story" not in (alert.text or "")
    assert count(marcus, ref) == 0

    # retried after HOLD_RETRY while the key is still untrusted: still held, no new alert
    advance(run, clock, HOLD_RETRY + timedelta(seconds=1))
    await wait_row(run.relay, "the held case was tried again", purpose="case",
                   kind="officer", ref="rc-marcus", status="held", attempts=2)

    # the operator verified and trusted the new key: the next retry delivers it
    sandbox.faults.clear("send_400_untrusted")
    advance(run, clock, HOLD_RETRY + timedelta(seconds=1))
    case_msg = await expect(marcus, ref)
    assert "The held-story text." in (case_msg.text or "")
    assert case_msg.group_id is None
    await quiet()
    assert count(marcus, "The held-story text.") == 1
    for phone in coordinators:
        assert count(phone, "on hold") == 1
    final = await outbox(run.relay, purpose="case", kind="officer", ref="rc-marcus")
    assert [(r.status, r.attempts) for r in final] == [("sent", 3)]


@pytest.mark.parametrize("variant", ["not_registered", "failed"])
async def test_unregistered_reporter_is_unreachable_and_coordinators_are_told(
    start_org: Starter, variant: Literal["not_registered", "failed"],
) -> None:
    """F11: "The user … is not registered." or "Failed to send message"."""
    run = await start_org()
    org, sandbox = run.org, run.org.sandbox
    kim = org.reporter("Kim")
    ref = await report(kim, identity="anonymous", scope="1")
    assert await case_checkin_ok(run.relay, ref)
    tomas = org.officer("rc-tomas")
    await expect(tomas, ref)
    sandbox.faults.send_400_unregistered(variant, target=kim, times=None)
    await tomas.send_group(org.group("regen-group"), f"/reply {ref} Reply-7781: can we talk?")
    row = await wait_row(run.relay, "the reply is marked unreachable", purpose="reply",
                         kind="reporter", status="unreachable")
    assert row.error_class == "unregistered"
    coordinators = [org.officer(o.id) for o in org.cfg.coordinators()]
    for phone in coordinators:
        alert = await expect(phone, "cannot be reached")
        assert ref in (alert.text or "")  # which case, not who
        assert "7781" not in (alert.text or "")
        assert kim.aci not in (alert.text or "")
    assert not await case_checkin_ok(run.relay, ref)
    await quiet()
    assert count(kim, "7781") == 0
    for phone in coordinators:
        assert count(phone, "cannot be reached") == 1
    final = await outbox(run.relay, purpose="reply", kind="reporter")
    assert [(r.status, r.attempts) for r in final] == [("unreachable", 1)]


async def test_hung_send_times_out_and_is_delivered_once_after_release(
    start_org: Starter,
) -> None:
    """F19: `/v2/send` does not answer. relay's timeout frees the pump and schedules a
    retry; the REST API then answers after all, so the message is recorded as sent (it
    was delivered) and the retry never goes out: the reporter has it exactly once."""
    clock = fake_clock()
    run = await start_org(clock=clock, send_timeout=0.5)
    sandbox = run.org.sandbox
    pia = run.org.reporter("Pia")
    await say(pia, "hi", "stay anonymous?")
    sandbox.faults.send_hang()
    await pia.send("anonymous")
    timed_out = await wait_row(run.relay, "the hung send timed out", kind="reporter",
                               status="pending", error_class="unavailable")
    assert timed_out.possible_repeat  # it may have been delivered: a resend is marked
    assert count(pia, "You're anonymous") == 0
    sandbox.faults.clear("send_hang")  # the REST API answers the hung call
    answer = await expect(pia, "You're anonymous")
    assert "kind of help" in (answer.text or "")
    await wait_row(run.relay, "the late answer was recorded", kind="reporter", status="sent",
                   attempts=1)
    advance(run, clock, timedelta(minutes=1))  # well past the retry's back-off
    await quiet(0.6)
    assert count(pia, "You're anonymous") == 1
    rows = await outbox(run.relay, kind="reporter")
    assert [(r.status, r.attempts) for r in rows][-1] == ("sent", 1)
    assert all(r.status == "sent" for r in rows)
    assert sum(1 for s in sandbox.sent if "You're anonymous" in s.text) == 1


async def test_hung_send_retried_before_it_answers_is_marked_as_a_possible_repeat(
    start_org: Starter,
) -> None:
    """F19, the other order: the retry goes out while the first call still hangs. Both
    calls are then delivered (signal-cli had sent the first): at least once, and the
    officers can see which copy is the repeat."""
    clock = fake_clock()
    run = await start_org(clock=clock, send_timeout=0.3)
    org, sandbox = run.org, run.org.sandbox
    rowan, group = org.officer("rc-rowan"), org.group("regen-group")
    sandbox.faults.send_hang()
    await rowan.send_group(group, "/help")
    await wait_row(run.relay, "the first call timed out", kind="group", purpose="officer_ack",
                   status="pending", attempts=1)
    advance(run, clock, timedelta(minutes=1))
    await wait_row(run.relay, "the retry timed out too", kind="group", purpose="officer_ack",
                   status="pending", attempts=2)
    sandbox.faults.clear("send_hang")
    copies = [await expect(rowan, "Commands:") for _ in range(2)]
    marked = [c for c in copies if (c.text or "").startswith("\u26a0\ufe0f Possible repeat")]
    assert len(marked) == 1
    await wait_row(run.relay, "the retry's answer was recorded", kind="group",
                   purpose="officer_ack", status="sent", attempts=2)
    advance(run, clock, timedelta(minutes=1))
    await quiet()
    assert count(rowan, "Commands:") == 2  # nothing beyond the two calls already made


@pytest.mark.parametrize(
    "down",
    [pytest.param(DOWN_SECONDS, id=f"down-{DOWN_SECONDS:g}s"),
     pytest.param(60.0, id="down-60s", marks=pytest.mark.slow)],
)
async def test_rest_api_outage_loses_nothing(start_org: Starter, down: float) -> None:
    """F4/F7: the REST API goes away (sockets aborted, port closed) and comes back."""
    run = await start_org()
    sandbox, relay = run.org.sandbox, run.relay
    pia = run.org.reporter("Pia")
    await say(pia, "hi", "stay anonymous?")
    opened = ws_subscriptions(sandbox)
    read = relay.receiver.frames
    gate = threading.Event()
    busy = relay.run_db(gate.wait)  # relay's database thread is busy for a moment...
    try:
        await pia.send("anonymous")  # ...when this arrives
        await wait_until(lambda: relay.receiver.frames > read, "relay read the frame")
        await sandbox.faults.rest_down(down)  # ...and then the REST API goes away
    finally:
        gate.set()
    await busy
    await wait_row(relay, "the answer could not be sent", kind="reporter",
                   error_class="unavailable")
    answer = await expect(pia, "You're anonymous", wait=down + 10)
    assert "kind of help" in (answer.text or "")
    await wait_until(lambda: ws_subscriptions(sandbox) > opened and sandbox.subscriber_count == 1,
                     "relay's reader reconnected", timeout=10)
    await say(pia, "1", "what is it about?")
    await quiet()
    for question in ("stay anonymous?", "You're anonymous", "kind of help",
                     "what is it about?"):
        assert count(pia, question) == 1, question
    rows = await inbox(relay)
    assert len(rows) == 3
    assert all(r.status == "done" for r in rows)
    assert all(r.status == "sent" for r in await outbox(relay, kind="reporter"))
