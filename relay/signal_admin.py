"""A small typed client for signal-cli-rest-api's account-setup routes (WIRE §10).

Register/verify, profile name, registration-lock PIN, device linking and the accounts
list, over aiohttp with a timeout on every call. Failures are :class:`SignalAdminError`
subclasses whose text is one user-facing line naming ``signal.service`` or
``signal.bot_number``, never the number itself (API texts are redacted too).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

CAPTCHA_URL = "https://signalcaptchas.org/registration/generate.html"
_NUMBER = re.compile(r"\+[0-9][0-9 ]{5,}[0-9]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TRIES = re.compile(r"tries remaining: (\d+)")


class SignalAdminError(Exception):
    """A setup call failed; ``str(err)`` is one line for the operator."""


class NotReachableError(SignalAdminError):
    """No connection, a timeout, or something that is not signal-cli-rest-api."""


class ApiError(SignalAdminError):
    """signal-cli-rest-api answered with an error (``detail``: its text, redacted)."""

    def __init__(self, message: str, *, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class AccountMissingError(ApiError):
    """The bot number is not an account on this signal-cli-rest-api."""


class CaptchaRequiredError(ApiError):
    """Signal wants a captcha before it sends a code."""


class CaptchaInvalidError(ApiError):
    """The captcha was not accepted (expired or mangled)."""


class AlreadyRegisteredError(ApiError):
    """The number is already a registered account here."""


class NoPendingRegistrationError(ApiError):
    """Verify without a preceding register."""


class PinRequiredError(ApiError):
    """The number is locked with a registration-lock PIN."""


class PinIncorrectError(ApiError):
    """The PIN was wrong; ``tries_remaining`` when the API says."""

    def __init__(self, message: str, *, status: int, detail: str) -> None:
        super().__init__(message, status=status, detail=detail)
        found = _TRIES.search(detail)
        self.tries_remaining = int(found.group(1)) if found else None


class LinkedDeviceError(ApiError):
    """The command only works on the primary device."""


def redact(text: str, *secrets: str) -> str:
    """``text`` with the given values, phone numbers and UUIDs replaced by placeholders."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<number>")
    text = _NUMBER.sub("<number>", text)
    return _UUID.sub("<uuid>", text)


@dataclass(frozen=True)
class SignalAdmin:
    """Account setup calls for ``number`` on the REST API at ``service`` (host:port)."""

    service: str
    number: str
    scheme: str = "http"
    timeout: float = 30.0

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.service}"

    # -- registration ------------------------------------------------------------------
    async def register(self, *, captcha: str | None = None, voice: bool = False) -> None:
        """Ask Signal to send a verification code (SMS, or a call with ``voice``)."""
        body: dict[str, Any] = {"use_voice": voice}
        if captcha:
            body["captcha"] = captcha.strip()
        await self._call("POST", "/v1/register/{number}", body, ok=(200, 201))

    async def verify(self, code: str, *, pin: str | None = None) -> None:
        """Finish the registration with the code Signal sent (and the PIN if locked)."""
        body = {"pin": pin} if pin else None
        await self._call("POST", "/v1/register/{number}/verify/" + code, body, ok=(200, 201))

    # -- account -----------------------------------------------------------------------
    async def accounts(self) -> list[str]:
        """The accounts this REST API has (numbers; keep them out of output)."""
        value = await self._call("GET", "/v1/accounts", None, ok=(200,))
        if not isinstance(value, list):
            raise self._not_api("/v1/accounts")
        return [str(item) for item in value]

    async def is_registered(self) -> bool:
        """Whether ``number`` is an account (registered or linked) here."""
        return self.number in await self.accounts()

    async def set_profile_name(self, name: str) -> None:
        """``PUT /v1/profiles/{number}`` (groups need a profile name, WIRE F16)."""
        await self._call("PUT", "/v1/profiles/{number}", {"name": name}, ok=(200, 204))

    async def profile_name(self) -> str:
        """The account's own profile given name ("" when none is set)."""
        value = await self._call(
            "GET", "/v1/contacts/{number}/{number}?all_recipients=true", None, ok=(200,)
        )
        profile = value.get("profile") if isinstance(value, dict) else None
        if not isinstance(profile, dict):
            raise self._not_api("/v1/contacts/{number}/{number}")
        return str(profile.get("given_name") or "")

    async def set_pin(self, pin: str) -> None:
        """Set the registration-lock PIN."""
        await self._call("POST", "/v1/accounts/{number}/pin", {"pin": pin}, ok=(200, 201, 204))

    async def remove_pin(self) -> None:
        """Remove the registration-lock PIN."""
        await self._call("DELETE", "/v1/accounts/{number}/pin", None, ok=(200, 204))

    # -- linking -----------------------------------------------------------------------
    async def link_uri(self, device_name: str) -> str:
        """Start a device link; the ``sgnl://linkdevice?…`` URI to scan."""
        value = await self._call(
            "GET", "/v1/qrcodelink/raw", None, ok=(200,), query={"device_name": device_name}
        )
        uri = value.get("device_link_uri") if isinstance(value, dict) else None
        if not isinstance(uri, str) or not uri.startswith("sgnl://"):
            raise self._not_api("/v1/qrcodelink/raw")
        return uri

    async def link_png(self, device_name: str) -> bytes:
        """Start a device link; the QR code as PNG bytes."""
        raw = await self._call(
            "GET",
            "/v1/qrcodelink",
            None,
            ok=(200,),
            query={"device_name": device_name},
            raw=True,
        )
        if not isinstance(raw, bytes) or not raw.startswith(b"\x89PNG"):
            raise self._not_api("/v1/qrcodelink")
        return raw

    async def wait_registered(self, seconds: float, *, interval: float = 1.0) -> bool:
        """Poll ``GET /v1/accounts`` until ``number`` is listed (True) or time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if await self.is_registered():
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(interval, max(deadline - loop.time(), 0.0)))

    # -- transport ---------------------------------------------------------------------
    async def _call(
        self,
        method: str,
        template: str,
        body: Mapping[str, Any] | None,
        *,
        ok: tuple[int, ...],
        query: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """One request; ``template`` names the route with ``{number}`` (kept for messages)."""
        path = template.replace("{number}", self.number)
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else None
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(
                    method, self.base_url + path, data=data, headers=headers, params=query
                ) as resp,
            ):
                payload = await resp.read()
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            msg = (
                f"signal-cli-rest-api is not reachable at signal.service ({self.service}); "
                "is the container running?"
            )
            raise NotReachableError(msg) from exc
        except TimeoutError as exc:
            msg = (
                f"signal-cli-rest-api at signal.service ({self.service}) did not answer "
                f"within {self.timeout:g} s; check its logs and try again"
            )
            raise NotReachableError(msg) from exc
        except aiohttp.ClientError as exc:
            msg = (
                f"the connection to signal-cli-rest-api at signal.service ({self.service}) "
                f"failed ({type(exc).__name__}); check the address and that it is running"
            )
            raise NotReachableError(msg) from exc
        if status not in ok:
            raise self._error(status, payload, template)
        if raw:
            return payload
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise self._not_api(template) from None

    def _not_api(self, route: str) -> NotReachableError:
        route = route.split("?", 1)[0]
        return NotReachableError(
            f"signal.service ({self.service}) gave an unexpected answer to {route}; "
            "is it signal-cli-rest-api (json-rpc mode, version >= 0.101)?"
        )

    def _error(self, status: int, payload: bytes, route: str) -> SignalAdminError:
        try:
            value = json.loads(payload)
        except ValueError:
            value = None
        text = value.get("error") if isinstance(value, dict) else None
        if not isinstance(text, str):
            if status == 404:  # gin's plain-text "404 page not found"
                return self._not_api(route)
            text = payload.decode("utf-8", errors="replace")[:200]
        detail = redact(text.strip(), self.number)
        first = detail.splitlines()[0] if detail else f"HTTP {status}"
        return _classify(status, detail, first)


_RULES: tuple[tuple[str, type[ApiError], str], ...] = (
    (
        "Specified account does not exist",
        AccountMissingError,
        (
            "signal.bot_number is not an account on this signal-cli-rest-api yet; "
            "run `relay register` (or `relay link`) first"
        ),
    ),
    ("Captcha required", CaptchaRequiredError, "Signal requires a captcha first"),
    (
        "Invalid captcha",
        CaptchaInvalidError,
        "the captcha was not accepted (they expire within minutes); solve a new one",
    ),
    (
        "Account is already registered",
        AlreadyRegisteredError,
        "signal.bot_number is already registered on this signal-cli-rest-api",
    ),
    (
        "No registration verification session",
        NoPendingRegistrationError,
        "no registration is pending for signal.bot_number; run `relay register` first",
    ),
    (
        "locked with a pin",
        PinRequiredError,
        "signal.bot_number is locked with a registration-lock PIN",
    ),
    ("Invalid pin", PinIncorrectError, "the registration-lock PIN is wrong"),
    (
        "doesn't work on linked devices",
        LinkedDeviceError,
        "signal.bot_number is a linked device here; only the primary phone can do this",
    ),
)
"""(text in signal-cli's error, error class, the operator's line)"""


def _classify(status: int, detail: str, first: str) -> ApiError:
    """The typed error for a REST error text (signal-cli's wording, WIRE §10)."""
    for needle, kind, message in _RULES:
        if needle.lower() in detail.lower():
            return kind(message, status=status, detail=detail)
    return ApiError(
        f"signal-cli-rest-api refused the request (HTTP {status}): {first}",
        status=status,
        detail=detail,
    )
