"""REST routes outside messaging and groups: health, about, attachments, identities,
profiles, contacts, rate-limit challenge, trust-mode configuration (WIRE §3.2, §3.5, §3.6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from relay.sandbox.attachments import sniff_content_type
from relay.sandbox.ids import go_b64decode
from relay.sandbox.rest import error_response, fail, json_response, no_content, read_body

if TYPE_CHECKING:
    from relay.sandbox.server import Sandbox

ATTACHMENT_NOT_FOUND = "No attachment with that name found"
TRUST_EITHER = (
    "Couldn't process request - please either provide a safety number (preferred & more "
    "secure) or set 'trust_all_known_keys' to true"
)
TRUST_NOT_BOTH = (
    "Couldn't process request - please either provide a safety number or set "
    "'trust_all_known_keys' to true. But do not set both parameters at once!"
)
TRUST_FAILED = (
    "Failed to set the trust for this number, make sure the number and the "
    "fingerprint/safety number are correct."
)
TRUST_MODES = ("on-first-use", "always", "never")


def add_routes(app: web.Application, sandbox: Sandbox) -> None:
    """Register this module's routes for ``sandbox``."""
    routes = _MiscRoutes(sandbox)
    router = app.router
    router.add_get("/v1/health", routes.health)
    router.add_get("/v1/about", routes.about)
    router.add_get("/v1/attachments", routes.list_attachments)
    router.add_get("/v1/attachments/{attachment}", routes.get_attachment)
    router.add_delete("/v1/attachments/{attachment}", routes.delete_attachment)
    router.add_get("/v1/identities/{number}", routes.list_identities)
    router.add_put("/v1/identities/{number}/trust/{who}", routes.trust_identity)
    router.add_put("/v1/profiles/{number}", routes.update_profile)
    router.add_put("/v1/contacts/{number}", routes.update_contact)
    router.add_post("/v1/accounts/{number}/rate-limit-challenge", routes.rate_limit_challenge)
    router.add_post("/v1/configuration/{number}/settings", routes.set_trust_mode)


class _MiscRoutes:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def health(self, request: web.Request) -> web.Response:
        down = self.sandbox.faults.take("health_down")
        if down is not None:
            if down.value is None:
                self.sandbox.abort_request(request)
            return web.Response(status=int(down.value))
        return no_content()

    async def about(self, _request: web.Request) -> web.Response:
        return json_response(200, self.sandbox.about())

    async def list_attachments(self, _request: web.Request) -> web.Response:
        return json_response(200, list(self.sandbox.attachments))

    async def get_attachment(self, request: web.Request) -> web.Response:
        faults = self.sandbox.faults
        if faults.take("attachment_404"):
            return error_response(404, ATTACHMENT_NOT_FOUND)
        if faults.take("attachment_500"):
            return error_response(500, "Couldn't read attachment - please try again later")
        stored = self.sandbox.attachments.get(request.match_info["attachment"])
        if stored is None:
            return error_response(404, ATTACHMENT_NOT_FOUND)
        return web.Response(
            status=200,
            body=stored.data,
            headers={"Content-Type": sniff_content_type(stored.data)},
        )

    async def delete_attachment(self, request: web.Request) -> web.Response:
        if self.sandbox.attachments.pop(request.match_info["attachment"], None) is None:
            return error_response(404, ATTACHMENT_NOT_FOUND)
        return no_content()

    async def list_identities(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        if number != self.sandbox.bot.number or not self.sandbox.account.registered:
            return error_response(500, "Specified account does not exist")
        entries = [
            {
                "number": phone.number or "",
                "status": phone.trust,
                "fingerprint": phone.fingerprint,
                "added": str(phone.identity_added),
                "safety_number": phone.safety_number,
                "uuid": phone.aci,
            }
            for phone in self.sandbox.phones.values()
        ]
        return json_response(200, entries)

    async def trust_identity(self, request: web.Request) -> web.Response:
        body = await read_body(
            request, {"verified_safety_number": "str", "trust_all_known_keys": "bool"}
        )
        safety = body.get("verified_safety_number")
        trust_all = body.get("trust_all_known_keys")
        if (safety is None and trust_all is None) or (safety is None and not trust_all):
            raise fail(400, TRUST_EITHER)
        if safety is not None and trust_all:
            raise fail(400, TRUST_NOT_BOTH)
        if safety == "":
            raise fail(400, "Couldn't process request - please provide a valid safety number")
        self.sandbox.check_account(request.match_info["number"])
        who = request.match_info["who"]
        phone = self.sandbox.find_phone(who)
        if phone is None:
            raise fail(400, f"The user {who} is not registered.")
        if safety is not None and _digits(safety) != _digits(phone.safety_number):
            raise fail(400, TRUST_FAILED)
        self.sandbox.trust(phone, verified=safety is not None)
        return no_content()

    async def update_profile(self, request: web.Request) -> web.Response:
        body = await read_body(request, {"name": "str", "base64_avatar": "str", "about": "str"})
        if not body.get("name"):
            raise fail(400, "Couldn't process request - profile name missing")
        avatar = body.get("base64_avatar")
        if avatar and go_b64decode(avatar) is None:
            raise fail(
                400, "Couldn't decode base64 encoded avatar: illegal base64 data at input byte 0"
            )
        self.sandbox.check_account(request.match_info["number"])
        self.sandbox.set_profile_name(body["name"])
        return no_content()

    async def update_contact(self, request: web.Request) -> web.Response:
        body = await read_body(
            request, {"recipient": "str", "name": "str", "expiration_in_seconds": "int"}
        )
        recipient = body.get("recipient", "")
        if not recipient:
            raise fail(400, "Couldn't process request - recipient missing")
        self.sandbox.check_account(request.match_info["number"])
        phone = self.sandbox.find_phone(recipient)
        if phone is not None:
            self.sandbox.mark_seen(phone)
        if body.get("name") and phone is not None:
            self.sandbox.contact_names[phone.aci] = body["name"]
        expiration = body.get("expiration_in_seconds", 0)
        if expiration and phone is not None:  # omitempty: 0 never reaches signal-cli
            phone.disappearing_seconds = expiration
        return no_content()

    async def rate_limit_challenge(self, request: web.Request) -> web.Response:
        body = await read_body(request, {"challenge_token": "str", "captcha": "str"})
        if not body.get("challenge_token"):
            raise fail(400, "Couldn't process request - challenge token missing")
        if not body.get("captcha"):
            raise fail(400, "Couldn't process request - captcha missing")
        self.sandbox.check_account(request.match_info["number"])
        self.sandbox.faults.clear("send_429")
        return no_content()

    async def set_trust_mode(self, request: web.Request) -> web.Response:
        body = await read_body(request, {"trust_mode": "str"})
        if body.get("trust_mode", "") not in TRUST_MODES:
            return error_response(400, "Invalid trust mode")
        return error_response(400, "Couldn't set trust mode")


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())
