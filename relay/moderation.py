"""The moderation ledger: warnings against a person and the moderators' removal vote.

MPP's Community Agreements ("Moderation."): a moderator warns a person privately; at the
third warning the moderators vote on removing them, and remove them if the majority of
the votes cast are in favour; warnings expire and reset after six months without one.

    /warn NAME | note    record a warning (moderators; a DM with the bot or an officer group)
    /warnings NAME       the running series: count, dates, authors, notes (moderators; DM)
    /vote REF yes|no     a ballot on an open removal vote (moderators; changeable until close)

The person is known to relay only as `Sealer.subject_index(NAME)`: the name is never stored,
never repeated in a message, and the person is never contacted. Notes are sealed under
each warning's own data key. Bot messages name the vote reference and the warning count
only. A vote closes when every moderator has voted or at its deadline; deadlines are
checked whenever a moderation command runs and on every timer tick (`VoteDue`). Audit
rows carry the vote reference and officer ids, never names, notes or ballots.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.flows.catalog import Catalog
from handlers.flows.ledger import (
    VOTE_ALPHABET,
    active_warnings,
    current_series,
    local_day,
    local_time,
    parse_name,
    parse_vote,
    parse_warn,
    should_open_vote,
    vote_deadline,
    vote_result,
)
from handlers.flows.schedule import SlaPolicy
from handlers.flows.text import quote_block
from keys import KeyringError
from relay import audit
from relay.checkins import Checkins
from relay.config import OrgConfig
from relay.due import DueRunner
from relay.escalation import Escalations
from relay.logs import get_logger
from relay.officers import Call, OfficerDesk
from relay.outbox import Message, RecipientKind, enqueue
from relay.store.models import (
    ModerationBallot,
    ModerationSubject,
    ModerationVote,
    ModerationWarning,
)
from relay.store.sealing import Sealer

log = get_logger("moderation")

WARNINGS_TABLE = "moderation_warnings"
NOTE_COLUMN = "note"
MAX_NAME = 120
MAX_NOTE = 2000
OPEN = "open"
CLOSED = "closed"
_REF_TRIES = 50


def new_vote_ref() -> str:
    return "V-" + "".join(secrets.choice(VOTE_ALPHABET) for _ in range(4))


class Moderation:
    """Registers /warn, /warnings and /vote on the officer desk.

    When `[moderation]` is disabled the commands still exist and say so.
    """

    def __init__(self, cfg: OrgConfig, sealer: Sealer, catalog: Catalog,
                 desk: OfficerDesk) -> None:
        self._cfg = cfg
        self._settings = cfg.moderation
        self._sealer = sealer
        self._cat = catalog
        self._desk = desk
        self.moderators = frozenset(cfg.moderation.moderator_ids(cfg.officers))
        desk.register("/warn", self._cmd_warn)
        desk.register("/warnings", self._cmd_warnings)
        desk.register("/vote", self._cmd_vote)

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    def due_runner(self, sessions: sessionmaker[Session], checkins: Checkins,
                   escalations: Escalations, sla: SlaPolicy | None) -> DueRunner:
        """The timer runner, closing overdue votes on every tick when moderation is on."""
        if not self.enabled:
            return DueRunner(sessions, checkins, escalations, sla)
        return VoteDue(sessions, checkins, escalations, sla, self)

    # -- commands -----------------------------------------------------------------------
    def _admit(self, call: Call) -> bool:
        """Moderation on, a moderator: then settle overdue votes first. Else say why not."""
        if not self.enabled:
            self._desk.answer(call, self._cat.render("moderation_disabled"))
            return False
        if call.officer.id not in self.moderators:
            self._desk.answer(call, self._cat.render("moderation_not_moderator"))
            audit.append(call.s, "moderation.refused", call.now, actor_ref=call.officer.id)
            return False
        self.close_due(call.s, call.now)
        return True

    def _cmd_warn(self, call: Call) -> None:
        if not self._admit(call):
            return
        parsed = parse_warn(call.args, max_name=MAX_NAME, max_note=MAX_NOTE)
        index = self._index(parsed[0]) if parsed is not None else None
        if parsed is None or index is None:
            self._desk.answer(call, self._cat.render("moderation_usage_warn"))
            return
        s, now = call.s, call.now
        subject = s.scalar(select(ModerationSubject).where(ModerationSubject.name_bidx == index))
        if subject is None:
            subject = ModerationSubject(id=str(uuid.uuid4()), name_bidx=index, created_at=now)
            s.add(subject)
        self._add_warning(s, subject.id, call.officer.id, parsed[1], now)
        s.flush()
        dates = s.scalars(select(ModerationWarning.created_at)
                          .where(ModerationWarning.subject_id == subject.id)).all()
        count = active_warnings(dates, now, self._expiry)
        audit.append(s, "moderation.warning", now, actor_ref=call.officer.id)
        pending = s.scalar(select(ModerationVote).where(
            ModerationVote.subject_id == subject.id, ModerationVote.status == OPEN))
        lines = [self._cat.render("moderation_warned", count=count)]
        if pending is not None:
            lines.append(self._cat.render("moderation_vote_pending", ref=pending.ref))
        self._desk.answer(call, "\n".join(lines))
        if should_open_vote(count, self._settings.warnings_for_vote,
                            vote_open=pending is not None):
            self._open_vote(s, subject.id, count, now)

    def _cmd_warnings(self, call: Call) -> None:
        if not self._admit(call):
            return
        if not call.where.dm:
            self._desk.answer(call, self._cat.render("moderation_dm_only"))
            return
        name = parse_name(call.args, MAX_NAME)
        index = self._index(name) if name is not None else None
        if index is None:
            self._desk.answer(call, self._cat.render("moderation_usage_warnings"))
            return
        s = call.s
        subject_id = s.scalar(select(ModerationSubject.id)
                              .where(ModerationSubject.name_bidx == index))
        rows = [] if subject_id is None else list(s.scalars(
            select(ModerationWarning).where(ModerationWarning.subject_id == subject_id)
            .order_by(ModerationWarning.created_at, ModerationWarning.id)))
        series = current_series([r.created_at for r in rows], call.now, self._expiry)
        active = rows[len(rows) - len(series):] if series else []
        expired = len([r for r in rows if r.created_at <= call.now]) - len(active)
        if active:
            lines = [self._cat.render("moderation_warnings_header", count=len(active),
                                      days=self._settings.warning_expiry_days)]
            tz = self._cfg.organisation.timezone
            lines.extend(
                self._cat.render("moderation_warning_row", when=local_day(row.created_at, tz),
                                 name=self._officer_name(row.author),
                                 note=quote_block(self._note(row)))
                for row in active)
        else:
            lines = [self._cat.render("moderation_warnings_none")]
        if expired > 0:
            lines.append(self._cat.render("moderation_warnings_expired", count=expired))
        self._desk.answer(call, "\n\n".join(lines))
        audit.append(s, "moderation.warnings_read", call.now, actor_ref=call.officer.id)

    def _cmd_vote(self, call: Call) -> None:
        if not self._admit(call):
            return
        parsed = parse_vote(call.args)
        if parsed is None:
            self._desk.answer(call, self._cat.render("moderation_usage_vote"))
            return
        ref, in_favour = parsed
        s, now, officer_id = call.s, call.now, call.officer.id
        vote = s.scalar(select(ModerationVote).where(ModerationVote.ref == ref))
        if vote is None:
            self._desk.answer(call, self._cat.render("moderation_unknown_vote", ref=ref))
            return
        if vote.status != OPEN:
            self._desk.answer(call, self._cat.render("moderation_vote_is_closed", ref=ref))
            return
        ballot = s.scalar(select(ModerationBallot).where(
            ModerationBallot.vote_id == vote.id, ModerationBallot.officer_id == officer_id))
        if ballot is None:
            s.add(ModerationBallot(id=str(uuid.uuid4()), vote_id=vote.id, officer_id=officer_id,
                                   in_favour=in_favour, cast_at=now))
            event = "moderation.vote_cast"
        else:
            ballot.in_favour = in_favour
            ballot.cast_at = now
            event = "moderation.vote_changed"
        s.flush()
        audit.append(s, event, now, case_ref=ref, actor_ref=officer_id)
        choice = self._cat.render("moderation_choice_yes" if in_favour
                                  else "moderation_choice_no")
        self._desk.answer(call, self._cat.render("moderation_vote_recorded", ref=ref,
                                                 choice=choice))
        self._settle(s, vote, now)

    # -- votes --------------------------------------------------------------------------
    def close_due(self, s: Session, now: datetime) -> int:
        """Close every open vote that is past its deadline or fully voted. Returns how many."""
        votes = s.scalars(select(ModerationVote).where(ModerationVote.status == OPEN)
                          .order_by(ModerationVote.closes_at)).all()
        return sum(1 for vote in votes if self._settle(s, vote, now))

    def _open_vote(self, s: Session, subject_id: str, count: int, now: datetime) -> None:
        ref = self._unused_ref(s)
        vote = ModerationVote(id=str(uuid.uuid4()), ref=ref, subject_id=subject_id,
                              warnings=count, opened_at=now,
                              closes_at=vote_deadline(now, self._settings.vote_hours),
                              status=OPEN)
        s.add(vote)
        s.flush()
        audit.append(s, "moderation.vote_opened", now, case_ref=ref)
        text = self._cat.render("moderation_vote_opened", count=count, ref=ref,
                                deadline=local_time(vote.closes_at,
                                                    self._cfg.organisation.timezone))
        self._tell_moderators(s, text, "moderation_vote", f"mod:{ref}:open", now)

    def _settle(self, s: Session, vote: ModerationVote, now: datetime) -> bool:
        """Close `vote` if everyone voted or its time is up, and tell every moderator."""
        ballots: dict[str, bool] = dict(s.execute(
            select(ModerationBallot.officer_id, ModerationBallot.in_favour)
            .where(ModerationBallot.vote_id == vote.id)).all())
        result = vote_result(ballots, self.moderators, vote.closes_at, now)
        if not result.closed:
            return False
        vote.status = CLOSED
        vote.closed_at = now
        vote.removed = result.removed
        vote.yes_count = result.yes
        vote.no_count = result.no
        s.flush()
        audit.append(s, "moderation.vote_closed_removed" if result.removed
                     else "moderation.vote_closed_kept", now, case_ref=vote.ref)
        absent = len(self.moderators) - result.yes - result.no
        text = self._cat.render("moderation_vote_removed" if result.removed
                                else "moderation_vote_kept",
                                ref=vote.ref, yes=result.yes, no=result.no, absent=absent)
        self._tell_moderators(s, text, "moderation_result", f"mod:{vote.ref}:result", now)
        return True

    # -- helpers ------------------------------------------------------------------------
    @property
    def _expiry(self) -> timedelta:
        return timedelta(days=self._settings.warning_expiry_days)

    def _index(self, name: str) -> bytes | None:
        try:
            return self._sealer.subject_index(name)
        except ValueError:
            return None  # nothing left after normalising, or too long

    def _add_warning(self, s: Session, subject_id: str, author: str, note: str,
                     now: datetime) -> None:
        row_id = str(uuid.uuid4())
        rk = self._sealer.new_record(WARNINGS_TABLE, row_id)
        s.add(ModerationWarning(
            id=row_id, subject_id=subject_id, created_at=now, author=author,
            kek_id=rk.kek_id, dek_wrapped=rk.wrapped,
            note_sealed=self._sealer.seal(rk.dek, WARNINGS_TABLE, row_id, NOTE_COLUMN,
                                          note.encode()),
        ))

    def _note(self, row: ModerationWarning) -> str:
        try:
            dek = self._sealer.open_record(WARNINGS_TABLE, row.id, row.dek_wrapped)
            return self._sealer.open(dek, WARNINGS_TABLE, row.id, NOTE_COLUMN,
                                     row.note_sealed).decode()
        except (KeyringError, UnicodeDecodeError) as exc:
            log.warning("moderation.note_unreadable", exc_type=type(exc).__name__)
            return self._cat.render("moderation_note_unreadable")

    def _officer_name(self, officer_id: str) -> str:
        return next((o.display_name for o in self._cfg.officers if o.id == officer_id),
                    officer_id)

    def _unused_ref(self, s: Session) -> str:
        for _ in range(_REF_TRIES):
            ref = new_vote_ref()
            if s.scalar(select(ModerationVote.id).where(ModerationVote.ref == ref)) is None:
                return ref
        raise RuntimeError("no unused vote reference")

    def _tell_moderators(self, s: Session, text: str, purpose: str, key: str,
                         now: datetime) -> None:
        for officer_id in sorted(self.moderators):
            enqueue(s, self._sealer, Message(RecipientKind.OFFICER, text, purpose,
                                             ref=officer_id),
                    key=f"{key}:{officer_id}", now=now)


class VoteDue(DueRunner):
    """The timer runner plus the moderation ledger's vote deadlines."""

    def __init__(self, sessions: sessionmaker[Session], checkins: Checkins,
                 escalations: Escalations, sla: SlaPolicy | None,
                 ledger: Moderation) -> None:
        super().__init__(sessions, checkins, escalations, sla)
        self._ledger = ledger

    def run_due(self, now: datetime) -> int:
        fired = super().run_due(now)
        try:
            with self._sessions.begin() as s:
                fired += self._ledger.close_due(s, now)
        except Exception as exc:
            log.error("moderation.close_failed", exc_type=type(exc).__name__)
        return fired
