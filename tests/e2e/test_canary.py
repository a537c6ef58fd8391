"""Canary test: no identity, report text or key may reach the logs, stderr or the database file.

Random canaries (SECURITY.md §4) are driven through the real relay against the sandbox:
an anonymous intake, officer quote and /reply answers, a follow-up, a named report with
a restart in the middle of its intake, a malformed frame, an error frame, a tampered
sealed draft (InvalidTag), and a 429, a 400 and a timeout on send. Logging goes through
the production chain (`configure_logging`) onto one buffer; `capfd` holds fd-level
stdout/stderr. Afterwards every canary is searched for, raw, as hex and as base64 (three
alignments), in the log, in stdout/stderr and in the SQLite `.db`, `-wal`, `-shm` and
`-journal` files, both while the relay runs and after it stopped. On PostgreSQL the
scenario runs the same, but only the log and stderr are checked.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keys import PURPOSES, Keyring, load_root_from_dir
from relay import inbox as inbox_module
from relay.app import Relay
from relay.logs import ALLOWED_KEYS, EVENT_NAME, configure_logging
from relay.outbox import Status
from relay.sandbox import Phone, Received
from relay.store.models import Conversation, InboxRow, OutboxRow
from tests.canary import SQLITE_SIDE_FILES, Canaries, find_canaries, sqlite_files
from tests.e2e.conftest import Running, Starter, everything_officers_saw, expect, report, say

pytestmark = pytest.mark.asyncio

SETTLE_TIMEOUT = 15.0
OPEN_OUTBOX = (Status.PENDING, Status.SENDING)


# -- logging through the production chain ---------------------------------------------------


def production_logs() -> io.StringIO:
    """Configure the production logging chain onto a fresh buffer (and nothing else).

    Called from the test body, not from a fixture: pytest attaches its own capture handlers
    to the root logger for each phase, and `configure_logging` removes every root handler,
    so afterwards the buffer is the only place a log record can go.
    """
    buf = io.StringIO()
    configure_logging(stream=buf, json=True, level=logging.DEBUG,
                      cache_logger_on_first_use=False)
    streams = [getattr(h, "stream", None) for h in logging.getLogger().handlers]
    assert streams == [buf], "the root logger must write to the buffer and nowhere else"
    return buf


def log_records(text: str) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"log line {number} is not JSON: {line[:200]!r}")
        assert isinstance(record, dict), f"log line {number} is not an object: {line[:200]!r}"
        records.append(record)
    return records


def assert_log_shape(text: str) -> list[dict[str, object]]:
    """Every line is a JSON object with allow-listed keys, a constant event and scalars."""
    records = log_records(text)
    assert records, "the log is empty: the production pipeline was not live"
    for record in records:
        extra = set(record) - ALLOWED_KEYS
        assert not extra, f"keys outside the allow-list {sorted(extra)} in {record}"
        for key in ("event", "level", "timestamp"):
            assert isinstance(record.get(key), str), f"no {key} in {record}"
        event = record["event"]
        assert isinstance(event, str)
        assert EVENT_NAME.fullmatch(event), record
        assert event != "event.invalid", f"a non-constant event name was logged: {record}"
        for key, value in record.items():
            assert value is None or isinstance(value, str | int | float | bool), (key, record)
            # the allow-list replaced free text with a marker: some call tried to log it
            assert value != "value.invalid", f"a free-text value was logged as {key}: {record}"
    return records


# -- canaries ---------------------------------------------------------------------------------


def variants(c: Canaries) -> Canaries:
    """Other spellings of the same identity: digits-only number, upper-case ACI, the ACI's 16
    bytes (their hex is the dash-less UUID), the lower-case profile name, upper-case text."""
    return Canaries(
        e164=c.e164.removeprefix("+"),
        aci=c.aci.upper(),
        profile_name=c.profile_name.lower(),
        report_text=c.report_text.upper(),
        key=uuid.UUID(c.aci).bytes,
    )


def key_canaries(keys_dir: Path) -> dict[str, Canaries]:
    """The relay's real key material as canaries: root secret, every subkey, every KEK."""
    keyring = Keyring.load(keys_dir)
    found = {"root": load_root_from_dir(keys_dir).reveal()}
    found.update({f"subkey.{p}": keyring.subkey(p) for p in PURPOSES})
    for kek in keyring._state.keks.values():
        found[f"kek.{kek.kek_id}"] = kek.key
    return {name: Canaries(key=key) for name, key in found.items()}


def scan(blob: bytes | str, canaries: dict[str, Canaries]) -> list[str]:
    return [f"{name}.{hit}" for name, c in canaries.items() for hit in find_canaries(blob, c)]


def scan_files(paths: dict[str, bytes], canaries: dict[str, Canaries]) -> dict[str, list[str]]:
    found = {name: scan(data, canaries) for name, data in paths.items()}
    return {name: hits for name, hits in found.items() if hits}


def db_path_of(db_url: str) -> Path | None:
    return Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite:///") else None


def snapshot(db_path: Path) -> dict[str, bytes]:
    """The bytes of the database file and of each side file that exists right now."""
    out: dict[str, bytes] = {}
    for file in sqlite_files(db_path):
        try:
            out[file.name] = file.read_bytes()
        except FileNotFoundError:  # a side file removed between listing and reading
            continue
    return out


# -- settling -----------------------------------------------------------------------------


def _open_work(relay: Relay) -> tuple[int, int]:
    with relay.sessions() as s, s.begin():
        return _count_open(s)


def _count_open(s: Session) -> tuple[int, int]:
    outbox = s.scalar(select(func.count()).select_from(OutboxRow)
                      .where(OutboxRow.status.in_([str(x) for x in OPEN_OUTBOX])))
    inbox = s.scalar(select(func.count()).select_from(InboxRow)
                     .where(InboxRow.status == "pending"))
    return outbox or 0, inbox or 0


def _quarantined(relay: Relay) -> int:
    with relay.sessions() as s, s.begin():
        return inbox_module.quarantined_count(s)


def _set_aside(relay: Relay) -> int:
    from sqlalchemy import func

    with relay.sessions.begin() as s:
        return s.scalar(select(func.count()).select_from(Conversation)
                        .where(Conversation.flow == "quarantined")) or 0


def _tamper_draft(relay: Relay, aci: str) -> None:
    """Flip one bit of the reporter's sealed draft: the next open raises InvalidTag inside."""
    bidx = relay.sealer.reporter_index(aci)
    with relay.sessions() as s, s.begin():
        conv = s.scalar(select(Conversation).where(Conversation.reporter_bidx == bidx))
        assert conv is not None, "no draft to tamper with"
        sealed = bytearray(conv.data_sealed)
        sealed[-1] ^= 0x01
        conv.data_sealed = bytes(sealed)


async def settle(run: Running, *, wait: float = SETTLE_TIMEOUT) -> None:
    """Wait until the sandbox fanned everything out and no inbox or outbox row is open."""
    deadline = time.monotonic() + wait
    quiet = 0
    while time.monotonic() < deadline:
        await run.org.sandbox.drain()
        open_rows = await run.relay.run_db(_open_work, run.relay)
        quiet = quiet + 1 if open_rows == (0, 0) else 0
        if quiet >= 3:  # three idle polls in a row: nothing is in flight
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"traffic did not settle within {wait}s (open outbox, inbox): {open_rows}")


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str, *,
                wait: float = 8.0) -> None:
    deadline = time.monotonic() + wait
    while True:
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def newer_than_last(phone: Phone, *, wait: float = 8.0) -> Received:
    last = max((m.timestamp for m in phone.messages), default=0)
    return await phone.wait_for(lambda m: m.timestamp > last, timeout=wait)


# -- the scenario ----------------------------------------------------------------------------


async def drive(run: Running, anon_c: Canaries, named_c: Canaries, tamper_c: Canaries,
                texts: dict[str, Canaries]) -> None:
    org = run.org
    sandbox = org.sandbox
    faults = sandbox.faults
    group = org.group("regen-group")
    officer = org.officer("rc-rowan")
    anon = sandbox.add_phone("canary-anon", anon_c.e164, aci=anon_c.aci,
                             profile_name=anon_c.profile_name, hide_number=False)
    named = sandbox.add_phone("canary-named", named_c.e164, aci=named_c.aci,
                              profile_name=named_c.profile_name, hide_number=False)

    async def officer_reply(text: str) -> None:
        await officer.send_group(group, f"/reply {ref} {text}")

    # 1. anonymous intake: the canary is the narrative and "who was involved"
    ref = await report(anon, identity="anonymous", scope="1",
                       story=(f"What happened: {anon_c.report_text}",),
                       who=f"Involved: {anon_c.report_text}")
    case_msg = await expect(officer, ref)
    assert anon_c.report_text in (case_msg.text or "")

    # 2. officer quote reply and /reply, each with an officer-side canary
    await officer.send_group(group, f"Quote reply {texts['quote'].report_text}",
                             quote=case_msg)
    await expect(anon, texts["quote"].report_text)
    await officer_reply(f"Slash reply {texts['slash'].report_text}")
    await expect(anon, texts["slash"].report_text)
    await expect(officer, "sent to the reporter")

    # 3. the reporter's follow-up, relayed to the officers
    await say(anon, f"Follow-up {texts['follow'].report_text}", "added to your report")
    await expect(officer, texts["follow"].report_text)

    # 4. a 429 on the send to the reporter: retried after the rate-limit back-off (~5 s);
    #    the rest of the scenario runs while it waits
    faults.send_429(target=anon)
    await officer_reply(f"Rate limited {texts['rate'].report_text}")
    await until(lambda: not faults.active("send_429"), "the 429 to be served")

    # 5. a 400 (untrusted identity) on the send to the reporter, twice: the first send and
    #    the next attempt (a retry, or the gateway's diagnostic resend) both meet it
    faults.send_400_untrusted(target=anon, times=2)
    await officer_reply(f"Untrusted {texts['untrusted'].report_text}")
    await until(lambda: not faults.active("send_400_untrusted"), "the 400 to be served")

    # 6. a named report, restarted in the middle of its intake (the draft holds the canary)
    await say(named, "hi", "anonymous")
    await say(named, "named", "kind of help")
    await say(named, "1", "about")
    await say(named, "1", "who should see")
    await say(named, "1", "must not see")
    await say(named, "none", "what happened")
    await say(named, f"Named: {named_c.report_text}", "got it")
    await run.restart()
    await newer_than_last(named)  # the relay re-asks where the intake stood
    await say(named, "DONE", "when")
    await say(named, "skip", "where")
    await say(named, "skip", "who was involved")
    await say(named, "skip", "safe right now")
    await say(named, "yes", "check in")
    await say(named, "yes", "send")
    named_ref = (await say(named, "SEND", "reference")).text or ""
    named_msg = await expect(officer, named_c.report_text)
    # named: officers legitimately see the number and name in Signal (so the relay holds them)
    assert named_c.e164 in (named_msg.text or "")
    assert named_c.profile_name in (named_msg.text or "")
    assert named_ref

    # 7. a send that times out (the gateway's timeout shortened, one slow answer), retried
    gateway = run.relay.gateway
    original_timeout = gateway._send_timeout
    gateway._send_timeout = 0.3
    faults.send_slow(0.8, times=1)
    try:
        await officer_reply(f"Slow {texts['slow'].report_text}")
        await expect(anon, texts["slow"].report_text)
        await until(lambda: not faults.active("send_slow"), "the slow send to be served")
    finally:
        gateway._send_timeout = original_timeout

    # 8. a malformed frame and an error frame, both carrying canaries
    malformed = ('{"envelope": {"sourceUuid": "' + anon_c.aci + '", "timestamp": '
                 '"not-a-number", "dataMessage": {"message": "'
                 + texts["malformed"].report_text + '"}}, "account": "+15550100999"}')
    assert await sandbox.push_raw(malformed) >= 1
    await faults.error_frame(f"error from signal-cli {texts['error'].report_text}")

    # 9. a tampered draft (InvalidTag when opened) meets a message with a canary in it
    tamper = sandbox.add_phone("canary-tamper", tamper_c.e164, aci=tamper_c.aci,
                               profile_name=tamper_c.profile_name, hide_number=True)
    await say(tamper, "hi", "anonymous")
    await say(tamper, "anonymous", "kind of help")
    await run.relay.run_db(_tamper_draft, run.relay, tamper_c.aci)
    await tamper.send(f"Tampered {tamper_c.report_text}")
    # the unreadable draft is set aside (sealed, detached) and the reporter starts afresh
    await expect(tamper, "anonymous")

    async def draft_set_aside() -> bool:
        return bool(await run.relay.run_db(_set_aside, run.relay))

    await until(draft_set_aside, "the tampered draft to be set aside")

    # 10. the rate-limited message arrives after its back-off; then everything settles
    await expect(anon, texts["rate"].report_text, wait=SETTLE_TIMEOUT)
    await settle(run)


async def test_no_canary_in_logs_stderr_or_database(
    restore_logging: None, start_org: Starter, db_url: str, capfd: pytest.CaptureFixture[str],
) -> None:
    buf = production_logs()
    anon_c, named_c, tamper_c = Canaries(), Canaries(), Canaries()
    texts = {name: Canaries() for name in
             ("quote", "slash", "follow", "rate", "untrusted", "slow", "malformed", "error")}
    run = await start_org("mpp")
    keys_dir = run.org.cfg.keys.directory
    await drive(run, anon_c, named_c, tamper_c, texts)
    assert run.restarts == 1
    quarantined = await run.relay.run_db(_quarantined, run.relay)
    # positive control: the scanner finds what officers may legitimately see in Signal, and
    # the anonymous reporter's identity is not among it
    seen_by_officers = everything_officers_saw(run.org)
    assert {"named.e164:raw", "named.profile_name:raw", "anon.report_text:raw"} <= set(
        scan(seen_by_officers, {"named": named_c, "anon": anon_c}))
    assert not [hit for hit in find_canaries(seen_by_officers, anon_c)
                if not hit.startswith("report_text:")]

    canaries: dict[str, Canaries] = {
        "anon": anon_c, "anon~": variants(anon_c),
        "named": named_c, "named~": variants(named_c),
        "tamper": tamper_c, "tamper~": variants(tamper_c),
        **{f"text.{name}": c for name, c in texts.items()},
        **key_canaries(keys_dir),
    }
    db_path = db_path_of(db_url)
    live = snapshot(db_path) if db_path is not None else {}
    await run.stop()
    captured = capfd.readouterr()
    log = buf.getvalue()

    leaks: dict[str, list[str]] = {}
    for where, blob in (("log", log), ("stdout", captured.out), ("stderr", captured.err)):
        if hits := scan(blob, canaries):
            leaks[where] = hits
    if db_path is not None:
        assert db_path.exists(), db_path
        assert any(name.endswith("-wal") for name in live), "no WAL seen while running"
        leaks.update({f"live:{k}": v for k, v in scan_files(live, canaries).items()})
        after = snapshot(db_path)
        leaks.update({f"stopped:{k}": v for k, v in scan_files(after, canaries).items()})
        # any other file the run left next to the database (the keys directory aside)
        for file in sorted(db_path.parent.rglob("*")):
            if (file.is_file() and not file.is_relative_to(keys_dir)
                    and not any(file.name == db_path.name + s for s in ("", *SQLITE_SIDE_FILES))
                    and (hits := scan(file.read_bytes(), canaries))):
                leaks[f"file:{file.relative_to(db_path.parent)}"] = hits
    assert not leaks, f"canaries leaked: {json.dumps(leaks, indent=1)}"

    # the pipeline was live and the faults were really exercised
    records = assert_log_shape(log)
    seen = [str(r.get("event")) for r in records]
    assert seen.count("outbox.sent") >= 20, seen
    assert "relay.ready" in seen
    failures = {r.get("status") for r in records if r.get("event") == "outbox.send_failed"}
    # the 400 is "untrusted" (held); "rejected" before 6998861, which
    # test_untrusted_400_is_held_not_rejected pins down
    assert {"rate_limited", "unavailable"} <= failures, failures
    assert failures & {"untrusted", "rejected"}, failures
    assert quarantined >= 1  # the malformed frame


async def test_log_lines_are_json_with_allow_listed_keys_only(
    restore_logging: None, start_org: Starter, db_url: str, capfd: pytest.CaptureFixture[str],
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the main canary test checks the log's shape on PostgreSQL too")
    buf = production_logs()
    run = await start_org("mpp")
    org = run.org
    canary = Canaries()
    reporter = org.sandbox.add_phone("shape", canary.e164, aci=canary.aci,
                                     profile_name=canary.profile_name)
    ref = await report(reporter, identity="anonymous", scope="1",
                       story=(canary.report_text,))
    await expect(org.officer("rc-rowan"), ref)
    org.sandbox.faults.send_400_untrusted(target=reporter, times=2)
    await org.officer("rc-rowan").send_group(org.group("regen-group"), f"/reply {ref} hi")
    await org.sandbox.push_raw('{"envelope": {"timestamp": "x"}, "account": "+15550100999"}')
    await org.sandbox.push_error("some error from signal-cli")
    await settle(run)
    await run.stop()
    text = buf.getvalue()
    records = assert_log_shape(text)
    assert {"relay.ready", "outbox.sent", "outbox.send_failed"} <= {
        str(r["event"]) for r in records}
    assert not scan(text + capfd.readouterr().err, {"c": canary})


async def test_untrusted_400_is_held_not_rejected(
    restore_logging: None, start_org: Starter, db_url: str,
) -> None:
    """A recipient whose key is untrusted stays untrusted: the row is held, not retried."""
    if not db_url.startswith("sqlite"):
        pytest.skip("send classification does not depend on the database")
    buf = production_logs()
    run = await start_org("mpp")
    org = run.org
    reporter = org.reporter("Untrusted")
    ref = await report(reporter, identity="anonymous", scope="1")
    officer = org.officer("rc-rowan")
    await expect(officer, ref)
    org.sandbox.faults.send_400_untrusted(target=reporter, times=None)
    await officer.send_group(org.group("regen-group"), f"/reply {ref} are you there?")
    await expect(officer, "sent to the reporter")
    await settle(run)  # a row retried as "rejected" stays open until its third attempt
    await run.stop()
    org.sandbox.faults.clear()
    failed = [r for r in log_records(buf.getvalue()) if r.get("event") == "outbox.send_failed"]
    assert [r.get("status") for r in failed] == ["untrusted"]


@pytest.mark.parametrize("hide_number", [False, True], ids=["number", "aci"])
async def test_partial_group_delivery_keeps_no_member_identity(
    restore_logging: None, start_org: Starter, db_url: str, capfd: pytest.CaptureFixture[str],
    hide_number: bool,
) -> None:
    """A group send that reaches everyone but one member (201 with errors.recipients): the
    member's number and ACI must not reach the log or the database file."""
    if not db_url.startswith("sqlite"):
        pytest.skip("a database-file check: SQLite only (the main canary test covers logs)")
    buf = production_logs()
    run = await start_org("mpp")
    org = run.org
    member_c = Canaries()
    group = org.group("regen-group")
    member = org.sandbox.add_phone("canary-member", member_c.e164, aci=member_c.aci,
                                   profile_name=member_c.profile_name, hide_number=hide_number)
    group.members.append(member)  # a member the config does not know (as in the stranger test)
    reporter = org.reporter("Partial")
    ref = await report(reporter, identity="anonymous", scope="1")
    officer = org.officer("rc-rowan")
    await expect(officer, ref)
    org.sandbox.faults.send_partial_errors("IDENTITY_FAILURE", target=member, times=None)
    await say(reporter, "One more thing", "added to your report")
    await expect(officer, "One more thing")
    await settle(run)
    db_path = db_path_of(db_url)
    assert db_path is not None
    live = snapshot(db_path)
    await run.stop()
    org.sandbox.faults.clear()
    canaries = {"member": member_c, "member~": variants(member_c)}
    leaks = {f"live:{k}": v for k, v in scan_files(live, canaries).items()}
    stopped = scan_files(snapshot(db_path), canaries)
    leaks.update({f"stopped:{k}": v for k, v in stopped.items()})
    captured = capfd.readouterr()
    for where, blob in (("log", buf.getvalue()), ("stdout/stderr", captured.out + captured.err)):
        if hits := scan(blob, canaries):
            leaks[where] = hits
    assert not leaks, f"a group member's identity leaked: {json.dumps(leaks, indent=1)}"
