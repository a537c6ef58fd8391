"""Account setup routes (WIRE §10): register/verify, accounts list, PIN, device linking.

Texts are the REST API's (``src/api/api.go``) or signal-cli's (``RegisterCommand``,
``VerifyCommand``, ``SetPinCommand``, ``CommandUtil.getCaptchaRequiredMessage``), passed
through verbatim as the REST API does with JSON-RPC errors. Register and verify decode
their bodies with ``json.Unmarshal`` (an empty body is fine; a bad one answers
``Couldn't process request - invalid request.`` with the period).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from relay.sandbox.account import placeholder_png
from relay.sandbox.rest import (
    BadBodyError,
    Schema,
    decode_body,
    fail,
    json_response,
    no_content,
    read_body,
)

if TYPE_CHECKING:
    from relay.sandbox.server import Sandbox

CAPTCHA_URL = "https://signalcaptchas.org/registration/generate.html"
CAPTCHA_REQUIRED = (
    "Captcha required for verification, use --captcha CAPTCHA\n"
    f"To get the token, go to {CAPTCHA_URL}\n"
    'After solving the captcha, right-click on the "Open Signal" link and copy the link.'
)
CAPTCHA_INVALID = "Invalid captcha given."
ALREADY_REGISTERED = "Failed to register: Account is already registered (IOException)"
NO_SESSION = "Verify error: No registration verification session active"
VERIFY_REGISTERED = "Verify error: Account is already registered"
# signal-cli passes the Signal server's refusal through as an IOException; the exact
# wording for a wrong code is unverified.
WRONG_CODE = "Verify error: Incorrect verification code"
PIN_LOCKED = (
    "Verification failed! This number is locked with a pin. Hours remaining until reset: 167\n"
    "Use '--pin PIN_CODE' to specify the registration lock PIN"
)
PIN_WRONG = "Verification failed! Invalid pin, tries remaining: {tries}"
LINKED_DEVICE = "This command doesn't work on linked devices."
DEVICE_NAME_MISSING = "Please provide a name for the device"
QR_VERSION_ERROR = "The qrcode_version parameter needs to be an integer!"
UNMARSHAL_ERROR = "Couldn't process request - invalid request."
# Not an upstream text: the sandbox emulates a single account.
OTHER_NUMBER = "Failed to register: the sandbox only emulates the bot number (sandbox)"

_GO_ATOI = re.compile(r"[+-]?[0-9]+")
_REGISTER_SCHEMA: Schema = {"use_voice": "bool", "captcha": "str"}
_VERIFY_SCHEMA: Schema = {"pin": "str"}


def add_routes(app: web.Application, sandbox: Sandbox) -> None:
    """Register the account setup routes for ``sandbox``."""
    routes = _AccountRoutes(sandbox)
    router = app.router
    router.add_post("/v1/register/{number}", routes.register)
    router.add_post("/v1/register/{number}/verify/{token}", routes.verify)
    router.add_get("/v1/accounts", routes.list_accounts)
    router.add_post("/v1/accounts/{number}/pin", routes.set_pin)
    router.add_delete("/v1/accounts/{number}/pin", routes.remove_pin)
    router.add_get("/v1/qrcodelink", routes.qrcode_link)
    router.add_get("/v1/qrcodelink/raw", routes.qrcode_link_raw)


async def _unmarshal(request: web.Request, schema: Schema) -> dict[str, Any]:
    """Go ``json.Unmarshal`` of a non-empty body (trailing data is an error too)."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        json.loads(raw)
        return decode_body(raw, schema)
    except (ValueError, BadBodyError) as exc:
        raise fail(400, UNMARSHAL_ERROR) from exc


def _captcha_ok(captcha: str) -> bool:
    """signal-cli strips ``signalcaptcha://``; real tokens start with ``signal-``."""
    return captcha.removeprefix("signalcaptcha://").startswith("signal-")


class _AccountRoutes:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def register(self, request: web.Request) -> web.Response:
        body = await _unmarshal(request, _REGISTER_SCHEMA)
        sandbox = self.sandbox
        account = sandbox.account
        if request.match_info["number"] != sandbox.bot.number:
            raise fail(400, OTHER_NUMBER)
        if account.registered:
            raise fail(400, ALREADY_REGISTERED)
        captcha = body.get("captcha", "")
        if captcha and not _captcha_ok(captcha):
            raise fail(400, CAPTCHA_INVALID)
        if not captcha and sandbox.captcha_required():
            raise fail(400, CAPTCHA_REQUIRED)
        account.code_by_voice = bool(body.get("use_voice"))
        account.new_verification_code()
        return web.Response(status=201)

    async def verify(self, request: web.Request) -> web.Response:
        body = await _unmarshal(request, _VERIFY_SCHEMA)
        sandbox = self.sandbox
        account = sandbox.account
        if request.match_info["number"] != sandbox.bot.number:
            raise fail(400, NO_SESSION)
        if account.registered:
            raise fail(400, VERIFY_REGISTERED)
        if account.verification_code is None:
            raise fail(400, NO_SESSION)
        if request.match_info["token"].replace("-", "") != account.verification_code:
            raise fail(400, WRONG_CODE)
        lock = sandbox.registration_lock_pin()
        if lock is not None:
            pin = body.get("pin", "")
            if not pin:
                raise fail(400, PIN_LOCKED)
            if pin != lock:
                account.pin_tries_left = max(account.pin_tries_left - 1, 0)
                raise fail(400, PIN_WRONG.format(tries=account.pin_tries_left))
        sandbox.complete_registration()
        return web.Response(status=201)

    async def list_accounts(self, _request: web.Request) -> web.Response:
        account = self.sandbox.account
        return json_response(200, [self.sandbox.bot.number] if account.registered else [])

    async def set_pin(self, request: web.Request) -> web.Response:
        body = await read_body(request, {"pin": "str"})
        self.sandbox.check_account(request.match_info["number"])
        if self.sandbox.account.linked:
            raise fail(400, LINKED_DEVICE)
        # signal-cli sends whatever PIN it gets; the REST API does not check it.
        self.sandbox.account.pin = body.get("pin", "")
        return web.Response(status=201)

    async def remove_pin(self, request: web.Request) -> web.Response:
        self.sandbox.check_account(request.match_info["number"])
        if self.sandbox.account.linked:
            raise fail(400, LINKED_DEVICE)
        self.sandbox.account.pin = None
        return no_content()

    async def qrcode_link(self, request: web.Request) -> web.Response:
        device_name = request.query.get("device_name", "")
        if not device_name:
            raise fail(400, DEVICE_NAME_MISSING)
        version = request.query.get("qrcode_version", "")
        if version and _GO_ATOI.fullmatch(version) is None:
            raise fail(400, QR_VERSION_ERROR)
        self.sandbox.account.start_link(device_name)
        return web.Response(status=200, body=placeholder_png(), content_type="image/png")

    async def qrcode_link_raw(self, request: web.Request) -> web.Response:
        device_name = request.query.get("device_name", "")
        if not device_name:
            raise fail(400, DEVICE_NAME_MISSING)
        uri = self.sandbox.account.start_link(device_name)
        return json_response(200, {"device_link_uri": uri})
