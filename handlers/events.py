"""Inbound events: what a receive frame means, independent of signalbot and storage."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FrameKind(StrEnum):
    """Part of the inbox dedupe key; values are a storage format."""

    DATA = "data"
    EDIT = "edit"
    REACTION = "reaction"
    DELETE = "delete"
    GROUP_UPDATE = "group_update"
    TYPING = "typing"
    RECEIPT = "receipt"
    EXCEPTION = "exception"
    SYNC = "sync"
    ERROR = "error"
    OTHER = "other"


@dataclass(frozen=True)
class Sender:
    aci: str
    number: str | None
    profile_name: str | None
    device: int | None


@dataclass(frozen=True)
class QuoteRef:
    id: int
    author_uuid: str | None
    author_number: str | None


@dataclass(frozen=True)
class AttachmentRef:
    id: str
    content_type: str
    size: int | None


@dataclass(frozen=True)
class TextMessage:
    sender: Sender
    timestamp: int
    text: str | None
    group_id: str | None  # internal group id, as in envelopes
    quote: QuoteRef | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    expiration_update: bool = False


@dataclass(frozen=True)
class ReactionEvent:
    sender: Sender
    timestamp: int
    emoji: str
    target_timestamp: int
    target_author_uuid: str | None
    is_remove: bool
    group_id: str | None


@dataclass(frozen=True)
class RemoteDeleteEvent:
    sender: Sender
    timestamp: int
    target_timestamp: int
    group_id: str | None


@dataclass(frozen=True)
class EditEvent:
    sender: Sender
    timestamp: int
    target_timestamp: int
    text: str | None
    group_id: str | None


@dataclass(frozen=True)
class GroupUpdateEvent:
    sender: Sender
    timestamp: int
    group_id: str
    revision: int | None


@dataclass(frozen=True)
class IdentityEvent:
    """A content-less envelope with an `exception` (e.g. an untrusted identity)."""

    sender: Sender
    timestamp: int
    exception_type: str


@dataclass(frozen=True)
class SyncTranscript:
    """`syncMessage.sentMessage`: only a linked device produces it. An alarm, never input."""

    timestamp: int


@dataclass(frozen=True)
class ErrorFrame:
    """`{"error": ...}` from the REST API."""


@dataclass(frozen=True)
class Ignored:
    kind: FrameKind


InboundEvent = (
    TextMessage
    | ReactionEvent
    | RemoteDeleteEvent
    | EditEvent
    | GroupUpdateEvent
    | IdentityEvent
    | SyncTranscript
    | ErrorFrame
    | Ignored
)
