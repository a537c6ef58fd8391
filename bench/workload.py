"""The throughput workload: open cases seeded in the database, the message script, and a
tap on the sandbox that timestamps every successful ``/v2/send`` as it arrives.

Every scripted message carries a token (``bq0000042``). The relay quotes the body of a
follow-up to the case's scope and of an officer's reply to the reporter, and the echo bot
repeats it, so the first ``/v2/send`` whose text holds the token is the relayed send.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.flows.catalog import Catalog
from handlers.flows.intake import Draft
from keys import Keyring
from relay.cases import ReporterAddress, create_case
from relay.clock import SystemClock
from relay.outbox import RecipientKind, Status
from relay.sandbox import BotSend, Phone, QuoteRef, SandboxGroup, Source
from relay.sandbox_org import BOT_ACI, BOT_NUMBER, SandboxOrg
from relay.store.db import make_engine, make_sessionmaker
from relay.store.migrate import ensure_schema
from relay.store.models import OutboxRow, SentMap
from relay.store.sealing import Sealer

TEAM_SCOPE = "regen-group"
CHOSEN_SCOPE = "connected-person"
TOKEN = re.compile(r"\bbq(\d{7})\b")
FAKE_TS_BASE = 1_600_000_000_000  # Signal timestamps of the seeded (already sent) messages
MIX = ("followup",) * 14 + ("reply",) * 3 + ("quote",) * 3  # per 20 messages


def token(n: int) -> str:
    return f"bq{n:07d}"


@dataclass(frozen=True)
class SeededCase:
    ref: str
    case_id: str
    scope_id: str
    reporter: Phone
    officer: Phone  # who answers on this case
    group: SandboxGroup | None  # where that officer writes (None: 1:1 with the bot)
    quote_ts: int  # the bot's case message in that chat, as the reply map knows it


@dataclass(frozen=True)
class Step:
    kind: str  # followup | reply | quote
    phone: Phone
    text: str
    token: int
    group: SandboxGroup | None = None
    quote: QuoteRef | None = None

    async def send(self) -> int:
        if self.group is not None:
            return await self.phone.send_group(self.group, self.text, quote=self.quote)
        return await self.phone.send(self.text, quote=self.quote)


def seed_cases(org: SandboxOrg, keyring: Keyring, database_url: str, count: int,
               *, chosen_every: int = 5) -> list[SeededCase]:
    """`count` open cases, one per new reporter phone, created with the product's
    `create_case` (every 5th in the chosen-officer scope, the rest in the team group).
    Their first deliveries are marked sent with reply-map entries, as if relay had sent
    them, so officers can quote them."""
    cfg = org.cfg
    engine = make_engine(database_url)
    ensure_schema(engine)
    sessions = make_sessionmaker(engine)
    clock = SystemClock()
    sealer = Sealer(keyring, clock)
    catalog = Catalog(cfg.texts)
    chosen_scope = cfg.scope(CHOSEN_SCOPE)
    team_scope = cfg.scope(TEAM_SCOPE)
    team_group = org.group(TEAM_SCOPE)
    now = clock.now()
    seeded: list[tuple[str, str, str, Phone, str, SandboxGroup | None]] = []
    with sessions.begin() as s:
        for index in range(count):
            reporter = org.reporter(hide_number=True)
            if chosen_every and index % chosen_every == chosen_every - 1:
                chosen = chosen_scope.officers[index % len(chosen_scope.officers)]
                draft = _draft(CHOSEN_SCOPE, chosen, now)
                officer_id, group = chosen, None
            else:
                draft = _draft(TEAM_SCOPE, None, now)
                officer_id = team_scope.officers[index % len(team_scope.officers)]
                group = team_group
            who = ReporterAddress(reporter.aci, None, reporter.profile_name)
            created = create_case(s, sealer, cfg, catalog, draft, who, now)
            seeded.append((created.ref, created.case_id, draft.scope_id or "", reporter,
                           officer_id, group))
        groups = {sc.id: sc.group_id for sc in cfg.scopes if sc.group_id is not None}
        quote_ts = _mark_first_sends_sent(s, [c[1] for c in seeded], groups, now)
    engine.dispose()
    out: list[SeededCase] = []
    for ref, case_id, scope_id, reporter, officer_id, group in seeded:
        dest = (team_scope.group_id or "") if group is not None else officer_id
        out.append(SeededCase(ref, case_id, scope_id, reporter, org.officer(officer_id),
                              group, quote_ts[case_id, dest]))
    return out


def _draft(scope_id: str, chosen: str | None, now: datetime) -> Draft:
    return Draft(named=False, help_kind="support", category="discrimination",
                 scope_id=scope_id, chosen_officer=chosen,
                 narrative=("Something happened at the meeting that I want to report.",),
                 when="last week", where="online", who=None, safe=True, checkin_ok=False,
                 started_at=now, updated_at=now)


def _mark_first_sends_sent(s: Session, case_ids: list[str], groups: dict[str, str],
                           now: datetime) -> dict[tuple[str, str], int]:
    """Mark the seeded cases' outbox rows sent; returns (case id, destination) -> the
    Signal timestamp the reply map holds for it."""
    stamps: dict[tuple[str, str], int] = {}
    rows = s.scalars(select(OutboxRow).where(OutboxRow.case_id.in_(case_ids))
                     .order_by(OutboxRow.seq)).all()
    for n, row in enumerate(rows):
        ts = FAKE_TS_BASE + n
        row.status = Status.SENT
        row.signal_timestamp = ts
        row.sent_at = now
        row.attempts = 1
        if row.map_replies and row.case_id is not None:
            # the reply map keys a group by its public id, an officer by id (map_key)
            ref = row.recipient_ref or ""
            dest = groups.get(ref, "") if row.recipient_kind == RecipientKind.GROUP else ref
            s.add(SentMap(destination=dest, signal_timestamp=ts, case_id=row.case_id,
                          created_at=now))
            stamps[row.case_id, dest] = ts
    return stamps


def script(cases: list[SeededCase], count: int, first_token: int) -> list[Step]:
    """`count` messages from many senders: 70% reporters' follow-ups (relayed to the
    scope), 15% officers' ``/reply REF``, 15% officers' quote-replies (relayed to the
    reporter). Senders and cases go round-robin so no one writes twice in a row."""
    bot = Source(uuid=BOT_ACI, number=BOT_NUMBER, name=None)
    steps: list[Step] = []
    for n in range(count):
        kind = MIX[n % len(MIX)]
        case = cases[(n * 7) % len(cases)]
        tok = first_token + n
        mark = token(tok)
        if kind == "followup":
            steps.append(Step(kind, case.reporter,
                              f"One more thing {mark}: it happened again today.", tok))
        elif kind == "reply":
            steps.append(Step(kind, case.officer,
                              f"/reply {case.ref} Thank you {mark}, we are looking into it.",
                              tok, group=case.group))
        else:
            steps.append(Step(kind, case.officer, f"Thanks for writing {mark}, noted.", tok,
                              group=case.group, quote=QuoteRef(case.quote_ts, bot)))
    return steps


class _TapList(list[BotSend]):
    """`sandbox.sent` with a hook: called as each successful /v2/send is recorded."""

    def __init__(self, items: Iterable[BotSend], hook: Callable[[BotSend], None]) -> None:
        super().__init__(items)
        self._hook = hook

    def append(self, item: BotSend) -> None:
        super().append(item)
        self._hook(item)


class SendTap:
    """Arrival time of every send at the sandbox, and of the first send holding a token."""

    def __init__(self, org: SandboxOrg) -> None:
        self.arrived: dict[int, float] = {}
        self.sends = 0
        self.last_send = 0.0
        self._waiting: set[int] = set()
        self._all_in = asyncio.Event()
        org.sandbox.sent = _TapList(org.sandbox.sent, self._on_send)

    def _on_send(self, send: BotSend) -> None:
        now = time.perf_counter()
        self.sends += 1
        self.last_send = now
        for match in TOKEN.finditer(send.text):
            tok = int(match.group(1))
            if tok not in self.arrived:
                self.arrived[tok] = now
                self._waiting.discard(tok)
        if not self._waiting:
            self._all_in.set()

    def expect(self, tokens: Iterable[int]) -> None:
        self._waiting = {t for t in tokens if t not in self.arrived}
        if self._waiting:
            self._all_in.clear()
        else:
            self._all_in.set()

    @property
    def missing(self) -> int:
        return len(self._waiting)

    async def wait_all(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait
        try:
            await asyncio.wait_for(self._all_in.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def quiet(self, gap: float = 0.5, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until no send arrived for `gap` seconds (acks and copies drained)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            await asyncio.sleep(gap / 2)
            if time.perf_counter() - max(self.last_send, 0.0) >= gap:
                return
