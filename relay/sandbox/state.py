"""What the emulated signal-cli knows: the bot account, groups, attachments, logs.

Group entries are rendered in the REST API's Go field order (WIRE §3.3), including the
``edit_group`` mirroring bug (copied from the send-messages permission).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from relay.sandbox.frames import Source
from relay.sandbox.ids import public_group_id

Permission = Literal["every-member", "only-admins"]
PERMISSIONS: tuple[str, ...] = ("every-member", "only-admins")
GROUP_LINK_STATES: tuple[str, ...] = ("enabled", "enabled-with-approval", "disabled")
RequestKind = Literal["rest", "ws", "webhook"]


class Party(Protocol):
    """Anyone who can be in a group: a simulated phone or the bot account."""

    @property
    def aci(self) -> str: ...

    @property
    def visible_number(self) -> str | None:
        """The number as the bot sees it (``None`` when hidden)."""
        ...

    @property
    def source(self) -> Source: ...


@dataclass(eq=False)
class BotAccount:
    """The relay's own registered account (``profile_name`` None: no profile set, F16)."""

    number: str
    aci: str
    profile_name: str | None = "Relay"

    @property
    def visible_number(self) -> str | None:
        return self.number

    @property
    def source(self) -> Source:
        return Source(uuid=self.aci, number=self.number, name=self.profile_name)


def list_id(party: Party) -> str:
    """How the REST API lists a party: the number when known, else the UUID."""
    number = party.visible_number
    return number or party.aci


def expanded_id(party: Party) -> dict[str, str]:
    """``?expand=true`` form: ``{"number","uuid"}`` (Go writes an unknown number as "")."""
    return {"number": party.visible_number or "", "uuid": party.aci}


@dataclass(eq=False)
class SandboxGroup:
    """A Signal group. ``id`` is the public ``group.…`` id, ``internal_id`` the envelope one."""

    internal_id: str
    name: str
    members: list[Party] = field(default_factory=list)
    admins: list[Party] = field(default_factory=list)
    pending: list[Party] = field(default_factory=list)
    requesting: list[Party] = field(default_factory=list)
    description: str = ""
    revision: int = 0
    add_members: Permission = "every-member"
    edit_group: Permission = "every-member"
    send_messages: Permission = "every-member"
    invite_link: str = ""
    expiration_seconds: int = 0
    blocked: bool = False
    known_to_bot: bool = True
    avatar: bytes | None = None

    @property
    def id(self) -> str:
        return public_group_id(self.internal_id)

    def has_member(self, party: Party) -> bool:
        return any(member is party for member in self.members)

    def has_admin(self, party: Party) -> bool:
        return any(admin is party for admin in self.admins)

    def has_pending(self, party: Party) -> bool:
        return any(item is party for item in self.pending)

    def discard(self, party: Party) -> bool:
        """Remove ``party`` from members, admins and pending lists; True if anything changed."""
        before = len(self.members) + len(self.admins) + len(self.pending)
        self.members = [p for p in self.members if p is not party]
        self.admins = [p for p in self.admins if p is not party]
        self.pending = [p for p in self.pending if p is not party]
        return before != len(self.members) + len(self.admins) + len(self.pending)

    def entry(self, bot: Party, *, expand: bool = False) -> dict[str, Any]:
        """The REST API's GroupEntry (or ExpandedGroupEntry), keys in Go order."""
        render = expanded_id if expand else list_id
        return {
            "name": self.name,
            "description": self.description,
            "id": self.id,
            "internal_id": self.internal_id,
            "members": [render(p) for p in self.members],
            "blocked": self.blocked,
            "member": self.has_member(bot),
            "pending_invites": [render(p) for p in self.pending],
            "pending_requests": [render(p) for p in self.requesting],
            "invite_link": self.invite_link,
            "admins": [render(p) for p in self.admins],
            "permissions": {
                "add_members": self.add_members,
                # Emulated upstream bug: edit_group mirrors send_messages.
                "edit_group": self.send_messages,
                "send_messages": self.send_messages,
            },
        }


@dataclass(frozen=True)
class StoredAttachment:
    """A file under signal-cli's ``attachments/`` directory, served by ``/v1/attachments``."""

    attachment_id: str
    data: bytes
    content_type: str
    filename: str | None


@dataclass(frozen=True)
class RequestRecord:
    """One request-log line. ``kind`` is rest, ws (upgrade, status 101) or webhook (outgoing).

    ``status`` 0 means the connection was aborted without a response.
    """

    method: str
    path: str
    status: int
    kind: RequestKind = "rest"

    def line(self) -> str:
        """``"GET /v1/health 204"``: handy for order assertions."""
        return f"{self.method} {self.path} {self.status}"


@dataclass(frozen=True)
class FrameRecord:
    """One receive notification and what became of it.

    ``outcome``: ``delivered`` (``subscribers`` > 0), ``dropped`` (nobody listening, busy
    reader, or lost upstream), ``buffered`` (opt-in backlog) or ``held`` (burst/reorder).
    """

    text: str
    outcome: Literal["delivered", "dropped", "buffered", "held"]
    subscribers: int = 0


@dataclass(frozen=True)
class BotSend:
    """A successful ``POST /v2/send`` as the sandbox recorded it."""

    timestamp: int
    recipients: tuple[str, ...]
    group_id: str | None
    text: str
    quote_timestamp: int | None = None
    quote_author: str | None = None
    quote_message: str | None = None
    attachment_ids: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
