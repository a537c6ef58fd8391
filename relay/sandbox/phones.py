"""Simulated phones: people who message the bot and read what it sends them.

A phone sends 1:1 to the bot (any phone can, group member or stranger) or into a group it
belongs to; every call returns the envelope timestamp (the sender's clock). What the bot
sends the phone lands in :attr:`Phone.inbox` as :class:`Received` items, and
:meth:`Phone.wait_for` returns each item at most once.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from relay.sandbox import frames
from relay.sandbox.frames import Json, Source
from relay.sandbox.state import Party, SandboxGroup

ReceivedKind = Literal["message", "reaction", "remote_delete", "typing", "receipt"]
TrustLevel = Literal["TRUSTED_UNVERIFIED", "TRUSTED_VERIFIED", "UNTRUSTED"]
LONG_TEXT_BYTES = 2000


@dataclass(frozen=True)
class ReceivedAttachment:
    """An attachment the phone received (bytes decoded from ``base64_attachments``)."""

    data: bytes
    content_type: str
    filename: str | None


@dataclass(frozen=True)
class ReceivedMention:
    """A mention in a received message (``author`` as the bot sent it: number or UUID)."""

    start: int
    length: int
    author: str


@dataclass(frozen=True)
class Received:
    """Something the bot sent this phone: a message, reaction, deletion, typing or receipt."""

    kind: ReceivedKind
    timestamp: int
    sender_number: str
    sender_uuid: str
    text: str | None = None
    group_id: str | None = None
    quote_timestamp: int | None = None
    quote_author: str | None = None
    quote_message: str | None = None
    attachments: tuple[ReceivedAttachment, ...] = ()
    mentions: tuple[ReceivedMention, ...] = ()
    expires_in_seconds: int = 0
    edit_timestamp: int | None = None
    view_once: bool = False
    sticker: str | None = None
    emoji: str | None = None
    target_author: str | None = None
    target_timestamp: int | None = None
    is_remove: bool = False
    receipt_type: str | None = None
    typing_action: str | None = None

    @property
    def sender(self) -> Source:
        """The sender as an envelope source (for quoting or reacting to this message)."""
        return Source(uuid=self.sender_uuid, number=self.sender_number, name=None)


@dataclass(frozen=True)
class QuoteRef:
    """A message to quote or react to that is not in the inbox (e.g. another phone's)."""

    timestamp: int
    author: Source
    text: str | None = None


@dataclass(frozen=True)
class OutgoingAttachment:
    """A file a phone sends. ``(data, content_type, filename)`` tuples are accepted too."""

    data: bytes
    content_type: str
    filename: str | None = None
    width: int | None = None
    height: int | None = None
    caption: str | None = None
    voice_note: bool = False


AttachmentArg = OutgoingAttachment | tuple[bytes, str, str | None]
Mentioned = tuple[Party, int, int]


class PhoneNetwork(Protocol):
    """What a phone needs from the sandbox (implemented by :class:`Sandbox`)."""

    async def phone_emit(
        self,
        phone: Phone,
        build: Callable[[int], Json],
        *,
        group: SandboxGroup | None,
        timestamp: int | None = None,
    ) -> int:
        """Stamp, wrap and deliver the envelope content ``build(ts)`` returns; return ts."""
        ...

    def store_attachment(self, data: bytes, content_type: str, filename: str | None) -> str:
        """Keep an incoming file; return its attachment id."""
        ...

    def find_group(self, group_id: str) -> SandboxGroup | None:
        """The group with this public or internal id."""
        ...


class Phone:
    """A simulated Signal user. Create with :meth:`Sandbox.add_phone`."""

    def __init__(
        self,
        network: PhoneNetwork,
        name: str,
        *,
        number: str | None,
        aci: str,
        profile_name: str | None,
        hide_number: bool,
        profile_key_known: bool,
    ) -> None:
        self._network = network
        self.name = name
        self.number = number
        self._aci = aci
        self.profile_name = profile_name
        self.hide_number = hide_number
        self.profile_key_known = profile_key_known
        self.inbox: list[Received] = []
        self.disappearing_seconds = 0
        self.trust: TrustLevel = "TRUSTED_UNVERIFIED"
        self.fingerprint = " ".join(secrets.token_hex(1) for _ in range(33))
        self.safety_number = " ".join(f"{secrets.randbelow(100_000):05d}" for _ in range(12))
        self.identity_added = 0
        self._taken: set[int] = set()
        self._first_open = 0  # every inbox index below this was returned by wait_for
        self._arrived = asyncio.Event()

    # -- identity (Party) ----------------------------------------------------------------
    @property
    def aci(self) -> str:
        return self._aci

    @property
    def visible_number(self) -> str | None:
        return None if self.hide_number else self.number

    @property
    def source(self) -> Source:
        return Source(uuid=self._aci, number=self.visible_number, name=self.profile_name)

    def identifiers(self) -> set[str]:
        """Every identifier the bot may address this phone by (number, ACI)."""
        ids = {self._aci.lower()}
        if self.number:
            ids.add(self.number)
        return ids

    def __repr__(self) -> str:
        return f"Phone({self.name!r})"

    # -- sending -------------------------------------------------------------------------
    async def send(
        self,
        text: str | None,
        *,
        quote: Received | QuoteRef | None = None,
        attachments: Sequence[AttachmentArg] = (),
        mentions: Sequence[Mentioned] = (),
        view_once: bool = False,
        timestamp: int | None = None,
    ) -> int:
        """A 1:1 message to the bot. Returns its timestamp (``timestamp`` pins the
        sender's clock, e.g. for replays or skew)."""
        return await self._send(
            None, text, quote, attachments, mentions, view_once=view_once, timestamp=timestamp
        )

    async def send_group(
        self,
        group: SandboxGroup,
        text: str | None,
        *,
        quote: Received | QuoteRef | None = None,
        attachments: Sequence[AttachmentArg] = (),
        mentions: Sequence[Mentioned] = (),
        view_once: bool = False,
        timestamp: int | None = None,
    ) -> int:
        """A message into ``group`` (the phone must be a member). Returns its timestamp."""
        return await self._send(
            group, text, quote, attachments, mentions, view_once=view_once, timestamp=timestamp
        )

    async def _send(
        self,
        group: SandboxGroup | None,
        text: str | None,
        quote: Received | QuoteRef | None,
        attachments: Sequence[AttachmentArg],
        mentions: Sequence[Mentioned],
        *,
        view_once: bool,
        timestamp: int | None,
    ) -> int:
        files = [self._store(item) for item in attachments]
        if text is not None and len(text.encode("utf-8")) > LONG_TEXT_BYTES:
            data = text.encode("utf-8")
            long_id = self._network.store_attachment(data, "text/x-signal-plain", None)
            files.append(
                frames.attachment(
                    content_type="text/x-signal-plain",
                    filename=None,
                    attachment_id=long_id,
                    size=len(data),
                )
            )
        quote_obj = _quote(quote)
        mention_objs = [frames.mention(p.source, start, length) for p, start, length in mentions]
        expires = group.expiration_seconds if group else self.disappearing_seconds

        def build(ts: int) -> Json:
            for item in files:
                if item.get("uploadTimestamp") is None:
                    item["uploadTimestamp"] = ts - 800
            return {
                "dataMessage": frames.data_message(
                    ts,
                    text,
                    expires_in_seconds=expires,
                    view_once=view_once,
                    quote=quote_obj,
                    mentions=mention_objs,
                    attachments=files,
                    group_info=_group_info(group),
                )
            }

        return await self._network.phone_emit(self, build, group=group, timestamp=timestamp)

    def _store(self, item: AttachmentArg) -> Json:
        if not isinstance(item, OutgoingAttachment):
            data, content_type, filename = item
            item = OutgoingAttachment(data=data, content_type=content_type, filename=filename)
        attachment_id = self._network.store_attachment(item.data, item.content_type, item.filename)
        return frames.attachment(
            content_type=item.content_type,
            filename=item.filename,
            attachment_id=attachment_id,
            size=len(item.data),
            width=item.width,
            height=item.height,
            caption=item.caption,
            voice_note=item.voice_note,
        )

    async def react(
        self,
        emoji: str,
        target: Received | QuoteRef,
        *,
        remove: bool = False,
        group: SandboxGroup | None = None,
        timestamp: int | None = None,
    ) -> int:
        """React to ``target`` (a received message, by default in its own chat)."""
        author = target.sender if isinstance(target, Received) else target.author
        chat = group if group is not None else self._group_of(target)

        def build(ts: int) -> Json:
            return {
                "dataMessage": frames.data_message(
                    ts,
                    None,
                    expires_in_seconds=self._expiry(chat),
                    reaction=frames.reaction(emoji, author, target.timestamp, remove=remove),
                    group_info=_group_info(chat),
                )
            }

        return await self._network.phone_emit(self, build, group=chat, timestamp=timestamp)

    async def remote_delete(
        self,
        target_timestamp: int,
        *,
        group: SandboxGroup | None = None,
        timestamp: int | None = None,
    ) -> int:
        """Delete one of this phone's earlier messages (by its timestamp)."""

        def build(ts: int) -> Json:
            return {
                "dataMessage": frames.data_message(
                    ts,
                    None,
                    expires_in_seconds=self._expiry(group),
                    remote_delete=frames.remote_delete(target_timestamp),
                    group_info=_group_info(group),
                )
            }

        return await self._network.phone_emit(self, build, group=group, timestamp=timestamp)

    async def edit(
        self,
        target_timestamp: int,
        text: str,
        *,
        group: SandboxGroup | None = None,
        timestamp: int | None = None,
    ) -> int:
        """Edit one of this phone's earlier messages; returns the edit's own timestamp."""

        def build(ts: int) -> Json:
            inner = frames.data_message(
                ts, text, expires_in_seconds=self._expiry(group), group_info=_group_info(group)
            )
            return {"editMessage": frames.edit_message(target_timestamp, inner)}

        return await self._network.phone_emit(self, build, group=group, timestamp=timestamp)

    async def start_typing(
        self, group: SandboxGroup | None = None, *, timestamp: int | None = None
    ) -> int:
        """Typing indicator STARTED (1:1 or in ``group``)."""
        return await self._typing("STARTED", group, timestamp)

    async def stop_typing(
        self, group: SandboxGroup | None = None, *, timestamp: int | None = None
    ) -> int:
        """Typing indicator STOPPED (1:1 or in ``group``)."""
        return await self._typing("STOPPED", group, timestamp)

    async def _typing(
        self, action: frames.TypingAction, group: SandboxGroup | None, timestamp: int | None
    ) -> int:
        internal = None if group is None else group.internal_id

        def build(ts: int) -> Json:
            return {"typingMessage": frames.typing_message(action, ts, internal)}

        return await self._network.phone_emit(self, build, group=group, timestamp=timestamp)

    async def set_disappearing(self, seconds: int, *, timestamp: int | None = None) -> int:
        """Set the 1:1 disappearing-message timer (an expiration-update message)."""
        self.disappearing_seconds = seconds

        def build(ts: int) -> Json:
            return {
                "dataMessage": frames.data_message(
                    ts, None, expires_in_seconds=seconds, is_expiration_update=True
                )
            }

        return await self._network.phone_emit(self, build, group=None, timestamp=timestamp)

    async def send_receipt(
        self,
        timestamps: Sequence[int],
        kind: Literal["delivery", "read", "viewed"] = "delivery",
        *,
        timestamp: int | None = None,
    ) -> int:
        """A receipt for the bot's messages with these timestamps."""

        def build(ts: int) -> Json:
            return {"receiptMessage": frames.receipt_message(ts, list(timestamps), kind=kind)}

        return await self._network.phone_emit(self, build, group=None, timestamp=timestamp)

    def _group_of(self, target: Received | QuoteRef) -> SandboxGroup | None:
        if isinstance(target, Received) and target.group_id is not None:
            return self._network.find_group(target.group_id)
        return None

    def _expiry(self, group: SandboxGroup | None) -> int:
        return group.expiration_seconds if group else self.disappearing_seconds

    # -- receiving -----------------------------------------------------------------------
    def deliver(self, item: Received) -> None:
        """Called by the sandbox when the bot's message reaches this phone."""
        self.inbox.append(item)
        self._arrived.set()

    @property
    def messages(self) -> list[Received]:
        """The inbox without reactions, deletions, typing indicators and receipts."""
        return [item for item in self.inbox if item.kind == "message"]

    async def wait_for(
        self,
        predicate: Callable[[Received], bool] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - test API takes a deadline
        kind: ReceivedKind | None = "message",
    ) -> Received:
        """The first inbox item of ``kind`` (None: any) matching ``predicate``.

        Items already in the inbox count; each item is returned at most once across calls.
        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                self._arrived.clear()
                found = self._take(predicate, kind)
                if found is not None:
                    return found
                await self._arrived.wait()

    def _take(
        self, predicate: Callable[[Received], bool] | None, kind: ReceivedKind | None
    ) -> Received | None:
        while self._first_open in self._taken:
            self._taken.discard(self._first_open)
            self._first_open += 1
        for index in range(self._first_open, len(self.inbox)):
            item = self.inbox[index]
            if index in self._taken or (kind is not None and item.kind != kind):
                continue
            if predicate is None or predicate(item):
                self._taken.add(index)
                return item
        return None


def _quote(target: Received | QuoteRef | None) -> Json | None:
    if target is None:
        return None
    if isinstance(target, Received):
        return frames.quote(target.timestamp, target.sender, target.text)
    return frames.quote(target.timestamp, target.author, target.text)


def _group_info(group: SandboxGroup | None) -> Json | None:
    if group is None:
        return None
    return frames.group_info(group.internal_id, group.name, group.revision, "DELIVER")


__all__ = [
    "OutgoingAttachment",
    "Phone",
    "PhoneNetwork",
    "QuoteRef",
    "Received",
    "ReceivedAttachment",
    "ReceivedMention",
]
