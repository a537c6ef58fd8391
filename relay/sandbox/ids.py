"""Identifiers as signal-cli-rest-api makes them: group ids, ACIs, attachment ids, timestamps.

Group ids (WIRE §3.3): the *internal* id is signal-cli's base64 of the 32 group-id bytes
(44 characters, ends in ``=``); the *public* id used in REST paths and ``/v2/send`` is
``"group." + base64(internal id)``. The REST API double-decodes public ids and reports
failures with the texts reproduced in :func:`recipient_kind`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
import time
import uuid
from typing import Literal

GROUP_PREFIX = "group."
GROUP_ID_BYTES = 32

_ATTACHMENT_ALPHABET = string.ascii_letters + string.digits


def new_internal_group_id() -> str:
    """A fresh internal group id: base64 of 32 random bytes (44 chars)."""
    return base64.b64encode(secrets.token_bytes(GROUP_ID_BYTES)).decode("ascii")


def public_group_id(internal_id: str) -> str:
    """``group.`` + base64 of the internal id's text (Go ``convertInternalGroupIdToGroupId``)."""
    return GROUP_PREFIX + base64.b64encode(internal_id.encode("utf-8")).decode("ascii")


def go_b64decode(text: str) -> bytes | None:
    """Go ``base64.StdEncoding.DecodeString``: padded standard alphabet, else ``None``."""
    cleaned = text.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return None


def single_decode_group_id(public_id: str) -> str | None:
    """Go ``ConvertGroupIdToInternalGroupId``: strip the prefix, decode once.

    Used by PUT/DELETE group, quit/join/block; the caller answers ``Invalid group id``.
    """
    stripped = public_id.removeprefix(GROUP_PREFIX)
    raw = go_b64decode(stripped)
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")


RecipientKind = Literal["group", "number", "username"]


def recipient_kind(recipient: str) -> tuple[RecipientKind, str | None]:
    """Go ``getRecipientType``: the recipient's kind and the error text, if any.

    A ``group.`` recipient must double-decode to 32 bytes, else ``Invalid Signal group
    size (N`` (sic) or ``Invalid identifier group.…``; a short undecodable suffix (≤ 10
    chars) is a username. ``+digits`` and UUIDs are numbers; anything else a username.
    """
    if recipient.startswith(GROUP_PREFIX):
        suffix = recipient.removeprefix(GROUP_PREFIX)
        first = go_b64decode(suffix)
        if first is not None:
            second = go_b64decode(first.decode("utf-8", errors="replace"))
            if second is not None:
                if len(second) == GROUP_ID_BYTES:
                    return "group", None
                return "group", f"Invalid Signal group size ({len(second)}"
        elif len(suffix) <= 10:
            return "username", None
        return "group", "Invalid identifier " + recipient
    if is_phone_number(recipient) or is_uuid(recipient):
        return "number", None
    return "username", None


def is_phone_number(text: str) -> bool:
    """Go ``utils.IsPhoneNumber``: ``+`` then digits or spaces (the empty string passes)."""
    for index, char in enumerate(text):
        if index == 0:
            if char != "+":
                return False
        elif not (char.isascii() and (char.isdigit() or char == " ")):
            return False
    return True


def is_uuid(text: str) -> bool:
    """gofrs ``uuid.FromString`` accepts the forms Python's ``uuid.UUID`` accepts."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def new_aci() -> str:
    """A random ACI (UUID v4, lower case)."""
    return str(uuid.uuid4())


def new_attachment_id(extension: str = "") -> str:
    """An attachment file name like signal-cli's: 20 random alphanumerics plus extension."""
    stem = "".join(secrets.choice(_ATTACHMENT_ALPHABET) for _ in range(20))
    return stem + extension


def new_challenge_token() -> str:
    """A captcha challenge token (a UUID, as the Signal server issues)."""
    return str(uuid.uuid4())


class Timestamps:
    """Unique, strictly increasing millisecond timestamps near the wall clock.

    ``start`` pins the first value (deterministic tests); later values still grow by at
    least 1 ms each call.
    """

    def __init__(self, start: int | None = None) -> None:
        self._offset = 0 if start is None else start - _wall_ms()
        self._last = 0

    def next(self) -> int:
        """The next timestamp: ``max(now, last + 1)``."""
        value = max(_wall_ms() + self._offset, self._last + 1)
        self._last = value
        return value

    def peek(self) -> int:
        """The current time on this clock without reserving a value."""
        return max(_wall_ms() + self._offset, self._last)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000
