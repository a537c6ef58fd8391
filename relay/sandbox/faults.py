"""Fault switches (WIRE §9). Defaults match the real server; every fault is opt-in.

Each setter arms one named switch (arming it again replaces it). ``times`` is how many
matching events it affects (``None`` = persistent until :meth:`Faults.clear`). Send
faults take ``target`` (a phone, a group, or a number/UUID/group id string) and then
only affect sends that include that recipient; without ``target`` they hit any send.

Receive path
    ``drop_if_busy`` (a frame is lost when the reader is still writing the previous one),
    ``drop_next(n)`` / ``start_race(n)`` (lost before reaching the REST API, F3),
    ``duplicate`` (deliver the next frame twice), ``reorder`` (swap the next two frames),
    ``delay(seconds)``, ``burst(n)`` (hold n frames, then release them back to back),
    ``legacy_frames`` (no ``isVoiceNote`` / no ``revision`` / no server timestamps),
    ``ws_silent_stall(no_pong=False)`` (frames vanish, no pings; optionally no pongs),
    ``untrusted_identity(phone)`` (see :meth:`Faults.untrusted_identity`), and the
    immediate actions ``await ws_abort()``, ``await ws_close(code)``,
    ``await error_frame(text)``, ``await rest_down(seconds)`` / ``await rest_up()``.
Send path (``POST /v2/send``)
    ``send_429(tokens)``, ``send_400_untrusted``, ``send_400_unregistered(variant)``,
    ``send_partial_errors(reason)``, ``send_legacy_object``, ``send_hang``,
    ``send_slow(seconds)``, ``upload_413``, ``no_profile_name``, ``group_not_member``,
    ``group_send_not_allowed``, ``group_not_found``.
Account setup
    ``captcha(required)`` (default: required, as Signal nowadays),
    ``registration_lock(pin)`` (verify needs ``pin``).
Control
    ``attachment_404``, ``attachment_500``, ``about_version(v)``, ``about_mode(m)``,
    ``health_down(status)``, ``groups_list_400``, ``groups_get_404``,
    ``group_entry_missing_member``, ``webhook_slow(seconds)``, ``webhook_down(status)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from relay.sandbox.ids import is_uuid
from relay.sandbox.phones import Phone
from relay.sandbox.state import SandboxGroup

FailureReason = Literal[
    "NETWORK_FAILURE",
    "UNREGISTERED_FAILURE",
    "IDENTITY_FAILURE",
    "RATE_LIMIT_FAILURE",
    "INVALID_PRE_KEY_FAILURE",
]
Target = Phone | SandboxGroup | str | None


@dataclass
class Switch:
    """An armed fault. ``remaining`` None = persistent; ``targets`` empty = any recipient."""

    remaining: int | None
    targets: frozenset[str] = frozenset()
    value: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def matches(self, identifiers: Iterable[str]) -> bool:
        if not self.targets:
            return True
        return any(_norm(i) in self.targets for i in identifiers)


class FaultActions(Protocol):
    """Immediate actions the sandbox performs for :class:`Faults`."""

    async def abort_subscribers(self) -> int: ...

    async def close_subscribers(self, code: int | None) -> int: ...

    async def push_error(self, message: str) -> None: ...

    async def go_down(self, seconds: float | None) -> None: ...

    async def go_up(self) -> None: ...

    def mark_untrusted(self, phone: Phone) -> None: ...


class Faults:
    """All fault switches of one sandbox (``sandbox.faults``)."""

    def __init__(self, actions: FaultActions) -> None:
        self._actions = actions
        self._switches: dict[str, Switch] = {}
        self._hang_release = asyncio.Event()
        self._hang_release.set()

    # -- generic -------------------------------------------------------------------------
    def arm(
        self,
        name: str,
        *,
        times: int | None = 1,
        target: Target = None,
        value: Any = None,
        **extra: Any,
    ) -> None:
        """Arm switch ``name`` (the typed setters below are the documented interface)."""
        self._switches[name] = Switch(
            remaining=times, targets=_targets(target), value=value, extra=dict(extra)
        )

    def clear(self, name: str | None = None) -> None:
        """Disarm one switch, or all of them. Clearing ``send_hang`` releases hung sends."""
        if name is None:
            self._switches.clear()
        else:
            self._switches.pop(name, None)
        if "send_hang" not in self._switches:
            self._hang_release.set()

    def active(self, name: str) -> bool:
        """True while switch ``name`` is armed."""
        return name in self._switches

    def armed(self) -> list[str]:
        """Names of the armed switches."""
        return sorted(self._switches)

    def peek(self, name: str, identifiers: Iterable[str] = ()) -> Switch | None:
        """The armed switch if it applies, without using up a shot."""
        switch = self._switches.get(name)
        if switch is None or not switch.matches(identifiers):
            return None
        return switch

    def take(self, name: str, identifiers: Iterable[str] = ()) -> Switch | None:
        """The armed switch if it applies, using up one shot."""
        switch = self.peek(name, identifiers)
        if switch is None:
            return None
        if switch.remaining is not None:
            switch.remaining -= 1
            if switch.remaining <= 0:
                self._switches.pop(name, None)
        return switch

    async def wait_hang_released(self) -> None:
        """Block while ``send_hang`` is armed (returns when cleared or the sandbox stops)."""
        await self._hang_release.wait()

    def release_hangs(self) -> None:
        """Release hung sends (used on stop)."""
        self._hang_release.set()

    # -- receive path ----------------------------------------------------------------------
    def drop_if_busy(self, write_delay: float = 0.0, *, times: int | None = None) -> None:
        """Drop a frame when its reader is still writing the previous one (F2), like the
        REST API's unbuffered channel. ``write_delay`` makes every write take that long
        (a slow reader), widening the window."""
        self.arm("drop_if_busy", times=times, value=write_delay)

    def drop_next(self, n: int = 1) -> None:
        """Lose the next ``n`` frames before the REST API sees them (F3: no webhook either)."""
        self.arm("drop_next", times=n)

    def start_race(self, n: int = 1) -> None:
        """F3 by its WIRE name: same as :meth:`drop_next`."""
        self.drop_next(n)

    def duplicate(self, *, times: int = 1) -> None:
        """Deliver each of the next ``times`` frames twice (F17)."""
        self.arm("duplicate", times=times)

    def reorder(self) -> None:
        """Hold the next frame and deliver it after the one that follows (F18)."""
        self.arm("reorder", times=1)

    def delay(self, seconds: float, *, times: int | None = None) -> None:
        """Delay fan-out of frames by ``seconds``."""
        self.arm("delay", times=times, value=seconds)

    def burst(self, n: int) -> None:
        """Hold the next ``n`` frames, then release them back to back."""
        self.arm("burst", times=None, value=n)

    def legacy_frames(
        self,
        *,
        no_voice_note: bool = True,
        no_revision: bool = True,
        no_server_timestamps: bool = False,
        times: int | None = 1,
    ) -> None:
        """Emit frames in an older signal-cli's shape (F12 poison frames)."""
        self.arm(
            "legacy_frames",
            times=times,
            no_voice_note=no_voice_note,
            no_revision=no_revision,
            no_server_timestamps=no_server_timestamps,
        )

    def ws_silent_stall(self, *, no_pong: bool = False) -> None:
        """Half-open TCP (F6): frames and pings stop; ``no_pong`` also ignores client pings."""
        self.arm("ws_silent_stall", times=None, value=no_pong)

    def untrusted_identity(self, phone: Phone) -> None:
        """``phone`` reinstalled Signal (F10). Until ``PUT /v1/identities/{n}/trust/{who}``
        its messages arrive as content-less envelopes with the top-level ``exception``
        ``Untrusted identity: <ACI>``, and sends to it fail (1:1: 400 untrusted; group:
        ``IDENTITY_FAILURE``). Trusting re-delivers the held messages with their original
        timestamps."""
        self._actions.mark_untrusted(phone)

    async def ws_abort(self) -> int:
        """Drop every receive socket's TCP without a close frame (client sees 1006, F4)."""
        return await self._actions.abort_subscribers()

    async def ws_close(self, code: int | None = 1000) -> int:
        """Close every receive socket cleanly with ``code`` (None: close frame without code)."""
        return await self._actions.close_subscribers(code)

    async def error_frame(self, message: str = "some error from signal-cli") -> None:
        """Send ``{"error": message}`` to every subscriber (F12)."""
        await self._actions.push_error(message)

    async def rest_down(self, seconds: float | None = None) -> None:
        """The REST API goes away: sockets aborted, port closed (connection refused),
        requests on kept-alive connections aborted. Back after ``seconds`` or ``rest_up``."""
        await self._actions.go_down(seconds)

    async def rest_up(self) -> None:
        """Undo :meth:`rest_down` (same port)."""
        await self._actions.go_up()

    # -- send path -------------------------------------------------------------------------
    def send_429(
        self, tokens: Sequence[str] | None = None, *, times: int | None = 1, target: Target = None
    ) -> None:
        """Rate limit (F8): 1:1 → 429 with ``challenge_tokens`` (default ``[""]``);
        group → 201 with ``RATE_LIMIT_FAILURE``."""
        self.arm("send_429", times=times, target=target, value=list(tokens or [""]))

    def send_400_untrusted(self, *, times: int | None = 1, target: Target = None) -> None:
        """Untrusted recipient (F9): 1:1 → 400; group → 201 with ``IDENTITY_FAILURE``."""
        self.arm("send_400_untrusted", times=times, target=target)

    def send_400_unregistered(
        self,
        variant: Literal["not_registered", "failed"] = "not_registered",
        *,
        times: int | None = 1,
        target: Target = None,
    ) -> None:
        """Unregistered recipient (F11): ``The user … is not registered.`` or
        ``Failed to send message``; group → 201 with ``UNREGISTERED_FAILURE``."""
        self.arm("send_400_unregistered", times=times, target=target, value=variant)

    def send_partial_errors(
        self,
        reason: FailureReason = "IDENTITY_FAILURE",
        *,
        times: int | None = 1,
        target: Target = None,
    ) -> None:
        """201 with ``errors.recipients`` for the target (or every) recipient; those
        recipients do not get the message."""
        self.arm("send_partial_errors", times=times, target=target, value=reason)

    def send_legacy_object(self, *, times: int | None = 1) -> None:
        """Answer with the pre-0.101 object ``{"timestamp":"…"}`` after delivering (F21)."""
        self.arm("send_legacy_object", times=times)

    def send_hang(self) -> None:
        """``/v2/send`` never answers until :meth:`clear` or stop (F19)."""
        self.arm("send_hang", times=None)
        self._hang_release.clear()

    def send_slow(self, seconds: float, *, times: int | None = None) -> None:
        """``/v2/send`` answers after ``seconds``."""
        self.arm("send_slow", times=times, value=seconds)

    def upload_413(self, *, times: int | None = 1) -> None:
        """A send with attachments fails with signal-cli's 413 upload error (F14)."""
        self.arm("upload_413", times=times)

    def no_profile_name(self, *, times: int | None = 1) -> None:
        """Group sends fail as when the account has no profile name (F16)."""
        self.arm("no_profile_name", times=times)

    def group_not_member(self, group: SandboxGroup | None = None, *, times: int | None = 1) -> None:
        """Group sends fail with ``User is not a member in group: …`` (F15)."""
        self.arm("group_not_member", times=times, target=group)

    def group_send_not_allowed(
        self, group: SandboxGroup | None = None, *, times: int | None = 1
    ) -> None:
        """Group sends fail with ``User is not allowed to send message to group: …`` (F15)."""
        self.arm("group_send_not_allowed", times=times, target=group)

    def group_not_found(self, group: SandboxGroup | None = None, *, times: int | None = 1) -> None:
        """Group sends fail with ``Group not found: …``."""
        self.arm("group_not_found", times=times, target=group)

    # -- account setup -------------------------------------------------------------------
    def captcha(self, required: bool = True) -> None:
        """``POST /v1/register`` without a captcha fails (``required``) or succeeds, until
        cleared (then the sandbox's ``account.captcha_required`` applies, default True)."""
        self.arm("captcha", times=None, value=required)

    def registration_lock(self, pin: str) -> None:
        """The number is locked with ``pin``: verify without it (or with a wrong one)
        fails with signal-cli's text; with it, it succeeds. Persistent until cleared."""
        self.arm("registration_lock", times=None, value=pin)

    # -- control ---------------------------------------------------------------------------
    def attachment_404(self, *, times: int | None = 1) -> None:
        """``GET /v1/attachments/{id}`` → 404 ``No attachment with that name found`` (F13)."""
        self.arm("attachment_404", times=times)

    def attachment_500(self, *, times: int | None = 1) -> None:
        """``GET /v1/attachments/{id}`` → 500 ``Couldn't read attachment …`` (F13)."""
        self.arm("attachment_500", times=times)

    def about_version(self, version: str) -> None:
        """``/v1/about`` reports ``version`` (e.g. ``0.100`` or ``unset``) until cleared."""
        self.arm("about_version", times=None, value=version)

    def about_mode(self, mode: str) -> None:
        """``/v1/about`` reports ``mode`` (e.g. ``normal``) until cleared."""
        self.arm("about_mode", times=None, value=mode)

    def health_down(self, status: int | None = 503, *, times: int | None = None) -> None:
        """``/v1/health`` answers ``status`` (None: the connection is dropped)."""
        self.arm("health_down", times=times, value=status)

    def groups_list_400(
        self, text: str = "Specified account does not exist", *, times: int | None = 1
    ) -> None:
        """``GET /v1/groups/{n}`` → 400 with ``text``."""
        self.arm("groups_list_400", times=times, value=text)

    def groups_get_404(self, *, times: int | None = 1) -> None:
        """``GET /v1/groups/{n}/{gid}`` → 404 ``No group with that id found``."""
        self.arm("groups_get_404", times=times)

    def group_entry_missing_member(self, *, times: int | None = 1) -> None:
        """Group entries lack the ``member`` key (pre-``ede08b6`` API)."""
        self.arm("group_entry_missing_member", times=times)

    def webhook_slow(self, seconds: float, *, times: int | None = None) -> None:
        """Each webhook POST takes ``seconds`` longer (stalls delivery and REST, F20)."""
        self.arm("webhook_slow", times=times, value=seconds)

    def webhook_down(self, status: int | None = None, *, times: int | None = None) -> None:
        """Webhook POSTs fail (``status`` as the sink's answer; None: connection refused)."""
        self.arm("webhook_down", times=times, value=status)


def _norm(identifier: str) -> str:
    return identifier.lower() if is_uuid(identifier) else identifier


def _targets(target: Target) -> frozenset[str]:
    if target is None:
        return frozenset()
    if isinstance(target, Phone):
        return frozenset(_norm(i) for i in target.identifiers())
    if isinstance(target, SandboxGroup):
        return frozenset({target.id, target.internal_id})
    return frozenset({_norm(target)})
