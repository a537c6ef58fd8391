"""Messaging routes: ``POST /v2/send`` (WIRE §3.4), typing, reactions, receipts,
remote delete (WIRE §3.5). What the bot sends lands in the phones' inboxes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from relay.sandbox.attachments import AttachmentDataError, DecodedAttachment, decode_attachment
from relay.sandbox.ids import recipient_kind, single_decode_group_id
from relay.sandbox.phones import Phone, Received, ReceivedAttachment, ReceivedMention
from relay.sandbox.rest import Reply, Schema, fail, json_response, no_content, read_body
from relay.sandbox.state import BotSend, SandboxGroup

if TYPE_CHECKING:
    from relay.sandbox.faults import Switch
    from relay.sandbox.server import Sandbox

MIXED = "Signal Messenger {a} and {b} cannot be specified together in one request! Please split them up into multiple REST API calls."  # noqa: E501
TWO_GROUPS = "A signal message cannot be sent to more than one group at once! Please use multiple REST API calls for that."  # noqa: E501
RATE_LIMITED = (
    "Failed to send message due to rate limiting. Use the attached challenge tokens to lift "
    "the rate limit restrictions via the '/v1/accounts/{number}/rate-limit-challenge' endpoint."
)
UNTRUSTED = "Unable to complete request due to untrusted recipient keys"
EMPTY_MESSAGE = (
    "Sending empty message is not allowed, either a message, attachment or sticker must be given."
)
UPLOAD_413 = (
    "Failed to send message: [413] Request Entity Too Large (NonSuccessfulResponseCodeException)"
)
NO_PROFILE = "Cannot send message to group - please first update your profile."

_MENTION: Schema = {"start": "int", "length": "int", "author": "str"}
_SEND_SCHEMA: Schema = {
    "message": "str",
    "number": "str",
    "recipients": "str_list",
    "recipient": "str",
    "base64_attachments": "str_list",
    "sticker": "str",
    "mentions": [_MENTION],
    "quote_timestamp": "int",
    "quote_author": "str",
    "quote_message": "str",
    "quote_mentions": [_MENTION],
    "text_mode": "str",
    "edit_timestamp": "int",
    "notify_self": "bool",
    "link_preview": {"url": "str", "title": "str", "description": "str", "base64_thumbnail": "str"},
    "view_once": "bool",
}
_REACTION_SCHEMA: Schema = {
    "recipient": "str",
    "reaction": "str",
    "target_author": "str",
    "timestamp": "int",
}


def add_routes(app: web.Application, sandbox: Sandbox) -> None:
    """Register the messaging routes for ``sandbox``."""
    routes = _MessageRoutes(sandbox)
    router = app.router
    router.add_post("/v2/send", routes.send)
    router.add_put("/v1/typing-indicator/{number}", routes.start_typing)
    router.add_delete("/v1/typing-indicator/{number}", routes.stop_typing)
    router.add_post("/v1/reactions/{number}", routes.react)
    router.add_delete("/v1/reactions/{number}", routes.unreact)
    router.add_post("/v1/receipts/{number}", routes.receipt)
    router.add_delete("/v1/remote-delete/{number}", routes.remote_delete)


@dataclass
class _Outcome:
    delivered: list[Phone] = field(default_factory=list)
    failed: list[tuple[Phone, str]] = field(default_factory=list)
    forced_partial: bool = False
    tokens: list[str] = field(default_factory=list)


class _MessageRoutes:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    # -- /v2/send --------------------------------------------------------------------------
    async def send(self, request: web.Request) -> web.Response:
        body = await read_body(request, _SEND_SCHEMA)
        return await self._send(request, body)

    async def _send(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        recipients = list(body.get("recipients", []))
        if body.get("recipient"):
            recipients.append(body["recipient"])
        _validate_request(body, recipients)
        groups, numbers, usernames = _classify(recipients)
        sandbox = self.sandbox
        sandbox.check_account(body.get("number", ""))
        _validate_link_preview(body)
        files = _decode_attachments(body.get("base64_attachments", []))
        _validate_content(body, files)
        await self._delay(request)
        if usernames:
            raise fail(400, "Failed to send message")
        if files and sandbox.faults.take("upload_413"):
            raise fail(400, UPLOAD_413)
        if groups:
            group = self._sendable_group(groups[0])
            outcome = self._group_outcome(group)
        else:
            group = None
            outcome = self._direct_outcome(numbers)
        timestamp = sandbox.clock.next()
        self._deliver(body, files, group, outcome, timestamp)
        sandbox.sent.append(
            BotSend(
                timestamp=timestamp,
                recipients=tuple(recipients),
                group_id=None if group is None else group.id,
                text=body.get("message", ""),
                quote_timestamp=body.get("quote_timestamp"),
                quote_author=body.get("quote_author"),
                quote_message=body.get("quote_message"),
                failed=tuple(phone.aci for phone, _ in outcome.failed),
            )
        )
        if sandbox.faults.take("send_legacy_object"):
            return json_response(201, {"timestamp": str(timestamp)})
        result: dict[str, Any] = {"timestamp": str(timestamp)}
        if outcome.failed:
            result["errors"] = {"recipients": [_error_entry(p, r) for p, r in outcome.failed]}
        return json_response(201, [result])

    async def _delay(self, request: web.Request) -> None:
        faults = self.sandbox.faults
        if faults.active("send_hang"):
            await faults.wait_hang_released()
            if self.sandbox.stopping:
                self.sandbox.abort_request(request)  # the API went away mid-call
        slow = faults.take("send_slow")
        if slow is not None:
            await asyncio.sleep(float(slow.value))

    def _sendable_group(self, public_id: str) -> SandboxGroup:
        sandbox = self.sandbox
        faults = sandbox.faults
        internal = single_decode_group_id(public_id) or ""
        group = sandbox.bot_group(internal)
        ids = (public_id, internal)
        if group is None or faults.take("group_not_found", ids):
            raise fail(400, f"Group not found: {internal}")
        label = f"{group.name} ({group.internal_id})"
        if not group.has_member(sandbox.bot) or faults.take("group_not_member", ids):
            raise fail(400, f"User is not a member in group: {label}")
        announcement = group.send_messages == "only-admins" and not group.has_admin(sandbox.bot)
        if announcement or faults.take("group_send_not_allowed", ids):
            raise fail(400, f"User is not allowed to send message to group: {label}")

        if sandbox.bot.profile_name is None or faults.take("no_profile_name"):
            raise fail(400, NO_PROFILE)
        return group

    def _group_outcome(self, group: SandboxGroup) -> _Outcome:
        return self._failures([m for m in group.members if isinstance(m, Phone)])

    def _direct_outcome(self, numbers: list[str]) -> _Outcome:
        phones: list[Phone] = []
        for number in numbers:
            phone = self.sandbox.find_phone(number)
            if phone is None:
                raise fail(400, f"The user {number} is not registered.")
            phones.append(phone)
        ids = [i for phone in phones for i in phone.identifiers()]
        unregistered = self.sandbox.faults.peek("send_400_unregistered", ids)
        if unregistered is not None and unregistered.value == "not_registered":
            self.sandbox.faults.take("send_400_unregistered", ids)
            first = next(
                n
                for n, p in zip(numbers, phones, strict=True)
                if unregistered.matches(p.identifiers())
            )
            raise fail(400, f"The user {first} is not registered.")
        outcome = self._failures(phones)
        if outcome.delivered or outcome.forced_partial:
            return outcome
        reasons = {reason for _, reason in outcome.failed}
        if reasons == {"RATE_LIMIT_FAILURE"}:
            raise Reply(
                json_response(
                    429,
                    {
                        "error": RATE_LIMITED,
                        "challenge_tokens": outcome.tokens or [""],
                        "account": self.sandbox.bot.number,
                    },
                )
            )
        if reasons == {"IDENTITY_FAILURE"}:
            raise fail(400, UNTRUSTED)
        raise fail(400, "Failed to send message")

    def _failures(self, phones: list[Phone]) -> _Outcome:
        """Per-recipient results from the armed faults and the phones' trust state."""
        faults = self.sandbox.faults
        ids = [i for phone in phones for i in phone.identifiers()]
        partial = faults.take("send_partial_errors", ids)
        rate = faults.take("send_429", ids)
        untrusted = faults.take("send_400_untrusted", ids)
        unregistered = faults.take("send_400_unregistered", ids)
        outcome = _Outcome(forced_partial=partial is not None)
        if rate is not None:
            outcome.tokens = list(rate.value)
        rules: list[tuple[Switch | None, str]] = [
            (partial, "" if partial is None else str(partial.value)),
            (rate, "RATE_LIMIT_FAILURE"),
            (untrusted, "IDENTITY_FAILURE"),
            (unregistered, "UNREGISTERED_FAILURE"),
        ]
        for phone in phones:
            reason = next(
                (r for sw, r in rules if sw is not None and sw.matches(phone.identifiers())),
                "IDENTITY_FAILURE" if phone.trust == "UNTRUSTED" else None,
            )
            if reason is None:
                outcome.delivered.append(phone)
            else:
                outcome.failed.append((phone, reason))
        return outcome

    def _deliver(
        self,
        body: dict[str, Any],
        files: list[DecodedAttachment],
        group: SandboxGroup | None,
        outcome: _Outcome,
        timestamp: int,
    ) -> None:
        bot = self.sandbox.bot
        attachments = tuple(ReceivedAttachment(f.data, f.content_type, f.filename) for f in files)
        mentions = tuple(
            ReceivedMention(m.get("start", 0), m.get("length", 0), m.get("author", ""))
            for m in body.get("mentions", [])
        )
        sticker = body.get("sticker") or None
        for phone in outcome.delivered:
            expires = group.expiration_seconds if group else phone.disappearing_seconds
            self.sandbox.deliver_to(
                phone,
                Received(
                    kind="message",
                    timestamp=timestamp,
                    sender_number=bot.number,
                    sender_uuid=bot.aci,
                    text=body.get("message") or None,
                    group_id=None if group is None else group.id,
                    quote_timestamp=body.get("quote_timestamp"),
                    quote_author=body.get("quote_author"),
                    quote_message=body.get("quote_message"),
                    attachments=attachments,
                    mentions=mentions,
                    expires_in_seconds=expires,
                    edit_timestamp=body.get("edit_timestamp"),
                    view_once=bool(body.get("view_once")),
                    sticker=sticker,
                ),
            )

    # -- typing ----------------------------------------------------------------------------
    async def start_typing(self, request: web.Request) -> web.Response:
        return await self._typing(request, "STARTED")

    async def stop_typing(self, request: web.Request) -> web.Response:
        return await self._typing(request, "STOPPED")

    async def _typing(self, request: web.Request, action: str) -> web.Response:
        body = await read_body(request, {"recipient": "str"})
        targets, group = self._targets(request, body.get("recipient", ""))
        self._notify(targets, group, kind="typing", typing_action=action)
        return no_content()

    # -- reactions -------------------------------------------------------------------------
    async def react(self, request: web.Request) -> web.Response:
        return await self._reaction(request, remove=False)

    async def unreact(self, request: web.Request) -> web.Response:
        return await self._reaction(request, remove=True)

    async def _reaction(self, request: web.Request, *, remove: bool) -> web.Response:
        body = await read_body(request, _REACTION_SCHEMA)
        missing = _first_missing(
            body, ("recipient",) + (() if remove else ("reaction",)) + ("target_author",)
        )
        if missing is not None:
            raise fail(400, f"Couldn't process request - {missing} missing")
        if not body.get("timestamp"):
            raise fail(400, "Couldn't process request - timestamp missing")
        targets, group = self._targets(request, body["recipient"])
        emoji = body.get("reaction") or ("👍" if remove else "")
        self._notify(
            targets,
            group,
            kind="reaction",
            emoji=emoji,
            target_author=body["target_author"],
            target_timestamp=body["timestamp"],
            is_remove=remove,
        )
        return no_content()

    # -- receipts --------------------------------------------------------------------------
    async def receipt(self, request: web.Request) -> web.Response:
        body = await read_body(
            request, {"receipt_type": "str", "recipient": "str", "timestamp": "int"}
        )
        if not body.get("recipient"):
            raise fail(400, "Couldn't process request - recipient missing")
        if body.get("receipt_type", "") not in ("read", "viewed"):
            raise fail(400, "Couldn't process request - receipt type must be read or viewed")
        if not body.get("timestamp"):
            raise fail(400, "Couldn't process request - timestamp missing")
        self.sandbox.check_account(request.match_info["number"])
        phone = self.sandbox.find_phone(body["recipient"])
        if phone is None:
            raise fail(400, f"The user {body['recipient']} is not registered.")
        self._notify(
            [phone],
            None,
            kind="receipt",
            receipt_type=body["receipt_type"],
            target_timestamp=body["timestamp"],
        )
        return no_content()

    # -- remote delete ---------------------------------------------------------------------
    async def remote_delete(self, request: web.Request) -> web.Response:
        body = await read_body(request, {"recipient": "str", "timestamp": "int"})
        recipient = body.get("recipient", "")
        kind, problem_text = recipient_kind(recipient)
        if problem_text is not None:
            raise fail(400, problem_text)
        if kind == "username":
            raise fail(400, "Failed to send message")
        targets, group = self._targets(request, recipient)
        timestamp = self.sandbox.clock.next()
        self._notify(
            targets, group, kind="remote_delete", target_timestamp=body.get("timestamp", 0)
        )
        return json_response(201, {"timestamp": str(timestamp)})

    # -- shared ----------------------------------------------------------------------------
    def _targets(
        self, request: web.Request, recipient: str
    ) -> tuple[list[Phone], SandboxGroup | None]:
        """Phones a typing/reaction/deletion for ``recipient`` reaches (raises Reply)."""
        sandbox = self.sandbox
        sandbox.check_account(request.match_info["number"])
        if recipient.startswith("group."):
            internal = single_decode_group_id(recipient)
            if internal is None:
                raise fail(400, "Invalid group id")
            group = sandbox.bot_group(internal)
            if group is None:
                raise fail(400, f"Group not found: {internal}")
            if not group.has_member(sandbox.bot):
                label = f"{group.name} ({group.internal_id})"
                raise fail(400, f"User is not a member in group: {label}")
            return [m for m in group.members if isinstance(m, Phone)], group
        phone = sandbox.find_phone(recipient)
        if phone is None:
            raise fail(400, f"The user {recipient} is not registered.")
        return [phone], None

    def _notify(self, phones: list[Phone], group: SandboxGroup | None, **fields: Any) -> None:
        bot = self.sandbox.bot
        timestamp = self.sandbox.clock.next()
        for phone in phones:
            self.sandbox.deliver_to(
                phone,
                Received(
                    timestamp=timestamp,
                    sender_number=bot.number,
                    sender_uuid=bot.aci,
                    group_id=None if group is None else group.id,
                    **fields,
                ),
            )


def _validate_request(body: dict[str, Any], recipients: list[str]) -> None:
    """The handler-level checks, in the REST API's order."""
    if not recipients:
        raise fail(400, "Couldn't process request - please provide at least one recipient")

    if not body.get("number"):
        raise fail(400, "Couldn't process request - please provide a valid number")

    sticker = body.get("sticker", "")
    if sticker and ":" not in sticker:
        raise fail(400, "Couldn't process request - please provide valid sticker delimiter")

    if body.get("view_once") and not body.get("base64_attachments"):
        raise fail(400, "'view_once' can only be set for image attachments!")


def _classify(recipients: list[str]) -> tuple[list[str], list[str], list[str]]:
    groups: list[str] = []
    numbers: list[str] = []
    usernames: list[str] = []
    for recipient in recipients:
        kind, problem = recipient_kind(recipient)
        if problem is not None:
            raise fail(400, problem)
        {"group": groups, "number": numbers, "username": usernames}[kind].append(recipient)
    if numbers and groups:
        raise fail(400, MIXED.format(a="Groups", b="phone numbers"))
    if usernames and groups:
        raise fail(400, MIXED.format(a="Groups", b="usernames"))
    if numbers and usernames:
        raise fail(400, MIXED.format(a="phone numbers", b="usernames"))
    if len(groups) > 1:
        raise fail(400, TWO_GROUPS)
    return groups, numbers, usernames


def _validate_link_preview(body: dict[str, Any]) -> None:
    preview = body.get("link_preview")
    if preview is None:
        return
    url = preview.get("url", "")
    text = None
    if not url:
        text = "Please provide a valid Link Preview URL"
    elif not url.startswith("https"):
        text = "Link Preview URL must start with https://.."
    elif not preview.get("title"):
        text = "Please provide a valid Link Preview Title"
    elif url not in body.get("message", ""):
        text = "Link Preview URL is missing in the message!"
    if text is not None:
        raise fail(400, text)


def _decode_attachments(entries: list[str]) -> list[DecodedAttachment]:
    files: list[DecodedAttachment] = []
    for entry in entries:
        try:
            files.append(decode_attachment(entry))
        except AttachmentDataError as exc:
            raise fail(400, str(exc)) from exc
    return files


def _validate_content(body: dict[str, Any], files: list[DecodedAttachment]) -> None:
    """signal-cli's own checks on the send command."""
    if body.get("quote_timestamp") is not None and body.get("quote_author") is None:
        raise fail(400, "Quote author parameter is missing")
    empty = not body.get("message") and not files and not body.get("sticker")
    if empty and body.get("quote_timestamp") is None:
        raise fail(400, EMPTY_MESSAGE)


def _first_missing(body: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        if not body.get(name):
            return name
    return None


def _error_entry(phone: Phone, reason: str) -> dict[str, str]:
    entry: dict[str, str] = {}
    if phone.visible_number:
        entry["number"] = phone.visible_number
    entry["uuid"] = phone.aci
    entry["reason"] = reason
    return entry
