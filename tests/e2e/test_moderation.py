"""The moderation ledger on the sandbox: warnings, the removal vote, expiry, refusals.

MPP's example enables `[moderation]` with three moderators (rc-rowan, rc-devi, rc-tomas);
rc-marcus is an officer but not a moderator. Nothing here sleeps for months: a FakeClock.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from relay.clock import FakeClock
from relay.sandbox import Phone
from relay.sandbox_org import BOT_ACI
from relay.store.db import make_engine
from relay.store.migrate import ensure_schema
from relay.store.models import (
    AuditEntry,
    Base,
    ModerationBallot,
    ModerationSubject,
    ModerationVote,
    ModerationWarning,
)
from tests.e2e.conftest import Running, Starter, expect, say

pytestmark = pytest.mark.asyncio

# 10:00 in New York (MPP's time zone)
T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
MODERATORS = ("rc-rowan", "rc-devi", "rc-tomas")
NAMES = ("Alex Example", "alex  EXAMPLE", "ALEX EXAMPLE")
NOTE_CANARY = "canary-note-7c1d"
VOTE_REF = re.compile(r"\b(V-[A-Z2-9]{4})\b")
LEDGER_TABLES = [Base.metadata.tables[model.__tablename__] for model in (
    ModerationSubject, ModerationWarning, ModerationVote, ModerationBallot)]


@pytest.fixture
def ledger_db(db_url: str) -> str:
    """The migrated schema, plus the ledger's tables while no migration creates them yet
    (`create_all` only adds tables that are missing)."""
    engine = make_engine(db_url)
    try:
        ensure_schema(engine)
        Base.metadata.create_all(engine, tables=LEDGER_TABLES, checkfirst=True)
    finally:
        engine.dispose()
    return db_url


def bot_texts(run: Running) -> str:
    """Everything the bot sent to any officer, 1:1 or in a group."""
    return "\n".join(m.text or "" for phone in run.org.officers.values()
                     for m in phone.messages if m.sender_uuid == BOT_ACI)


def cleartext_hits(db_url: str, needles: tuple[str, ...]) -> list[str]:
    """Every table.column holding one of `needles` (case-insensitive), on either database;
    on SQLite also the raw bytes of the database file and its WAL."""
    wanted = [n.casefold().encode() for n in needles]
    hits: list[str] = []
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                result = conn.execute(text(f'SELECT * FROM "{table}"'))
                columns = list(result.keys())
                for row in result:
                    for column, value in zip(columns, row, strict=True):
                        raw = bytes(value) if isinstance(value, (bytes, memoryview)) else (
                            str(value).encode())
                        if any(n in raw.lower() for n in wanted):
                            hits.append(f"{table}.{column}")
    finally:
        engine.dispose()
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        hits.extend(part.name for part in (path, path.with_name(path.name + "-wal"))
                    if part.exists() and any(n in part.read_bytes().lower() for n in wanted))
    return hits


def audit_events(db_url: str) -> list[tuple[str, str | None, str | None]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [(e, c, a) for e, c, a in conn.execute(
                select(AuditEntry.event, AuditEntry.case_ref, AuditEntry.actor_ref)
                .order_by(AuditEntry.seq))]
    finally:
        engine.dispose()


def vote_ref_in(message: str) -> str:
    match = VOTE_REF.search(message)
    assert match, f"no vote reference in {message!r}"
    return match.group(1)


async def dm(phone: Phone, command: str, answer: str) -> str:
    got = await say(phone, command, answer)
    return got.text or ""


async def warn_three_times(run: Running) -> str:
    """Two moderators warn the same person, typed three ways; returns the vote reference."""
    org = run.org
    rowan, devi = org.officer("rc-rowan"), org.officer("rc-devi")
    await dm(rowan, f"/warn {NAMES[0]} | shouted at a newcomer {NOTE_CANARY}",
             "warning recorded: 1 active warning(s) for this person")
    await devi.send_group(org.group("regen-group"), f"/warn {NAMES[1]} | slur in #general")
    await expect(devi, "warning recorded: 2 active warning(s)")
    await dm(rowan, f"/warn {NAMES[2]} | dismissive again", "warning recorded: 3 active")
    opened: dict[str, str] = {}
    for officer_id in MODERATORS:
        got = await expect(org.officer(officer_id), "a removal vote is open")
        assert got.group_id is None  # a direct message to each moderator
        opened[officer_id] = got.text or ""
    refs = {vote_ref_in(t) for t in opened.values()}
    assert len(refs) == 1
    ref = refs.pop()
    assert f"warned 3 times (vote {ref})" in opened["rc-rowan"]
    assert f"/vote {ref} yes or /vote {ref} no by Fri 6 Nov 2026, 10:00 EST" in opened["rc-rowan"]
    return ref


async def test_three_warnings_open_a_vote_that_the_majority_decides(
    start_org: Starter, ledger_db: str,
) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    org = run.org
    rowan, devi, tomas = (org.officer(o) for o in MODERATORS)
    ref = await warn_three_times(run)
    await asyncio.sleep(0.3)
    assert not any("removal vote" in (m.text or "") for m in org.officer("rc-marcus").messages)

    await dm(rowan, f"/vote {ref} yes", f"your vote on {ref} is recorded: yes, remove")
    await dm(devi, f"/vote {ref.lower()} no", f"your vote on {ref} is recorded: no, do not")
    await dm(devi, f"/vote {ref} YES", f"your vote on {ref} is recorded: yes")  # changed
    assert not any("is closed" in (m.text or "") for m in rowan.messages)
    await dm(tomas, f"/vote {ref} no", "recorded: no")  # everyone voted: it closes now
    for phone in (rowan, devi, tomas):
        result = await expect(phone, f"vote {ref} is closed")
        assert "2 yes, 1 no, 0 did not vote" in (result.text or "")
        assert "the person is to be removed" in (result.text or "")
    await dm(tomas, f"/vote {ref} yes", f"vote {ref} is already closed")

    # the name is in no bot message and in no column, and the notes are sealed
    seen = bot_texts(run).casefold()
    assert "alex" not in seen
    assert NOTE_CANARY not in seen  # notes are read only on /warnings
    assert cleartext_hits(ledger_db, ("alex example", "alex  example", NOTE_CANARY)) == []
    events = audit_events(ledger_db)
    assert [e for e, _, _ in events if e.startswith("moderation.")] == [
        "moderation.warning", "moderation.warning", "moderation.warning",
        "moderation.vote_opened", "moderation.vote_cast", "moderation.vote_cast",
        "moderation.vote_changed", "moderation.vote_cast", "moderation.vote_closed_removed",
    ]
    assert {c for e, c, _ in events if e.startswith("moderation.vote")} == {ref}

    # six months without a warning: the series has expired and the next one starts anew
    clock.advance(timedelta(days=183))
    await run.relay.tick()
    await dm(rowan, f"/warn {NAMES[0]} | back again after a break",
             "warning recorded: 1 active warning(s)")
    listing = await dm(rowan, "/warnings alex example", "1 active warning(s) for this person")
    assert "back again after a break" in listing
    assert "3 older warning(s) have expired" in listing
    assert NOTE_CANARY not in listing
    assert "alex" not in bot_texts(run).casefold()
    await asyncio.sleep(0.3)
    assert len([m for m in rowan.messages if "removal vote is open" in (m.text or "")]) == 1


async def test_a_vote_closes_at_its_deadline_and_a_tie_does_not_remove(
    start_org: Starter, ledger_db: str,
) -> None:
    clock = FakeClock(T0)
    run = await start_org("mpp", clock=clock)
    rowan, devi, tomas = (run.org.officer(o) for o in MODERATORS)
    ref = await warn_three_times(run)
    listing = await dm(rowan, "/warnings Alex Example", "3 active warning(s) for this person")
    assert NOTE_CANARY in listing
    assert "slur in #general" in listing
    assert "Devi (Regen Culture co-coordinator)" in listing
    assert "3 Nov 2026" in listing
    await dm(rowan, f"/vote {ref} yes", "recorded")
    await dm(devi, f"/vote {ref} no", "recorded")
    answer = await dm(rowan, f"/warn {NAMES[0]} | a fourth time", "4 active warning(s)")
    assert f"Removal vote {ref} about this person is still open." in answer
    clock.advance(timedelta(hours=71, minutes=59))
    await run.relay.tick()
    await asyncio.sleep(0.3)
    assert not any("is closed" in (m.text or "") for m in tomas.messages)
    clock.advance(timedelta(minutes=1))
    assert await run.relay.tick() >= 1
    for phone in (rowan, devi, tomas):
        result = await expect(phone, f"vote {ref} is closed")
        assert "1 yes, 1 no, 1 did not vote" in (result.text or "")
        assert "the person is not removed" in (result.text or "")
    await dm(tomas, f"/vote {ref} yes", "already closed")
    assert "alex" not in bot_texts(run).casefold()


async def test_refusals_and_strict_parsing(start_org: Starter, ledger_db: str) -> None:
    run = await start_org("mpp", clock=FakeClock(T0))
    org = run.org
    rowan, marcus = org.officer("rc-rowan"), org.officer("rc-marcus")
    await dm(marcus, "/warn Alex Example | rude", "only moderators can use this command")
    await dm(marcus, "/vote V-ABCD yes", "only moderators")
    await dm(marcus, "/warnings Alex Example", "only moderators")
    for bad in ("/vote", "/vote V-ABCD", "/vote V-ABCD maybe", "/vote K7F-3Q yes",
                "/vote V-ABCDE yes", "/vote V-AB0D no", "/vote V-ABCD yes please"):
        await dm(rowan, bad, "usage: /vote V-K7F3 yes (or no)")
    await dm(rowan, "/vote V-ABCD yes", "there is no open vote V-ABCD")
    for bad in ("/warn", "/warn Alex Example", "/warn | no name", "/warn ... | note",
                "/warn Alex Example |   "):
        await dm(rowan, bad, "usage: /warn NAME | what happened")
    await dm(rowan, "/warnings", "usage: /warnings NAME")
    await dm(rowan, "/warnings Nobody Here", "no active warnings for this person")
    await rowan.send_group(org.group("regen-group"), "/warnings Alex Example")
    await expect(rowan, "send /warnings to me in a direct message")
    events = [e for e, _, _ in audit_events(ledger_db) if e.startswith("moderation.")]
    assert events.count("moderation.refused") == 3
    assert "moderation.warning" not in events
    engine = make_engine(ledger_db)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(ModerationWarning.id)) is None
    finally:
        engine.dispose()


async def test_moderation_is_off_unless_enabled(start_org: Starter, ledger_db: str) -> None:
    run = await start_org("labour", clock=FakeClock(T0))
    assert not run.org.cfg.moderation.enabled
    lead = run.org.officer(run.org.cfg.officers[0].id)
    await dm(lead, "/warn Alex Example | rude", "moderation is not enabled")
    await dm(lead, "/vote V-ABCD yes", "moderation is not enabled")
    await dm(lead, "/warnings Alex Example", "moderation is not enabled")
    assert ledger_db
