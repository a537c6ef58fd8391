"""The sandbox: an aiohttp signal-cli-rest-api (json-rpc mode) on loopback, plus phones.

:class:`Sandbox` owns the HTTP server (REST routes in ``routes_*``, the receive websocket
in :mod:`relay.sandbox.hub`, the ``/_sandbox`` control API in
:mod:`relay.sandbox.control`), the emulated signal-cli state and the simulated phones.
It never prints or logs: the request log is an in-memory list (:attr:`Sandbox.requests`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Self

from aiohttp import web

from relay.sandbox import (
    control,
    frames,
    routes_account,
    routes_contacts,
    routes_groups,
    routes_messages,
    routes_misc,
)
from relay.sandbox.account import PIN_TRIES, AccountState
from relay.sandbox.attachments import extension_for
from relay.sandbox.faults import Faults
from relay.sandbox.frames import Json
from relay.sandbox.hub import Hub, Outcome
from relay.sandbox.ids import (
    Timestamps,
    is_phone_number,
    is_uuid,
    new_aci,
    new_attachment_id,
    new_internal_group_id,
)
from relay.sandbox.phones import Phone, Received
from relay.sandbox.rest import Reply, error_response, fail, go_json, page_not_found
from relay.sandbox.state import (
    BotAccount,
    BotSend,
    FrameRecord,
    Party,
    Permission,
    RequestKind,
    RequestRecord,
    SandboxGroup,
    StoredAttachment,
)

DEFAULT_BOT_NUMBER = "+4915112345678"
DEFAULT_BOT_ACI = "0b1e5d0c-4f4e-4c1e-9a3a-6f1a2b3c4d5e"
ABOUT_VERSION = "0.101"
_NOT_SIGNAL_CLI = ("/v1/health", "/v1/about", "/v1/attachments", "/v1/receive/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SandboxError(RuntimeError):
    """Misuse of the sandbox's test API (not a wire-level error)."""


class AbortedError(Exception):
    """Raised by a handler after it aborted the connection on purpose."""


class Sandbox:
    """A wire-faithful signal-cli-rest-api emulator with simulated phones.

    See the package docstring (:mod:`relay.sandbox`) for the whole test API.
    """

    def __init__(
        self,
        bot_number: str = DEFAULT_BOT_NUMBER,
        bot_aci: str | None = DEFAULT_BOT_ACI,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        buffer_when_no_subscriber: bool = False,
        webhook_url: str | None = None,
        webhook_timeout: float | None = None,
        bot_profile_name: str | None = "Relay",
        clock_start_ms: int | None = None,
        ping_interval: float = 54.0,
        registered: bool = True,
        auto_phones: bool = False,
    ) -> None:
        self.bot = BotAccount(
            number=bot_number,
            aci=bot_aci or new_aci(),
            profile_name=bot_profile_name if registered else None,
        )
        self.host = host
        self._requested_port = port
        self.port = 0
        self.clock = Timestamps(clock_start_ms)
        self.faults = Faults(self)
        self.requests: list[RequestRecord] = []
        self.sent: list[BotSend] = []
        self.internal_errors: list[str] = []
        self.phones: dict[str, Phone] = {}
        self._phone_index: dict[str, Phone] = {}
        self.groups: list[SandboxGroup] = []
        self.attachments: dict[str, StoredAttachment] = {}
        self.contact_names: dict[str, str] = {}
        self.account = AccountState(registered=registered)
        self.auto_phones = auto_phones
        self.profile_updated_ms = self.clock.peek() if self.bot.profile_name else 0
        self._seen: list[Phone] = []
        self.hub = Hub(
            account=bot_number,
            faults=self.faults,
            log=self.log,
            buffer_when_no_subscriber=buffer_when_no_subscriber,
            webhook_url=webhook_url,
            webhook_timeout=webhook_timeout,
            ping_interval=ping_interval,
        )
        self._held: dict[Phone, list[str]] = {}
        self._down = False
        self.stopping = False
        self._up_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> Self:
        """Bind (127.0.0.1, ephemeral port by default) and start serving."""
        app = web.Application(middlewares=[self._middleware])
        routes_misc.add_routes(app, self)
        routes_groups.add_routes(app, self)
        routes_messages.add_routes(app, self)
        routes_contacts.add_routes(app, self)
        routes_account.add_routes(app, self)
        app.router.add_get("/v1/receive/{number}", self.hub.handle)
        control.add_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self._requested_port)
        await self._site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])
        await self.hub.start()
        return self

    async def stop(self) -> None:
        """Abort every connection (like a REST API restart) and shut down."""
        self.stopping = True
        self.faults.release_hangs()
        if self._up_task is not None:
            self._up_task.cancel()
            await asyncio.gather(self._up_task, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.hub.stop()
        self._abort_connections()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def service(self) -> str:
        """``host:port``: signalbot's ``signal_service`` form."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.service}"

    @property
    def receive_url(self) -> str:
        """The bot account's receive websocket URL."""
        return f"ws://{self.service}/v1/receive/{self.bot.number}"

    # -- phones and groups -----------------------------------------------------------------
    def add_phone(
        self,
        name: str,
        number: str | None = None,
        *,
        aci: str | None = None,
        profile_name: str | None = None,
        hide_number: bool = False,
        profile_key_known: bool = True,
    ) -> Phone:
        """A registered Signal user. ``profile_name`` defaults to ``name``; ``hide_number``
        makes envelopes carry ``sourceNumber: null`` and groups list the UUID;
        ``profile_key_known=False`` turns group adds into pending invites."""
        if name in self.phones:
            msg = f"phone {name!r} already exists"
            raise SandboxError(msg)
        phone = Phone(
            self,
            name,
            number=number,
            aci=aci or new_aci(),
            profile_name=name if profile_name is None else profile_name,
            hide_number=hide_number,
            profile_key_known=profile_key_known,
        )
        phone.identity_added = self.clock.peek()
        self.phones[name] = phone
        for identifier in phone.identifiers():
            self._phone_index[identifier] = phone
        return phone

    def phone(self, name: str) -> Phone:
        """The phone called ``name``."""
        return self.phones[name]

    def find_phone(self, identifier: str) -> Phone | None:
        """The phone with this number or ACI (case-insensitive)."""
        wanted = identifier.strip().lower()
        indexed = self._phone_index.get(wanted)
        if indexed is not None and wanted in indexed.identifiers():
            return indexed
        for phone in self.phones.values():
            if wanted in phone.identifiers():
                return phone
        return None

    def find_group(self, group_id: str) -> SandboxGroup | None:
        """The group with this public or internal id."""
        for group in self.groups:
            if group_id in (group.id, group.internal_id):
                return group
        return None

    def bot_group(self, internal_id: str) -> SandboxGroup | None:
        """A group signal-cli knows (by internal id)."""
        for group in self.groups:
            if group.known_to_bot and group.internal_id == internal_id:
                return group
        return None

    def create_group(
        self,
        name: str,
        members: Sequence[Phone] = (),
        admins: Sequence[Phone] = (),
        *,
        bot_member: bool = True,
        bot_admin: bool = True,
        pending: Sequence[Party] = (),
        description: str = "",
        add_members: Permission = "every-member",
        edit_group: Permission = "every-member",
        send_messages: Permission = "every-member",
        revision: int = 0,
        internal_id: str | None = None,
        expiration_seconds: int = 0,
    ) -> SandboxGroup:
        """A group that already exists (created out of band). With ``bot_member`` the bot is
        listed first (as signal-cli lists the account); ``pending`` may include ``self.bot``."""
        member_list: list[Party] = [self.bot] if bot_member else []
        member_list += list(members)
        admin_list: list[Party] = [self.bot] if bot_member and bot_admin else []
        admin_list += list(admins)
        for admin in admins:
            if not any(m is admin for m in member_list):
                member_list.append(admin)
        group = SandboxGroup(
            internal_id=internal_id or new_internal_group_id(),
            name=name,
            members=member_list,
            admins=admin_list,
            pending=list(pending),
            description=description,
            revision=revision,
            add_members=add_members,
            edit_group=edit_group,
            send_messages=send_messages,
            expiration_seconds=expiration_seconds,
            known_to_bot=bot_member or any(p is self.bot for p in pending),
        )
        self.groups.append(group)
        return group

    async def add_member(self, group: SandboxGroup, phone: Phone, *, by: Phone) -> int:
        """``by`` adds ``phone`` (a pending invite if its profile key is unknown): revision
        +1 and a group UPDATE frame from ``by``. Returns the frame's timestamp."""
        involved = self._bot_involved(group)
        if not group.has_member(phone) and not group.has_pending(phone):
            (group.members if phone.profile_key_known else group.pending).append(phone)
        return await self._group_changed(group, by, involved)

    async def invite(self, group: SandboxGroup, phone: Party, *, by: Phone) -> int:
        """``by`` invites ``phone`` (pending until it joins): UPDATE frame from ``by``."""
        involved = self._bot_involved(group)
        if not group.has_member(phone) and not group.has_pending(phone):
            group.pending.append(phone)
        if phone is self.bot:
            group.known_to_bot = True
        return await self._group_changed(group, by, involved)

    async def accept_invite(self, group: SandboxGroup, phone: Phone) -> int:
        """A pending ``phone`` joins: UPDATE frame from the phone itself."""
        involved = self._bot_involved(group)
        group.pending = [p for p in group.pending if p is not phone]
        if not group.has_member(phone):
            group.members.append(phone)
        return await self._group_changed(group, phone, involved)

    async def remove_member(self, group: SandboxGroup, party: Party, *, by: Phone) -> int:
        """``by`` removes ``party`` (a phone, or ``sandbox.bot``: the group then lists
        ``member: false``): UPDATE frame from ``by``."""
        involved = self._bot_involved(group)
        group.discard(party)
        return await self._group_changed(group, by, involved)

    async def set_admin(
        self, group: SandboxGroup, party: Party, *, admin: bool = True, by: Phone
    ) -> int:
        """``by`` promotes (or demotes) a full member: UPDATE frame from ``by``."""
        involved = self._bot_involved(group)
        if admin and group.has_member(party) and not group.has_admin(party):
            group.admins.append(party)
        if not admin:
            group.admins = [p for p in group.admins if p is not party]
        return await self._group_changed(group, by, involved)

    async def rename_group(self, group: SandboxGroup, name: str, *, by: Phone) -> int:
        """``by`` renames the group: UPDATE frame from ``by``."""
        involved = self._bot_involved(group)
        group.name = name
        return await self._group_changed(group, by, involved)

    def _bot_involved(self, group: SandboxGroup | None) -> bool:
        """Whether the bot gets this group's traffic (1:1 always)."""
        return group is None or group.has_member(self.bot)

    async def _group_changed(self, group: SandboxGroup, by: Phone, involved: bool) -> int:
        group.revision += 1
        info = frames.group_info(group.internal_id, group.name, group.revision, "UPDATE")

        def build(ts: int) -> Json:
            return {
                "dataMessage": frames.data_message(
                    ts, None, expires_in_seconds=group.expiration_seconds, group_info=info
                )
            }

        involved = involved or self._bot_involved(group) or group.has_pending(self.bot)
        return await self.phone_emit(
            by, build, group=group, check_sender=False, bot_involved=involved
        )

    # -- receive side ----------------------------------------------------------------------
    async def push_raw(self, text: str) -> int:
        """Write ``text`` as-is to every connected reader (any account), bypassing faults
        and the webhook. Returns how many readers it reached."""
        return self.hub.push_now(text)

    async def push_frame(self, frame_obj: Json | str) -> Outcome:
        """Deliver a receive notification (dict or encoded text) through the normal path:
        faults, fan-out, webhook."""
        text = frame_obj if isinstance(frame_obj, str) else frames.encode_frame(frame_obj)
        return await self.hub.submit(text, rpc_line=frames.rpc_line(text))

    async def push_error(self, message: str) -> None:
        """A JSON-RPC error notification: ``{"error": message}`` to every subscriber."""
        # The REST API builds this one itself, with Go's json.Marshal (HTML-escaped).
        text = go_json(frames.error_frame(message)).decode("utf-8")
        await self.hub.submit(text, rpc_line=frames.rpc_error_line(message), all_accounts=True)

    async def sync_transcript(self, to: Phone | None, text: str | None) -> int:
        """A linked device of the bot's account sent ``text`` to ``to`` (F22).
        ``to=None, text=None`` gives the bare ``"syncMessage":{}``."""
        ts = self.clock.next()
        if to is None and text is None:
            content: Json = {"syncMessage": {}}
        else:
            inner = frames.data_message(ts, text)
            content = {
                "syncMessage": frames.sync_sent_message(None if to is None else to.source, inner)
            }
        env = frames.envelope(self.bot.source, ts, content=content)
        await self.push_frame(frames.frame(env, self.bot.number))
        return ts

    async def wait_for_subscriber(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - test API takes a deadline
        *,
        all_accounts: bool = False,
    ) -> None:
        """Wait until ``count`` readers of the bot account (or of any account) are
        connected. Call it before pushing: frames with no reader are dropped."""
        await self.hub.wait_for_subscriber(count, timeout, all_accounts=all_accounts)

    async def wait_for_no_subscriber(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every reader has disconnected."""
        await self.hub.wait_for_no_subscriber(timeout)

    @property
    def subscriber_count(self) -> int:
        return self.hub.subscriber_count()

    async def drain(self) -> None:
        """Wait until every pending notification was fanned out and sent to the webhook."""
        await self.hub.drain()

    @property
    def frames(self) -> list[FrameRecord]:
        """The last receive notifications and their fate (newest last)."""
        return list(self.hub.frames)

    def request_lines(self, kinds: Iterable[RequestKind] = ("rest", "ws")) -> list[str]:
        """The request log as ``"GET /v1/health 204"`` lines."""
        wanted = set(kinds)
        return [r.line() for r in self.requests if r.kind in wanted]

    # -- PhoneNetwork ----------------------------------------------------------------------
    async def phone_emit(
        self,
        phone: Phone,
        build: Callable[[int], Json],
        *,
        group: SandboxGroup | None,
        timestamp: int | None = None,
        check_sender: bool = True,
        bot_involved: bool | None = None,
    ) -> int:
        """Stamp the envelope, apply identity and legacy faults, deliver; return ts.

        A group message only reaches the bot while it is a member (``bot_involved``
        overrides that, for group updates that add or remove the bot)."""
        if check_sender and group is not None and not group.has_member(phone):
            msg = f"{phone!r} is not a member of the group"
            raise SandboxError(msg)
        ts = self.clock.next() if timestamp is None else timestamp
        env = frames.envelope(phone.source, ts, content=build(ts))
        reaches_bot = bot_involved if bot_involved is not None else self._bot_involved(group)
        if not reaches_bot:
            return ts
        self.mark_seen(phone)
        params = frames.frame(env, self.bot.number)
        if phone.trust == "UNTRUSTED":
            self._held.setdefault(phone, []).append(frames.encode_frame(params))
            params = frames.frame(
                frames.envelope(phone.source, ts),
                self.bot.number,
                exception=frames.untrusted_identity_exception(phone.aci),
            )
        legacy = self.faults.take("legacy_frames")
        if legacy is not None:
            params = frames.legacy_shape(params, **legacy.extra)
        await self.push_frame(params)
        return ts

    def store_attachment(self, data: bytes, content_type: str, filename: str | None) -> str:
        """Keep a file under an attachment id (the phone side: what the bot downloads)."""
        attachment_id = new_attachment_id(extension_for(content_type))
        self.attachments[attachment_id] = StoredAttachment(
            attachment_id, data, content_type, filename
        )
        return attachment_id

    # -- FaultActions ----------------------------------------------------------------------
    async def abort_subscribers(self) -> int:
        return self.hub.abort_all()

    async def close_subscribers(self, code: int | None) -> int:
        return await self.hub.close_all(code)

    async def go_down(self, seconds: float | None) -> None:
        self._down = True
        self.hub.abort_all()
        if self._site is not None:
            await self._site.stop()
            self._site = None
        self._abort_connections()
        if seconds is not None:
            self._up_task = asyncio.create_task(self._up_after(seconds))

    async def _up_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.go_up()

    async def go_up(self) -> None:
        if self._runner is not None and self._site is None:
            self._site = web.TCPSite(self._runner, self.host, self.port)
            await self._site.start()
        self._down = False

    def mark_untrusted(self, phone: Phone) -> None:
        phone.trust = "UNTRUSTED"
        phone.identity_added = self.clock.peek()

    def _abort_connections(self) -> None:
        server = None if self._runner is None else self._runner.server
        if server is None:
            return
        for connection in list(server.connections):
            transport = connection.transport
            if transport is not None:
                transport.abort()

    # -- bot side --------------------------------------------------------------------------
    def deliver_to(self, phone: Phone, item: Received) -> None:
        """Hand something the bot sent to ``phone``."""
        self.mark_seen(phone)
        phone.deliver(item)

    def trust(self, phone: Phone, *, verified: bool) -> None:
        """Trust ``phone``'s current key and re-deliver its held messages (F10)."""
        phone.trust = "TRUSTED_VERIFIED" if verified else "TRUSTED_UNVERIFIED"
        held = self._held.pop(phone, [])
        if held:
            self.spawn(self._redeliver(held))

    async def _redeliver(self, held: list[str]) -> None:
        for text in held:
            await self.push_frame(text)

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` in the background; cancelled on stop."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def log(self, record: RequestRecord) -> None:
        self.requests.append(record)

    def about(self) -> Json:
        version = self.faults.peek("about_version")
        mode = self.faults.peek("about_mode")
        return {
            "versions": ["v1", "v2"],
            "build": 2,
            "mode": "json-rpc" if mode is None else str(mode.value),
            "version": ABOUT_VERSION if version is None else str(version.value),
            "capabilities": {"v2/send": ["quotes", "mentions"]},
        }

    def check_account(self, number: str) -> None:
        """signal-cli's answer for an account this daemon does not have (raises Reply)."""
        if number != self.bot.number or not self.account.registered:
            raise fail(400, "Specified account does not exist")

    # -- account setup ---------------------------------------------------------------------
    @property
    def verification_code(self) -> str | None:
        """The code the last ``POST /v1/register`` "sent" (None when none is pending)."""
        return self.account.verification_code

    def captcha_required(self) -> bool:
        """Whether registering without a captcha fails (the ``captcha`` fault overrides)."""
        switch = self.faults.peek("captcha")
        return self.account.captcha_required if switch is None else bool(switch.value)

    def registration_lock_pin(self) -> str | None:
        """The PIN a verify must give: the ``registration_lock`` fault's, else the account's."""
        switch = self.faults.peek("registration_lock")
        if switch is not None:
            return str(switch.value)
        return self.account.pin or None

    def complete_registration(self) -> None:
        """Verify succeeded: the bot number is a registered primary device."""
        account = self.account
        account.registered = True
        account.linked = False
        account.verification_code = None
        account.pin_tries_left = PIN_TRIES

    def set_profile_name(self, name: str) -> None:
        """``PUT /v1/profiles``: the bot's profile name (and its update time)."""
        self.bot.profile_name = name
        self.profile_updated_ms = self.clock.peek()

    def mark_seen(self, phone: Phone) -> None:
        """The bot has this phone as a recipient (``GET /v1/contacts`` lists it)."""
        if not any(seen is phone for seen in self._seen):
            self._seen.append(phone)

    def seen_phones(self) -> list[Phone]:
        """Phones the bot knows: seen ones, then members of the bot's groups."""
        known = list(self._seen)
        for group in self.groups:
            if not group.known_to_bot:
                continue
            for party in [*group.members, *group.pending]:
                if isinstance(party, Phone) and not any(p is party for p in known):
                    known.append(party)
        return known

    def resolve_party(self, identifier: str) -> Party | None:
        """The bot or the phone with this number/ACI; with ``auto_phones`` an unknown
        number or ACI becomes a new phone (profile key known) instead of ``None``."""
        if identifier in (self.bot.number, self.bot.aci):
            return self.bot
        phone = self.find_phone(identifier)
        if phone is not None or not self.auto_phones:
            return phone
        if is_uuid(identifier):
            return self.add_phone(self._auto_name(), aci=identifier.lower())
        if is_phone_number(identifier) and len(identifier) > 1:
            return self.add_phone(self._auto_name(), identifier)
        return None

    def _auto_name(self) -> str:
        index = len(self.phones) + 1
        while f"auto-{index}" in self.phones:
            index += 1
        return f"auto-{index}"

    # -- middleware ------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(control.PREFIX):
            try:
                return await handler(request)
            except Reply as reply:
                return reply.response
        if self._down:
            return self._abort(request)
        if not request.path.startswith(_NOT_SIGNAL_CLI):
            await self.hub.rpc_idle.wait()
        try:
            response = await self._respond(request, handler)
        except AbortedError:
            return self._abort(request)
        if not isinstance(response, web.WebSocketResponse):
            self.log(RequestRecord(request.method, request.path, response.status))
        return response

    async def _respond(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Reply as reply:
            return reply.response
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            return page_not_found()
        except web.HTTPException as exc:
            return web.Response(status=exc.status, text=exc.text or "")
        except AbortedError:
            raise
        except Exception as exc:
            self.internal_errors.append(f"{request.method} {request.path}: {type(exc).__name__}")
            return error_response(500, "sandbox internal error")

    def _abort(self, request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            transport.abort()
        self.log(RequestRecord(request.method, request.path, 0))
        return web.Response(status=503)

    def abort_request(self, request: web.Request) -> None:
        """Drop this request's connection (no response); raise from the handler after."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise AbortedError


__all__ = [
    "AbortedError",
    "Sandbox",
    "SandboxError",
]
