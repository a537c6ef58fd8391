"""SQLAlchemy 2 models.

Nothing a person wrote, and nothing that identifies a person, is stored in clear:
those columns end in `_sealed` and hold AES-GCM envelopes (see `keys/envelope.py`),
each record with its own data key (`dek_wrapped`). Lookups by sender go through
keyed blind indexes (`*_bidx`). Values of enum-like string columns are a storage
format: never rename one, only add.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from relay.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(36)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class InboxRow(Base):
    """Every frame received, sealed and committed before anything else is done."""

    __tablename__ = "inbox"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    dedupe_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # ws | webhook
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending|done|quarantined
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_class: Mapped[str | None] = mapped_column(String(64))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    dek_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    frame_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class Conversation(Base):
    """Where a reporter is in a conversation with the bot (intake or a pending choice)."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    reporter_bidx: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    flow: Mapped[str] = mapped_column(String(16))  # intake | reporter
    state: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    dek_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    data_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # the reporter's address, sealed: needed to re-ask after a restart
    address_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class Case(Base):
    __tablename__ = "cases"
    # an officer's /cases: open cases of a scope, newest first, without decrypting any
    __table_args__ = (Index("ix_cases_listing", "scope_id", "status", "has_exclusions",
                            "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ref: Mapped[str] = mapped_column(String(6), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    epoch: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open|in-progress|...|closed
    scope_id: Mapped[str] = mapped_column(String(40))
    category_id: Mapped[str] = mapped_column(String(40))
    help_kind: Mapped[str] = mapped_column(String(40))
    named: Mapped[bool] = mapped_column(Boolean)
    immediate_review: Mapped[bool] = mapped_column(Boolean, default=False)
    checkin_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # a coordinator's /ack
    safe: Mapped[bool | None] = mapped_column(Boolean)
    # keyed blind index of "who was involved" (canonicalised), for the same-person rule
    who_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    dek_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    # JSON: narrative, when, where, who, safe, attachments, routing (chosen/support/excluded)
    details_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # whether the routing excludes anyone (derived from details_sealed, for listings);
    # None for a case not indexed yet (made before revision 0002): decided by decrypting
    has_exclusions: Mapped[bool | None] = mapped_column(Boolean)


class CaseOfficerTag(Base):
    """The officers a case's routing names, as keyed tags (`relay.case_index`): the chosen
    and support officer ("named"), and each excluded officer ("excluded"). Listings decide
    who may act on a case from these and `Case.has_exclusions`, without decrypting it."""

    __tablename__ = "case_officer_tags"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"),
                                         primary_key=True)
    tag: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True, index=True)


class ReporterLink(Base):
    """Who reported a case. Its own data key, so it can be shredded before the case."""

    __tablename__ = "reporter_links"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    reporter_bidx: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    dek_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    # JSON: aci, number, profile_name
    identity_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class CaseMessage(Base):
    """Everything said on a case, sealed under the case's data key."""

    __tablename__ = "case_messages"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # no index of its own: the unique (case_id, seq) index serves lookups by case
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # report|reporter|officer|note|system
    author: Mapped[str | None] = mapped_column(String(40))  # officer id, never an identity
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class OutboxRow(Base):
    """A message to send. Written in the same transaction as the change that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_available", "status", "available_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(96), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    available_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # pending|sending|sent|held|failed|unreachable
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    purpose: Mapped[str] = mapped_column(String(24))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"),
                                                index=True)  # purge deletes by case
    # where it goes: 'group' (public group id), 'officer' (officer id), 'reporter' (sealed)
    recipient_kind: Mapped[str] = mapped_column(String(16))
    # officer id or scope id for officer/group sends; the reporter's address is sealed
    recipient_ref: Mapped[str | None] = mapped_column(String(80))
    map_replies: Mapped[bool] = mapped_column(Boolean, default=False)
    quote_timestamp: Mapped[int | None] = mapped_column(BigInteger)
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    dek_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    body_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    address_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    signal_timestamp: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_class: Mapped[str | None] = mapped_column(String(64))
    possible_repeat: Mapped[bool] = mapped_column(Boolean, default=False)


class SentMap(Base):
    """(destination, Signal timestamp of our send) -> case: the only way a quote maps."""

    __tablename__ = "sent_map"
    __table_args__ = (UniqueConstraint("destination", "signal_timestamp"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    destination: Mapped[str] = mapped_column(String(80))  # public group id or officer id
    signal_timestamp: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """Hash-chained record of actions: opaque ids only, never content or identities."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(String(48))
    case_ref: Mapped[str | None] = mapped_column(String(6))
    actor_ref: Mapped[str | None] = mapped_column(String(40))
    outbox_id: Mapped[str | None] = mapped_column(String(36))
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class Timer(Base):
    """Check-ins and escalations are rows with a due time, run by `run_due(now)`."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_status_due", "status", "due_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(96), unique=True)  # kind:case:n, fires once
    kind: Mapped[str] = mapped_column(String(16))  # checkin | sla
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # pending | done | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Counter(Base):
    """Monotonic sequences (inbox/outbox ordering) that work the same on both databases."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class ModerationSubject(Base):
    """A person moderators warned, known only by a keyed blind index of the name as typed.

    The name itself is never stored, and relay never contacts the person.
    """

    __tablename__ = "moderation_subjects"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name_bidx: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModerationWarning(Base):
    """One warning a moderator recorded; the note is sealed under the row's own data key."""

    __tablename__ = "moderation_warnings"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        ForeignKey("moderation_subjects.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    author: Mapped[str] = mapped_column(String(40))  # officer id, never an identity
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    dek_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    note_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ModerationVote(Base):
    """A removal vote: open until every moderator voted or `closes_at`, then closed."""

    __tablename__ = "moderation_votes"
    __table_args__ = (Index("ix_moderation_votes_status_closes_at", "status", "closes_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ref: Mapped[str] = mapped_column(String(6), unique=True)  # V-K7F3
    subject_id: Mapped[str] = mapped_column(
        ForeignKey("moderation_subjects.id", ondelete="CASCADE"), index=True)
    warnings: Mapped[int] = mapped_column(Integer)  # active warnings when it opened
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed: Mapped[bool | None] = mapped_column(Boolean)  # the result, once closed
    yes_count: Mapped[int | None] = mapped_column(Integer)
    no_count: Mapped[int | None] = mapped_column(Integer)


class ModerationBallot(Base):
    """One moderator's current ballot on a vote (changeable until the vote closes)."""

    __tablename__ = "moderation_ballots"
    __table_args__ = (UniqueConstraint("vote_id", "officer_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    vote_id: Mapped[str] = mapped_column(
        ForeignKey("moderation_votes.id", ondelete="CASCADE"))
    officer_id: Mapped[str] = mapped_column(String(40))
    in_favour: Mapped[bool] = mapped_column(Boolean)  # of removal
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime())
