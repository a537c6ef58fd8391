"""One ordered dispatcher: takes inbox rows in arrival order, one after the other.

Processing frames one at a time serialises every sender (signalbot would run three
consumers concurrently). A frame's state, case rows, outbox rows, audit rows and its inbox
mark commit together: frames waiting together share a transaction, each in a savepoint of
its own; a frame whose processing fails is retried, then quarantined, and never blocks the
rest.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from handlers import frames
from handlers.events import (
    ErrorFrame,
    GroupUpdateEvent,
    InboundEvent,
    ReactionEvent,
    SyncTranscript,
    TextMessage,
)
from handlers.flows.catalog import Catalog
from relay import audit, inbox
from relay.alerts import alert
from relay.clock import Clock
from relay.config import OrgConfig, Role
from relay.logs import get_logger
from relay.officers import OfficerDesk, Where
from relay.outbox import Batch, OutboxPump
from relay.reporters import ReporterDesk
from relay.store.sealing import Sealer

log = get_logger("dispatcher")



def public_group_id(internal_id: str) -> str:
    """The REST API's public id for a group: 'group.' + base64(internal id) (WIRE §3.3)."""
    return "group." + base64.b64encode(internal_id.encode("ascii", "replace")).decode()


class Dispatcher:
    BATCH = 16
    """Frames per transaction when several are waiting (a flood): they share one commit."""

    def __init__(
        self,
        cfg: OrgConfig,
        sessions: sessionmaker[Session],
        sealer: Sealer,
        clock: Clock,
        reporters: ReporterDesk,
        officers: OfficerDesk,
        catalog: Catalog,
    ) -> None:
        self._cfg = cfg
        self._sessions = sessions
        self._sealer = sealer
        self._clock = clock
        self.reporters = reporters
        self._officers = officers
        self._catalog = catalog
        self.wake = asyncio.Event()
        self.processed = 0
        self.groups_changed = False  # set by a group update; the app re-reads membership
        self.on_committed: Callable[[], None] = lambda: None
        # set by the app: claims the rows a batch wrote in its own transaction when the
        # pump has nothing out (see OutboxPump.claim_in)
        self.outbox: OutboxPump | None = None

    def process_pending(self) -> bool:
        """Process the oldest pending inbox rows, up to BATCH of them, in arrival order
        and in one transaction: each frame in a savepoint of its own, so one that fails
        is recorded (retried, then quarantined) and the others still commit. False when
        none was pending. One frame at a time arrives as a batch of one."""
        now = self._clock.now()
        claimed: Batch = []
        try:
            with self._sessions.begin() as s:
                batch = inbox.pending(s, self._sealer, self.BATCH)
                if not batch:
                    return False
                self._process(s, batch, now)
                if self.outbox is not None:  # its rows go out without another commit
                    claimed = self.outbox.claim_in(s, now)
        except BaseException:
            if claimed and self.outbox is not None:
                self.outbox.release()
            raise
        if claimed and self.outbox is not None:
            self.outbox.hand_over(claimed)
        self.processed += len(batch)
        self.on_committed()
        return True

    process_one = process_pending  # the name the app calls

    def _process(self, s: Session, batch: list[inbox.Pending], now: datetime) -> None:
        done: list[str] = []
        for frame in batch:
            try:
                with s.begin_nested():
                    event = frames.parse(frame.raw)
                    self.route(s, event, now, key=f"in:{frame.id}")
                done.append(frame.id)
            except Exception as exc:
                quarantined = inbox.record_failure(
                    s, frame.id, type(exc).__name__,
                    at_once=isinstance(exc, inbox.QuarantineNowError))
                log.error("dispatcher.frame_failed", exc_type=type(exc).__name__,
                          status="quarantined" if quarantined else "retry")
                if quarantined:
                    self.alert_quarantine(s, now)
        inbox.mark_done(s, done, now)

    def alert_quarantine(self, s: Session, now: datetime) -> None:
        alert(s, self._sealer, self._cfg, self._catalog, "alert_quarantined", now,
              subject="inbox", count=inbox.quarantined_count(s))

    def route(self, s: Session, event: InboundEvent, now: datetime, *, key: str) -> None:
        if isinstance(event, ErrorFrame):
            raise inbox.QuarantineNowError  # kept sealed for review; never a message
        if isinstance(event, TextMessage):
            self._text(s, event, now, key)
        elif isinstance(event, ReactionEvent):
            self._reaction(s, event, now, key)
        elif isinstance(event, GroupUpdateEvent):
            self.groups_changed = True
            audit.append(s, "group.updated", now)
        elif isinstance(event, SyncTranscript):
            # only a linked device produces these: someone else is using the bot's account
            alert(s, self._sealer, self._cfg, self._catalog, "alert_linked_device", now,
                  subject="sync")
            audit.append(s, "account.sync_transcript", now)
        # reactions, deletes, edits, identity events and sync transcripts are handled by
        # later issues (claiming, edits, alerts); they are stored in the inbox regardless.

    def _where(self, group_id: str | None) -> Where | None:
        """Which of our places a message came from; None for a group that is not ours."""
        if group_id is None:
            return Where(scope=None, dm=True)
        public = public_group_id(group_id)
        if self._cfg.coordination.group_id == public:
            return Where(scope=None, dm=False, coordination=True)
        scope = self._cfg.team_scope_for_group(public)
        return Where(scope=scope, dm=False) if scope is not None else None

    def _reaction(self, s: Session, ev: ReactionEvent, now: datetime, key: str) -> None:
        officer = self._cfg.officer_by_aci(ev.sender.aci)
        where = self._where(ev.group_id)
        if officer is None or where is None:
            return
        self._officers.react(s, ev, officer, where, now, bot_aci=self._cfg.signal.bot_aci,
                             key=key)

    def _text(self, s: Session, ev: TextMessage, now: datetime, key: str) -> None:
        if ev.sender.aci == (self._cfg.signal.bot_aci or "") or (
            ev.sender.number is not None and ev.sender.number == self._cfg.signal.bot_number
        ):
            return  # our own messages (notify_self copies) are never input
        officer = self._cfg.officer_by_aci(ev.sender.aci)
        bot_aci, bot_number = self._cfg.signal.bot_aci, self._cfg.signal.bot_number
        if ev.group_id is not None:
            where = self._where(ev.group_id)
            if where is None:
                return  # not one of our groups
            allowed = officer is not None and (
                (where.scope is not None and officer.id in where.scope.officers)
                or (where.coordination and Role.COORDINATOR in officer.roles))
            if officer is not None and allowed:
                self._officers.handle(s, ev, officer, where, now, bot_aci=bot_aci,
                                      bot_number=bot_number, key=key)
            else:
                self._officers.refuse_stranger(s, ev, where, now, key)
            return
        if officer is not None and self._officers.wants(ev, bot_aci, bot_number):
            self._officers.handle(s, ev, officer, Where(scope=None, dm=True), now,
                                  bot_aci=bot_aci, bot_number=bot_number, key=key)
            return
        self.reporters.handle(s, ev, now, key=key)
