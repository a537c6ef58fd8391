"""The Signal side of relay: signalbot 2.2.1 for REST calls, classified failures.

relay owns the receive loop (see `receiver.py`), so signalbot's own producer is never
started: we use its public action API (`bot.general`, `bot.groups`, `bot.messages`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
from packaging.version import InvalidVersion, Version
from pydantic import ValidationError
from signalbot import LOGGER_NAME, Config, SendMessage, SignalBot, SignalBotError
from signalbot.client import ConnectionMode
from signalbot.messages import SentMessage

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
    def __init__(self, failure: SendFailure, status: int | None = None,
                 late: asyncio.Future[Sent | None] | None = None) -> None:
        super().__init__(failure.value)
        self.failure = failure
        self.status = status
        # A send that timed out is left open (F19): it may still be delivered, and `late`
        # resolves to its result if the REST API answers after all (None if it never does).
        self.late = late


class ServiceCheckError(Exception):
    """The REST API is unusable for relay; the message says what to fix."""


@dataclass(frozen=True)
class Sent:
    timestamp: int | None  # None when the server accepted it but the reply was unreadable
    # group sends answer 201 even when some members did not get it: (member, failure)
    undelivered: tuple[tuple[str, SendFailure], ...] = ()


_REASONS = {
    "IDENTITY_FAILURE": SendFailure.UNTRUSTED,
    "UNREGISTERED_FAILURE": SendFailure.UNREGISTERED,
    "RATE_LIMIT_FAILURE": SendFailure.RATE_LIMITED,
}


class UndeliveredCapture(logging.Handler):
    """signalbot 2.2.1 reports per-recipient failures of a 201 send only as a WARNING with
    the fixed format below; this handler keeps them, structured, by send timestamp. It
    reads the record's arguments and never formats the message."""

    FORMAT = "[Bot] Message %s not delivered to %s: %s"

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.failures: dict[str, list[tuple[str, str]]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if record.msg == self.FORMAT and isinstance(args, tuple) and len(args) == 3:
            self.failures.setdefault(str(args[0]), []).append((str(args[1]), str(args[2])))

    def take(self, timestamp: int) -> tuple[tuple[str, SendFailure], ...]:
        found = self.failures.pop(str(timestamp), [])
        return tuple((who, _REASONS.get(reason, SendFailure.UNAVAILABLE))
                     for who, reason in found)

    @classmethod
    def install(cls) -> UndeliveredCapture:
        logger = logging.getLogger(LOGGER_NAME)
        for handler in logger.handlers:
            if isinstance(handler, cls):
                return handler
        handler = cls()
        logger.addHandler(handler)
        return handler


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
        self._undelivered = UndeliveredCapture.install()
        self._diagnostics: aiohttp.ClientSession | None = None

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
        request = asyncio.ensure_future(self.bot.messages.send(message, recipient))
        try:
            await asyncio.wait({request}, timeout=self._send_timeout)
        except asyncio.CancelledError:
            request.cancel()
            raise
        if not request.done():
            # A hung /v2/send has usually been sent by signal-cli already (WIRE F19): do not
            # cancel it, so that a late answer can still be recorded instead of re-sending.
            raise SendError(SendFailure.UNAVAILABLE, late=asyncio.ensure_future(
                self._late(request)))
        try:
            sent = request.result()
        except TimeoutError:
            raise SendError(SendFailure.UNAVAILABLE) from None
        except ValidationError:
            # F21: an old REST API answered with an object after delivering the message.
            return Sent(None)
        except SignalBotError as exc:
            error = _classify(exc)
            if error.status != 400 or recipient.startswith("group."):
                raise error from None
            return await self._diagnose(recipient, message)
        return Sent(sent.timestamp, self._undelivered.take(sent.timestamp))

    async def _late(self, request: asyncio.Future[SentMessage]) -> Sent | None:
        """The result of a timed-out send if it is answered after all; errors are None."""
        try:
            sent = await request
        except Exception:
            return None
        return Sent(sent.timestamp, self._undelivered.take(sent.timestamp))

    async def _diagnose(self, recipient: str, message: SendMessage) -> Sent:
        """signalbot drops the body of an error response. A 400 on a 1:1 send means nothing
        was delivered, so sending the same request once more, ourselves, cannot duplicate
        anything, and its body tells an untrusted key from an unregistered number."""
        if self._diagnostics is None:
            self._diagnostics = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._send_timeout))
        payload = (await message.to_generated(self.number, [recipient])).model_dump_json(
            exclude_none=True, by_alias=True)
        scheme = "https" if self.use_https else "http"
        try:
            async with self._diagnostics.post(f"{scheme}://{self.service}/v2/send",
                                              data=payload) as resp:
                body = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            raise SendError(SendFailure.UNAVAILABLE) from None
        if status == 201:
            return Sent(_first_timestamp(body))
        raise SendError(_failure_from_body(status, body), status)

    async def close(self) -> None:
        if self._diagnostics is not None:
            await self._diagnostics.close()
        await self.bot.close()


def _first_timestamp(body: str) -> int | None:
    try:
        data = json.loads(body)
        first = data[0] if isinstance(data, list) else data
        return int(first["timestamp"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _failure_from_body(status: int, body: str) -> SendFailure:
    """Classify by the REST API's fixed error texts (WIRE.md §3.4); the text is not kept."""
    if status == 429:
        return SendFailure.RATE_LIMITED
    if status >= 500:
        return SendFailure.UNAVAILABLE
    try:
        text = str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        text = ""
    if "untrusted" in text:
        return SendFailure.UNTRUSTED
    if "is not registered" in text or text == "Failed to send message":
        return SendFailure.UNREGISTERED
    return SendFailure.REJECTED


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
