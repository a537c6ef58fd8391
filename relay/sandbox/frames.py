"""Receive-frame builders: envelopes exactly as signal-cli (json-rpc) emits them.

Every builder returns plain dicts whose key order is signal-cli's (WIRE §5, fixtures):
``{"envelope":{…},"account":"+…"}`` with ``exception`` first when present. Encode with
:func:`encode_frame` (compact, UTF-8, emoji unescaped) to get the websocket text, and with
:func:`rpc_line` for the webhook's JSON-RPC line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

SERVER_RECEIVED_DELAY_MS = 412
SERVER_DELIVERED_DELAY_MS = 530

Json = dict[str, Any]
GroupType = Literal["DELIVER", "UPDATE"]
TypingAction = Literal["STARTED", "STOPPED"]


@dataclass(frozen=True)
class Source:
    """The sender as the envelope shows it. ``number`` is ``None`` for a hidden number."""

    uuid: str
    number: str | None
    name: str | None
    device: int = 1

    @property
    def legacy(self) -> str:
        """The deprecated ``source``/``author`` field: number if known, else the UUID."""
        return self.number if self.number is not None else self.uuid


def encode_frame(frame: Json) -> str:
    """Compact UTF-8 JSON, non-ASCII unescaped (how signal-cli's Jackson writes it)."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def rpc_line(params_text: str) -> str:
    """The JSON-RPC ``receive`` notification line the webhook gets (with trailing newline)."""
    return '{"jsonrpc":"2.0","method":"receive","params":' + params_text + "}\n"


def rpc_error_line(message: str, code: int = -1) -> str:
    """A JSON-RPC ``receive`` line carrying an error instead of params."""
    error = encode_frame({"code": code, "message": message})
    return '{"jsonrpc":"2.0","method":"receive","error":' + error + "}\n"


def frame(envelope_obj: Json, account: str, exception: Json | None = None) -> Json:
    """The websocket frame: ``{"exception"?, "envelope", "account"}``."""
    out: Json = {}
    if exception is not None:
        out["exception"] = exception
    out["envelope"] = envelope_obj
    out["account"] = account
    return out


def error_frame(message: str) -> Json:
    """What the REST API sends every subscriber for a JSON-RPC error notification."""
    return {"error": message}


def envelope(
    source: Source,
    timestamp: int,
    *,
    server_received: int | None = None,
    server_delivered: int | None = None,
    content: Json | None = None,
) -> Json:
    """An envelope; ``content`` holds the non-null members (``dataMessage`` …) in order."""
    out: Json = {
        "source": source.legacy,
        "sourceNumber": source.number,
        "sourceUuid": source.uuid,
        "sourceName": source.name,
        "sourceDevice": source.device,
        "timestamp": timestamp,
        "serverReceivedTimestamp": (
            timestamp + SERVER_RECEIVED_DELAY_MS if server_received is None else server_received
        ),
        "serverDeliveredTimestamp": (
            timestamp + SERVER_DELIVERED_DELAY_MS if server_delivered is None else server_delivered
        ),
    }
    if content:
        out.update(_ordered_content(content))
    return out


_CONTENT_ORDER = (
    "dataMessage",
    "editMessage",
    "storyMessage",
    "syncMessage",
    "callMessage",
    "receiptMessage",
    "typingMessage",
)


def _ordered_content(content: Json) -> Json:
    ordered = {key: content[key] for key in _CONTENT_ORDER if key in content}
    ordered.update({k: v for k, v in content.items() if k not in ordered})
    return ordered


def data_message(
    timestamp: int,
    message: str | None,
    *,
    expires_in_seconds: int = 0,
    is_expiration_update: bool = False,
    view_once: bool = False,
    reaction: Json | None = None,
    quote: Json | None = None,
    mentions: list[Json] | None = None,
    attachments: list[Json] | None = None,
    sticker: Json | None = None,
    remote_delete: Json | None = None,
    group_info: Json | None = None,
) -> Json:
    """A ``dataMessage``: the five fixed keys, then whichever members are set (empty lists
    are omitted, as signal-cli does)."""
    out: Json = {
        "timestamp": timestamp,
        "message": message,
        "expiresInSeconds": expires_in_seconds,
        "isExpirationUpdate": is_expiration_update,
        "viewOnce": view_once,
    }
    optional: list[tuple[str, Any]] = [
        ("reaction", reaction),
        ("quote", quote),
        ("mentions", mentions or None),
        ("attachments", attachments or None),
        ("sticker", sticker),
        ("remoteDelete", remote_delete),
        ("groupInfo", group_info),
    ]
    out.update({key: value for key, value in optional if value is not None})
    return out


def group_info(
    internal_id: str,
    name: str | None,
    revision: int,
    group_type: GroupType = "DELIVER",
    *,
    legacy: bool = False,
) -> Json:
    """``groupInfo``; ``legacy`` gives the pre-late-2024 shape without name and revision."""
    if legacy:
        return {"groupId": internal_id, "type": group_type}
    return {"groupId": internal_id, "groupName": name, "revision": revision, "type": group_type}


def attachment(
    *,
    content_type: str,
    filename: str | None,
    attachment_id: str,
    size: int,
    width: int | None = None,
    height: int | None = None,
    caption: str | None = None,
    upload_timestamp: int | None = None,
    voice_note: bool = False,
    legacy: bool = False,
) -> Json:
    """An ``attachments[]`` entry; ``legacy`` omits ``isVoiceNote`` (signal-cli ≤ 0.14.6)."""
    out: Json = {
        "contentType": content_type,
        "filename": filename,
        "id": attachment_id,
        "size": size,
        "width": width,
        "height": height,
        "caption": caption,
        "uploadTimestamp": upload_timestamp,
    }
    if not legacy:
        out["isVoiceNote"] = voice_note
    return out


def quoted_attachment(content_type: str, filename: str | None) -> Json:
    """A ``quote.attachments[]`` entry."""
    return {"contentType": content_type, "filename": filename, "thumbnail": None}


def quote(
    quote_id: int,
    author: Source,
    text: str | None,
    attachments: list[Json] | None = None,
    mentions: list[Json] | None = None,
) -> Json:
    """A ``quote``: ``id`` is the quoted message's timestamp; ``attachments`` always a list."""
    out: Json = {
        "id": quote_id,
        "author": author.legacy,
        "authorNumber": author.number,
        "authorUuid": author.uuid,
        "text": text,
        "attachments": list(attachments or []),
    }
    if mentions:
        out["mentions"] = mentions
    return out


def mention(target: Source, start: int, length: int) -> Json:
    """A ``mentions[]`` entry."""
    return {
        "name": target.legacy,
        "number": target.number,
        "uuid": target.uuid,
        "start": start,
        "length": length,
    }


def reaction(emoji: str, target_author: Source, target_timestamp: int, *, remove: bool) -> Json:
    """A ``reaction``; ``targetSentTimestamp`` is the reacted-to message's timestamp."""
    return {
        "emoji": emoji,
        "targetAuthor": target_author.legacy,
        "targetAuthorNumber": target_author.number,
        "targetAuthorUuid": target_author.uuid,
        "targetSentTimestamp": target_timestamp,
        "isRemove": remove,
    }


def remote_delete(target_timestamp: int) -> Json:
    """A ``remoteDelete`` naming the deleted message's timestamp."""
    return {"timestamp": target_timestamp}


def receipt_message(
    when: int,
    timestamps: list[int],
    *,
    kind: Literal["delivery", "read", "viewed"] = "delivery",
) -> Json:
    """A ``receiptMessage`` (all four flags are always present)."""
    return {
        "when": when,
        "isDelivery": kind == "delivery",
        "isRead": kind == "read",
        "isViewed": kind == "viewed",
        "timestamps": list(timestamps),
    }


def typing_message(action: TypingAction, timestamp: int, group_id: str | None = None) -> Json:
    """A ``typingMessage``; ``groupId`` is the internal id and only present in groups."""
    out: Json = {"action": action, "timestamp": timestamp}
    if group_id is not None:
        out["groupId"] = group_id
    return out


def edit_message(target_timestamp: int, inner: Json) -> Json:
    """An ``editMessage``: the inner ``dataMessage`` carries the edit's own timestamp."""
    return {"targetSentTimestamp": target_timestamp, "dataMessage": inner}


def sync_sent_message(destination: Source | None, inner: Json) -> Json:
    """``syncMessage.sentMessage``: destination fields, then the dataMessage fields flattened."""
    sent: Json = {
        "destination": None if destination is None else destination.legacy,
        "destinationNumber": None if destination is None else destination.number,
        "destinationUuid": None if destination is None else destination.uuid,
    }
    sent.update(inner)
    return {"sentMessage": sent}


def untrusted_identity_exception(aci: str) -> Json:
    """The top-level ``exception`` of a message from a sender whose key changed."""
    return {"message": f"Untrusted identity: {aci}", "type": "UntrustedIdentityException"}


def legacy_shape(
    frame_obj: Json,
    *,
    no_voice_note: bool = True,
    no_revision: bool = True,
    no_server_timestamps: bool = False,
) -> Json:
    """Rewrite a frame into an older signal-cli's shape (WIRE F12 poison frames).

    ``no_voice_note`` drops ``isVoiceNote`` from attachments (signal-cli ≤ 0.14.6),
    ``no_revision`` drops ``groupName``/``revision`` from ``groupInfo`` (before late 2024),
    ``no_server_timestamps`` drops the two server timestamps (before ``5646f651``).
    """
    out = json.loads(encode_frame(frame_obj))
    env = out.get("envelope")
    if not isinstance(env, dict):
        return dict(out)
    if no_server_timestamps:
        env.pop("serverReceivedTimestamp", None)
        env.pop("serverDeliveredTimestamp", None)
    for data in _data_messages(env):
        if no_voice_note:
            for item in data.get("attachments") or []:
                item.pop("isVoiceNote", None)
        info = data.get("groupInfo")
        if no_revision and isinstance(info, dict):
            info.pop("groupName", None)
            info.pop("revision", None)
    return dict(out)


def _data_messages(env: Json) -> list[Json]:
    found: list[Json] = []
    data = env.get("dataMessage")
    if isinstance(data, dict):
        found.append(data)
    edit = env.get("editMessage")
    if isinstance(edit, dict) and isinstance(edit.get("dataMessage"), dict):
        found.append(edit["dataMessage"])
    return found
