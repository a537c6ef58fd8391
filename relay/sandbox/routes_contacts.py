"""``GET /v1/contacts/{number}[/{uuid}]``: signal-cli's ``listContacts`` through the REST API.

The REST API's ``ListContactsResponse`` is filled from signal-cli's JSON with
``encoding/json``; three of its keys never match signal-cli's (``profileName``,
``blocked`` ← ``isBlocked``, ``messageExpiration`` ← ``messageExpirationTime``), so
``profile_name`` and ``message_expiration`` are always ``""`` and ``blocked`` always
false. A recipient without a fetched profile has Go's zero profile.

Who is listed: the phones the bot has seen (messaged it, got a message from it, were
named through ``PUT /v1/contacts`` or share a group with it); with
``all_recipients=true`` the bot's own account too, whose ``profile.given_name`` is the
name set through ``PUT /v1/profiles`` (empty when none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from relay.sandbox.ids import is_uuid
from relay.sandbox.rest import fail, json_response

if TYPE_CHECKING:
    from relay.sandbox.phones import Phone
    from relay.sandbox.server import Sandbox

ALL_RECIPIENTS_ERROR = (
    "Couldn't process request - all_recipients parameter needs to be either 'true' or 'false'"
)


def add_routes(app: web.Application, sandbox: Sandbox) -> None:
    """Register the contact listing routes for ``sandbox``."""
    routes = _ContactRoutes(sandbox)
    app.router.add_get("/v1/contacts/{number}", routes.list_contacts)
    app.router.add_get("/v1/contacts/{number}/{uuid}", routes.get_contact)


def contact_entry(
    *,
    number: str | None,
    uuid: str,
    name: str = "",
    given_name: str = "",
    profile_given_name: str = "",
    profile_updated: int = 0,
) -> dict[str, Any]:
    """One ``ListContactsResponse`` in Go field order."""
    return {
        "number": number or "",
        "uuid": uuid,
        "name": name,
        "profile_name": "",
        "username": "",
        "color": "",
        "blocked": False,
        "message_expiration": "",
        "note": "",
        "profile": {
            "given_name": profile_given_name,
            "lastname": "",
            "about": "",
            "has_avatar": False,
            "last_updated_timestamp": profile_updated,
        },
        "given_name": given_name,
        "nickname": {"name": "", "given_name": "", "family_name": ""},
    }


class _ContactRoutes:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def _all_recipients(self, request: web.Request) -> bool:
        value = request.query.get("all_recipients", "false")
        if value not in ("true", "false"):
            raise fail(400, ALL_RECIPIENTS_ERROR)
        return value == "true"

    async def list_contacts(self, request: web.Request) -> web.Response:
        all_recipients = self._all_recipients(request)
        self.sandbox.check_account(request.match_info["number"])
        return json_response(200, self._entries(all_recipients=all_recipients))

    async def get_contact(self, request: web.Request) -> web.Response:
        wanted = request.match_info["uuid"]
        all_recipients = self._all_recipients(request)
        self.sandbox.check_account(request.match_info["number"])
        key = wanted.lower() if is_uuid(wanted) else wanted
        for entry in self._entries(all_recipients=all_recipients):
            if key and key in (entry["number"], entry["uuid"]):
                return json_response(200, entry)
        raise fail(404, f"No user with that id ({wanted}) found")

    def _entries(self, *, all_recipients: bool) -> list[dict[str, Any]]:
        sandbox = self.sandbox
        entries: list[dict[str, Any]] = []
        if all_recipients:
            bot = sandbox.bot
            entries.append(
                contact_entry(
                    number=bot.number,
                    uuid=bot.aci,
                    profile_given_name=bot.profile_name or "",
                    profile_updated=sandbox.profile_updated_ms,
                )
            )
        entries.extend(self._phone_entry(phone) for phone in sandbox.seen_phones())
        return entries

    def _phone_entry(self, phone: Phone) -> dict[str, Any]:
        name = self.sandbox.contact_names.get(phone.aci, "")
        profile_name = phone.profile_name if phone.profile_key_known else None
        return contact_entry(
            number=phone.visible_number,
            uuid=phone.aci,
            name=name,
            given_name=name,
            profile_given_name=profile_name or "",
            profile_updated=phone.identity_added if profile_name else 0,
        )
