"""Tolerant parsing of receive frames (WIRE.md sections 4 and 5) into inbound events.

Unlike signalbot 2.2.1's schema validation, a missing optional field (`isVoiceNote`,
`revision`, server timestamps) never loses a message; unknown fields are ignored. A frame
that is not JSON, or lacks what identifies its sender and time, raises `FrameError` and
is quarantined by the caller, never dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from handlers.events import (
    AttachmentRef,
    EditEvent,
    ErrorFrame,
    FrameKind,
    GroupUpdateEvent,
    IdentityEvent,
    Ignored,
    InboundEvent,
    QuoteRef,
    ReactionEvent,
    RemoteDeleteEvent,
    Sender,
    SyncTranscript,
    TextMessage,
)

MAX_FRAME_BYTES = 4 * 1024 * 1024


class FrameError(ValueError):
    """The frame cannot be understood. The message is a fixed phrase, never frame content."""


@dataclass(frozen=True)
class FrameIdentity:
    """What the inbox dedupes on: sender ACI, device, timestamp and kind."""

    aci: str
    device: int
    timestamp: int
    kind: FrameKind


def load(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_FRAME_BYTES:
        raise FrameError("frame too large")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise FrameError("not json") from None
    if not isinstance(obj, dict):
        raise FrameError("not an object")
    if "jsonrpc" in obj and isinstance(obj.get("params"), dict):  # webhook line
        params: dict[str, Any] = obj["params"]
        return params
    return obj


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise FrameError(f"bad {what}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    raise FrameError(f"bad {what}")


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def kind_of(frame: dict[str, Any]) -> FrameKind:  # noqa: PLR0911 - one return per kind
    if "error" in frame and "envelope" not in frame:
        return FrameKind.ERROR
    env = _dict(frame.get("envelope"))
    if env is None:
        raise FrameError("no envelope")
    if "exception" in frame:
        return FrameKind.EXCEPTION
    data = _dict(env.get("dataMessage"))
    if data is not None:
        group = _dict(data.get("groupInfo"))
        if group is not None and group.get("type") == "UPDATE":
            return FrameKind.GROUP_UPDATE
        if data.get("reaction") is not None:
            return FrameKind.REACTION
        if data.get("remoteDelete") is not None:
            return FrameKind.DELETE
        return FrameKind.DATA
    kinds = (
        ("editMessage", FrameKind.EDIT),
        ("syncMessage", FrameKind.SYNC),
        ("typingMessage", FrameKind.TYPING),
        ("receiptMessage", FrameKind.RECEIPT),
    )
    for key, kind in kinds:
        if env.get(key) is not None:
            return kind
    return FrameKind.OTHER


def identity(frame: dict[str, Any]) -> FrameIdentity | None:
    """The dedupe identity, or None for frames with no sender (error frames)."""
    kind = kind_of(frame)
    if kind is FrameKind.ERROR:
        return None
    env = _dict(frame.get("envelope")) or {}
    aci = _opt_str(env.get("sourceUuid")) or _opt_str(env.get("source"))
    if not aci:
        raise FrameError("no sender")
    device = env.get("sourceDevice")
    return FrameIdentity(
        aci=aci.lower(),
        device=device if isinstance(device, int) and not isinstance(device, bool) else 0,
        timestamp=_int(env.get("timestamp"), "timestamp"),
        kind=kind,
    )


def _sender(env: dict[str, Any]) -> Sender:
    aci = _opt_str(env.get("sourceUuid"))
    if not aci:
        raise FrameError("no sender uuid")
    device = env.get("sourceDevice")
    return Sender(
        aci=aci.lower(),
        number=_opt_str(env.get("sourceNumber")),
        profile_name=_opt_str(env.get("sourceName")),
        device=device if isinstance(device, int) and not isinstance(device, bool) else None,
    )


def _group_id(data: dict[str, Any]) -> str | None:
    group = _dict(data.get("groupInfo"))
    return _opt_str(group.get("groupId")) if group else None


def _quote(data: dict[str, Any]) -> QuoteRef | None:
    quote = _dict(data.get("quote"))
    if quote is None:
        return None
    try:
        quote_id = _int(quote.get("id"), "quote id")
    except FrameError:
        return None  # an unreadable quote maps to no case; the message itself is kept
    return QuoteRef(
        id=quote_id,
        author_uuid=(_opt_str(quote.get("authorUuid")) or "").lower() or None,
        author_number=_opt_str(quote.get("authorNumber")),
    )


def _attachments(data: dict[str, Any]) -> tuple[AttachmentRef, ...]:
    out: list[AttachmentRef] = []
    raw = data.get("attachments")
    if not isinstance(raw, list):
        return ()
    for item in raw:
        att = _dict(item)
        if att is None or not isinstance(att.get("id"), str):
            continue
        size = att.get("size")
        out.append(
            AttachmentRef(
                id=att["id"],
                content_type=_opt_str(att.get("contentType")) or "application/octet-stream",
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
        )
    return tuple(out)


def parse(raw: str) -> InboundEvent:  # noqa: PLR0911 - one return per kind
    frame = load(raw)
    kind = kind_of(frame)
    if kind is FrameKind.ERROR:
        return ErrorFrame()
    env = _dict(frame.get("envelope")) or {}
    ts = _int(env.get("timestamp"), "timestamp")
    if kind is FrameKind.SYNC:
        sync = _dict(env.get("syncMessage")) or {}
        return SyncTranscript(ts) if sync.get("sentMessage") is not None else Ignored(kind)
    if kind in (FrameKind.TYPING, FrameKind.RECEIPT, FrameKind.OTHER):
        return Ignored(kind)
    sender = _sender(env)
    if kind is FrameKind.EXCEPTION:
        exc = _dict(frame.get("exception")) or {}
        return IdentityEvent(sender, ts, _opt_str(exc.get("type")) or "unknown")
    if kind is FrameKind.EDIT:
        edit = _dict(env.get("editMessage")) or {}
        inner = _dict(edit.get("dataMessage")) or {}
        return EditEvent(
            sender,
            ts,
            _int(edit.get("targetSentTimestamp"), "edit target"),
            _opt_str(inner.get("message")),
            _group_id(inner),
        )
    data = _dict(env.get("dataMessage")) or {}
    if kind is FrameKind.GROUP_UPDATE:
        group = _dict(data.get("groupInfo")) or {}
        gid = _opt_str(group.get("groupId"))
        if gid is None:
            raise FrameError("group update without group id")
        rev = group.get("revision")
        return GroupUpdateEvent(sender, ts, gid, rev if isinstance(rev, int) else None)
    if kind is FrameKind.REACTION:
        reaction = _dict(data.get("reaction")) or {}
        return ReactionEvent(
            sender,
            ts,
            _opt_str(reaction.get("emoji")) or "",
            _int(reaction.get("targetSentTimestamp"), "reaction target"),
            (_opt_str(reaction.get("targetAuthorUuid")) or "").lower() or None,
            reaction.get("isRemove") is True,
            _group_id(data),
        )
    if kind is FrameKind.DELETE:
        delete = _dict(data.get("remoteDelete")) or {}
        return RemoteDeleteEvent(
            sender, ts, _int(delete.get("timestamp"), "delete target"), _group_id(data)
        )
    return TextMessage(
        sender=sender,
        timestamp=ts,
        text=_opt_str(data.get("message")),
        group_id=_group_id(data),
        quote=_quote(data),
        attachments=_attachments(data),
        expiration_update=data.get("isExpirationUpdate") is True,
    )
