"""``/_sandbox/…``: the test API over HTTP, for other processes (or a human with curl).

Not part of the emulated REST API: not logged, not affected by faults. JSON in and out;
phones are named by their sandbox name, groups by public or internal id.

=======================================  ==================================================
``GET /_sandbox/state``                   bot, phones, groups, subscriber count
``POST /_sandbox/phones``                 ``{name, number?, aci?, profile_name?,
                                          hide_number?, profile_key_known?}`` → phone
``POST /_sandbox/phones/{name}/send``     ``{text, group?, quote_timestamp?,
                                          attachments?: [{base64, content_type, filename?}]}``
                                          → ``{"timestamp"}``
``POST /_sandbox/phones/{name}/react``    ``{emoji, target_timestamp, remove?, group?}``
``POST /_sandbox/phones/{name}/typing``   ``{action: "STARTED"|"STOPPED", group?}``
``POST /_sandbox/phones/{name}/delete``   ``{target_timestamp, group?}`` (remote delete)
``GET /_sandbox/phones/{name}/inbox``     what the bot sent the phone (bytes as base64)
``POST /_sandbox/groups``                 ``{name, members?, admins?, bot_member?,
                                          bot_admin?}`` → ``{"id", "internal_id"}``
``POST|DELETE /_sandbox/groups/{id}/members``  ``{phone, by}`` add / remove (UPDATE frame)
``POST /_sandbox/faults/{fault}``         keyword arguments of ``Faults.<fault>``
                                          (``phone``/``target`` by phone name or group id)
``DELETE /_sandbox/faults[/{fault}]``     clear one or all
``GET /_sandbox/requests``                the request log
``POST /_sandbox/raw``                    body text to every reader → ``{"subscribers"}``
``POST /_sandbox/wait-subscriber``        ``?count=1&timeout=5`` → 204, or 504
``GET /_sandbox/verification-code``      ``{"code"}`` of the pending registration, or 404
``GET /_sandbox/account``                 ``{registered, linked, device_name,
                                          profile_name, link_pending, pin_set}``
``POST /_sandbox/link/complete``          ``{profile_name?}``: the phone scanned the link
                                          → 204 (400 when no link is pending)
=======================================  ==================================================
"""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from relay.sandbox.phones import OutgoingAttachment, Phone, QuoteRef
from relay.sandbox.rest import error_response, json_response, no_content
from relay.sandbox.state import SandboxGroup

if TYPE_CHECKING:
    from relay.sandbox.server import Sandbox

PREFIX = "/_sandbox/"
FAULTS = frozenset(
    {
        "drop_if_busy", "drop_next", "start_race", "duplicate", "reorder", "delay", "burst",
        "legacy_frames", "ws_silent_stall", "untrusted_identity", "ws_abort", "ws_close",
        "error_frame", "rest_down", "rest_up", "send_429", "send_400_untrusted",
        "send_400_unregistered", "send_partial_errors", "send_legacy_object", "send_hang",
        "send_slow", "upload_413", "no_profile_name", "group_not_member",
        "group_send_not_allowed", "group_not_found", "attachment_404", "attachment_500",
        "about_version", "about_mode", "health_down", "groups_list_400", "groups_get_404",
        "group_entry_missing_member", "webhook_slow", "webhook_down", "captcha",
        "registration_lock",
    }
)  # fmt: skip


def add_routes(app: web.Application, sandbox: Sandbox) -> None:
    """Register the control routes for ``sandbox``."""
    routes = _Control(sandbox)
    router = app.router
    router.add_get("/_sandbox/state", routes.state)
    router.add_post("/_sandbox/phones", routes.add_phone)
    router.add_post("/_sandbox/phones/{name}/{action}", routes.phone_action)
    router.add_get("/_sandbox/phones/{name}/inbox", routes.inbox)
    router.add_post("/_sandbox/groups", routes.create_group)
    router.add_post("/_sandbox/groups/{group}/members", routes.add_member)
    router.add_delete("/_sandbox/groups/{group}/members", routes.remove_member)
    router.add_post("/_sandbox/faults/{fault}", routes.set_fault)
    router.add_delete("/_sandbox/faults", routes.clear_faults)
    router.add_delete("/_sandbox/faults/{fault}", routes.clear_faults)
    router.add_get("/_sandbox/requests", routes.requests)
    router.add_post("/_sandbox/raw", routes.raw)
    router.add_post("/_sandbox/wait-subscriber", routes.wait_subscriber)
    router.add_get("/_sandbox/verification-code", routes.verification_code)
    router.add_get("/_sandbox/account", routes.account)
    router.add_post("/_sandbox/link/complete", routes.complete_link)


class ControlError(Exception):
    """A bad control request; answered 400 with the message."""


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ControlError("body is not JSON") from exc
    if not isinstance(value, dict):
        raise ControlError("body must be a JSON object")
    return value


class _Control:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def _phone(self, name: str) -> Phone:
        phone = self.sandbox.phones.get(name)
        if phone is None:
            raise ControlError(f"no phone named {name}")
        return phone

    def _group(self, group_id: str | None) -> SandboxGroup | None:
        if group_id is None:
            return None
        group = self.sandbox.find_group(group_id)
        if group is None:
            raise ControlError("no such group")
        return group

    async def _guard(
        self, request: web.Request, action: Callable[[web.Request], Awaitable[web.Response]]
    ) -> web.StreamResponse:
        from relay.sandbox.server import SandboxError  # server imports this module

        try:
            return await action(request)
        except (ControlError, SandboxError) as exc:
            return error_response(400, str(exc))
        except (TypeError, ValueError, KeyError) as exc:
            return error_response(400, f"{type(exc).__name__}: {exc}")

    async def state(self, _request: web.Request) -> web.Response:
        sandbox = self.sandbox
        return json_response(
            200,
            {
                "bot": {"number": sandbox.bot.number, "aci": sandbox.bot.aci},
                "service": sandbox.service,
                "subscribers": sandbox.subscriber_count,
                "phones": [_phone_json(p) for p in sandbox.phones.values()],
                "groups": [g.entry(sandbox.bot) for g in sandbox.groups],
                "faults": sandbox.faults.armed(),
            },
        )

    async def add_phone(self, request: web.Request) -> web.StreamResponse:
        async def run(req: web.Request) -> web.Response:
            body = await _json(req)
            phone = self.sandbox.add_phone(
                str(body["name"]),
                body.get("number"),
                aci=body.get("aci"),
                profile_name=body.get("profile_name"),
                hide_number=bool(body.get("hide_number", False)),
                profile_key_known=bool(body.get("profile_key_known", True)),
            )
            return json_response(201, _phone_json(phone))

        return await self._guard(request, run)

    async def phone_action(self, request: web.Request) -> web.StreamResponse:
        async def run(req: web.Request) -> web.Response:
            phone = self._phone(req.match_info["name"])
            body = await _json(req)
            group = self._group(body.get("group"))
            action = req.match_info["action"]
            if action == "send":
                ts = await self._send(phone, group, body)
            elif action == "react":
                target = QuoteRef(int(body["target_timestamp"]), self.sandbox.bot.source)
                ts = await phone.react(
                    str(body["emoji"]), target, remove=bool(body.get("remove")), group=group
                )
            elif action == "typing":
                started = body.get("action", "STARTED") == "STARTED"
                ts = await (phone.start_typing(group) if started else phone.stop_typing(group))
            elif action == "delete":
                ts = await phone.remote_delete(int(body["target_timestamp"]), group=group)
            else:
                raise ControlError(f"unknown action {action}")
            return json_response(200, {"timestamp": ts})

        return await self._guard(request, run)

    async def _send(self, phone: Phone, group: SandboxGroup | None, body: dict[str, Any]) -> int:
        files = [
            OutgoingAttachment(
                data=base64.b64decode(item["base64"]),
                content_type=str(item.get("content_type", "application/octet-stream")),
                filename=item.get("filename"),
            )
            for item in body.get("attachments", [])
        ]
        quote = None
        if body.get("quote_timestamp") is not None:
            quote = QuoteRef(
                int(body["quote_timestamp"]), self.sandbox.bot.source, body.get("quote_text")
            )
        text = body.get("text")
        if group is None:
            return await phone.send(text, quote=quote, attachments=files)
        return await phone.send_group(group, text, quote=quote, attachments=files)

    async def inbox(self, request: web.Request) -> web.StreamResponse:
        async def run(req: web.Request) -> web.Response:
            phone = self._phone(req.match_info["name"])
            return json_response(200, [_received_json(item) for item in phone.inbox])

        return await self._guard(request, run)

    async def create_group(self, request: web.Request) -> web.StreamResponse:
        async def run(req: web.Request) -> web.Response:
            body = await _json(req)
            group = self.sandbox.create_group(
                str(body["name"]),
                [self._phone(n) for n in body.get("members", [])],
                [self._phone(n) for n in body.get("admins", [])],
                bot_member=bool(body.get("bot_member", True)),
                bot_admin=bool(body.get("bot_admin", True)),
            )
            return json_response(201, {"id": group.id, "internal_id": group.internal_id})

        return await self._guard(request, run)

    async def add_member(self, request: web.Request) -> web.StreamResponse:
        return await self._guard(request, self._member_change)

    async def remove_member(self, request: web.Request) -> web.StreamResponse:
        return await self._guard(request, self._member_change)

    async def _member_change(self, request: web.Request) -> web.Response:
        group = self._group(request.match_info["group"])
        if group is None:
            raise ControlError("no such group")
        body = await _json(request)
        by = self._phone(str(body["by"]))
        phone = self._phone(str(body["phone"]))
        if request.method == "POST":
            ts = await self.sandbox.add_member(group, phone, by=by)
        else:
            ts = await self.sandbox.remove_member(group, phone, by=by)
        return json_response(200, {"timestamp": ts})

    async def set_fault(self, request: web.Request) -> web.StreamResponse:
        async def run(req: web.Request) -> web.Response:
            name = req.match_info["fault"]
            if name not in FAULTS:
                raise ControlError(f"unknown fault {name}")
            kwargs = await _json(req)
            for key in ("phone", "target", "group"):
                if isinstance(kwargs.get(key), str):
                    kwargs[key] = self._resolve_target(kwargs[key])
            result = getattr(self.sandbox.faults, name)(**kwargs)
            if inspect.isawaitable(result):
                await result
            return no_content()

        return await self._guard(request, run)

    def _resolve_target(self, value: str) -> Phone | SandboxGroup | str:
        if value in self.sandbox.phones:
            return self.sandbox.phones[value]
        group = self.sandbox.find_group(value)
        return value if group is None else group

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.sandbox.faults.clear(request.match_info.get("fault"))
        return no_content()

    async def requests(self, _request: web.Request) -> web.Response:
        return json_response(200, [asdict(r) for r in self.sandbox.requests])

    async def raw(self, request: web.Request) -> web.Response:
        text = (await request.read()).decode("utf-8")
        return json_response(200, {"subscribers": await self.sandbox.push_raw(text)})

    async def wait_subscriber(self, request: web.Request) -> web.Response:
        count = int(request.query.get("count", "1"))
        timeout = float(request.query.get("timeout", "5"))
        try:
            await self.sandbox.wait_for_subscriber(count, timeout)
        except TimeoutError:
            return error_response(504, "no subscriber")
        return no_content()

    async def verification_code(self, _request: web.Request) -> web.Response:
        code = self.sandbox.verification_code
        if code is None:
            return error_response(404, "no registration is pending")
        return json_response(200, {"code": code})

    async def account(self, _request: web.Request) -> web.Response:
        sandbox = self.sandbox
        account = sandbox.account
        return json_response(
            200,
            {
                "registered": account.registered,
                "linked": account.linked,
                "device_name": account.device_name,
                "profile_name": sandbox.bot.profile_name,
                "link_pending": account.link_uri is not None,
                "pin_set": bool(account.pin),
            },
        )

    async def complete_link(self, request: web.Request) -> web.StreamResponse:
        async def run(req: web.Request) -> web.Response:
            body = await _json(req)
            if not self.sandbox.account.finish_link():
                raise ControlError("no device link is pending (GET /v1/qrcodelink first)")
            self.sandbox.set_profile_name(str(body.get("profile_name", "Linked Person")))
            return no_content()

        return await self._guard(request, run)


def _phone_json(phone: Phone) -> dict[str, Any]:
    return {
        "name": phone.name,
        "number": phone.number,
        "aci": phone.aci,
        "hide_number": phone.hide_number,
        "trust": phone.trust,
    }


def _received_json(item: Any) -> dict[str, Any]:
    out = asdict(item)
    out["attachments"] = [
        {
            "base64": base64.b64encode(a.data).decode("ascii"),
            "content_type": a.content_type,
            "filename": a.filename,
        }
        for a in item.attachments
    ]
    return out
