"""The Signal side of relay: signalbot 2.2.1 for REST calls, classified failures.

relay owns the receive loop (see `receiver.py`), so signalbot's own producer is never
started: we use its public action API (`bot.general`, `bot.groups`, `bot.messages`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
from packaging.version import InvalidVersion, Version
from pydantic import ValidationError
from signalbot import Config, SendMessage, SignalBot, SignalBotError
from signalbot.client import ConnectionMode

from relay.logs import quiet_signalbot

MIN_REST_VERSION = Version("0.101.0")


class SendFailure(StrEnum):
    """How a send failed; values are stored in `outbox.error_class`."""

    RATE_LIMITED = "rate_limited"
    UNTRUSTED = "untrusted"
    UNREGISTERED = "unregistered"
    REJECTED = "rejected"  # other 4xx: the request itself is wrong; retrying will not help
    UNAVAILABLE = "unavailable"  # network, 5xx, timeout
    UNKNOWN_GROUP = "unknown_group"


class SendError(Exception):
    def __init__(self, failure: SendFailure, status: int | None = None) -> None:
        super().__init__(failure.value)
        self.failure = failure
        self.status = status


class ServiceCheckError(Exception):
    """The REST API is unusable for relay; the message says what to fix."""


@dataclass(frozen=True)
class Sent:
    timestamp: int | None  # None when the server accepted it but the reply was unreadable


def _status_of(exc: BaseException) -> int | None:
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientResponseError):
        return cause.status
    return None


class SignalGateway:
    def __init__(
        self, *, service: str, number: str, use_https: bool, send_timeout: float
    ) -> None:
        mode = ConnectionMode.HTTPS_ONLY if use_https else ConnectionMode.HTTP_ONLY
        self.service = service
        self.number = number
        self.use_https = use_https
        self._send_timeout = send_timeout
        self.bot = SignalBot(
            Config(
                phone_number=number,
                signal_service=service,
                connection_mode=mode,
                storage={"type": "in-memory"},
                download_attachments=False,
            )
        )
        quiet_signalbot()

    @property
    def receive_url(self) -> str:
        scheme = "wss" if self.use_https else "ws"
        return f"{scheme}://{self.service}/v1/receive/{self.number}"

    async def check(self) -> None:
        """Version, mode and group list, as signalbot's own start-up would check them."""
        try:
            about = await self.bot.general.about()
        except SignalBotError as exc:
            raise ServiceCheckError(
                "cannot reach signal-cli-rest-api at signal.service; is it running and is "
                "the address right?"
            ) from exc
        if about.mode != "json-rpc":
            raise ServiceCheckError(
                f"signal-cli-rest-api runs in mode '{about.mode}'; set MODE=json-rpc"
            )
        if about.version != "unset":
            try:
                too_old = Version(about.version) < MIN_REST_VERSION
            except InvalidVersion:
                too_old = True
            if too_old:
                raise ServiceCheckError(
                    f"signal-cli-rest-api {about.version} is too old; use {MIN_REST_VERSION} "
                    "or newer"
                )
        await self.refresh_groups()

    async def refresh_groups(self) -> None:
        await self.bot.groups.refresh()

    def group_members(self, public_id: str) -> list[str] | None:
        """Members and pending invites of a group (numbers or uuids), None if unknown."""
        for entry in self.bot.groups:
            if entry.id == public_id:
                return [*entry.members, *entry.pending_invites, *entry.pending_requests]
        return None

    async def send(
        self,
        recipient: str,
        text: str,
        *,
        quote_timestamp: int | None = None,
        quote_author: str | None = None,
    ) -> Sent:
        message = SendMessage(
            text=text, quote_timestamp=quote_timestamp, quote_author=quote_author
        )
        try:
            sent = await asyncio.wait_for(
                self.bot.messages.send(message, recipient), timeout=self._send_timeout
            )
        except TimeoutError:
            raise SendError(SendFailure.UNAVAILABLE) from None
        except ValidationError:
            # F21: an old REST API answered with an object after delivering the message.
            return Sent(None)
        except SignalBotError as exc:
            raise _classify(exc) from None
        return Sent(sent.timestamp)

    async def close(self) -> None:
        await self.bot.close()


def _classify(exc: SignalBotError) -> SendError:
    status = _status_of(exc)
    if status is None:
        if str(exc) == "Cannot resolve recipient.":
            return SendError(SendFailure.UNKNOWN_GROUP)
        return SendError(SendFailure.UNAVAILABLE)
    if status == 429:
        return SendError(SendFailure.RATE_LIMITED, status)
    if status >= 500:
        return SendError(SendFailure.UNAVAILABLE, status)
    return SendError(SendFailure.REJECTED, status)
