"""A wire-faithful signal-cli-rest-api (json-rpc mode) emulator on loopback.

The real HTTP/websocket protocol (WIRE.md §2-9), served by aiohttp on 127.0.0.1, with
simulated phones so a test reads like a chat. It never prints or logs.

Server
    ``sandbox = Sandbox(bot_number="+4915112345678", bot_aci=..., host="127.0.0.1",
    port=0, buffer_when_no_subscriber=False, webhook_url=None, webhook_timeout=None,
    bot_profile_name="Relay", clock_start_ms=None, ping_interval=54.0,
    registered=True, auto_phones=False)``;
    ``await sandbox.start()`` / ``await sandbox.stop()`` (or ``async with``);
    ``sandbox.service`` (``"127.0.0.1:PORT"``, signalbot's ``signal_service``),
    ``base_url``, ``receive_url``, ``bot`` (:class:`BotAccount`: number, aci,
    profile_name).

Account setup (WIRE §10; :mod:`relay.sandbox.account`)
    ``registered=False``: the bot number is not an account yet (no profile name; account
    routes answer ``Specified account does not exist``; ``GET /v1/accounts`` is empty).
    ``POST /v1/register/{n}`` needs a captcha (``signalcaptcha://signal-…``) unless
    ``faults.captcha(required=False)``; it leaves ``sandbox.verification_code`` for
    ``POST /v1/register/{n}/verify/{code}``. ``faults.registration_lock(pin)`` (or a PIN
    set through ``POST /v1/accounts/{n}/pin``) makes verify need that PIN.
    ``GET /v1/qrcodelink[/raw]`` starts a device link; ``POST /_sandbox/link/complete``
    is the phone scanning it. ``GET /v1/contacts/{n}[/{id}]`` lists the phones the bot
    has seen, and with ``?all_recipients=true`` the bot itself (``profile.given_name``).
    ``auto_phones=True`` (standalone rehearsals): an unknown number or ACI named as a
    group member becomes a new phone instead of ``The user … is not registered.``

Phones (:class:`Phone`)
    ``alice = sandbox.add_phone("Alice", "+4917612345678", aci=None,
    profile_name=None, hide_number=False, profile_key_known=True)`` (any phone may write
    to the bot: strangers too). All sends return the envelope timestamp (pass
    ``timestamp=`` to pin the sender's clock):
    ``await alice.send(text, quote=received|QuoteRef, attachments=[(bytes, mime, name)],
    mentions=[(party, start, length)], view_once=False)``,
    ``await alice.send_group(grp, text, ...)``, ``await alice.react("👍", received,
    remove=False)``, ``await alice.remote_delete(ts)``, ``await alice.edit(ts, text)``,
    ``await alice.start_typing(grp=None)`` / ``stop_typing``,
    ``await alice.set_disappearing(604800)``, ``await alice.send_receipt([ts], "read")``.
    What the bot sent: ``alice.inbox`` / ``alice.messages`` (:class:`Received`: kind, text,
    timestamp, group_id, quote_timestamp, quote_author, quote_message, attachments,
    mentions, expires_in_seconds, emoji, target_timestamp, …) and
    ``await alice.wait_for(predicate, timeout=5, kind="message")`` (each item once).

Groups (:class:`SandboxGroup`: ``.id`` public ``group.…``, ``.internal_id``)
    ``grp = sandbox.create_group("Officers", members=[alice, bob], admins=[alice],
    bot_member=True, bot_admin=True, send_messages="every-member", ...)``; changes made
    by a phone bump the revision and push a group UPDATE frame from it:
    ``await sandbox.add_member(grp, carol, by=alice)`` (pending if carol's profile key is
    unknown), ``remove_member(grp, carol_or_sandbox.bot, by=alice)``,
    ``invite(grp, dave, by=alice)``, ``accept_invite(grp, dave)``,
    ``set_admin(grp, bob, admin=True, by=alice)``, ``rename_group(grp, name, by=alice)``.
    Changes the bot makes through REST bump the revision without a frame (no sync).

Receive side
    ``await sandbox.wait_for_subscriber(count=1, timeout=5, all_accounts=False)``,
    ``await sandbox.wait_for_no_subscriber()``, ``subscriber_count``,
    ``await sandbox.push_frame(dict_or_text)`` (normal path: faults, fan-out, webhook),
    ``await sandbox.push_raw(text)`` (straight to every reader), ``await
    sandbox.push_error(text)``, ``await sandbox.sync_transcript(to=alice, text=...)``,
    ``await sandbox.drain()`` (fan-out and webhook finished), ``sandbox.frames``
    (:class:`FrameRecord`: text, outcome delivered/dropped/buffered/held, subscribers).
    Default: a frame with no reader connected is dropped (upstream behaviour).

Logs
    ``sandbox.requests`` (:class:`RequestRecord`: method, path, status, kind rest/ws/
    webhook; status 0 = aborted), ``sandbox.request_lines()``, ``sandbox.sent``
    (:class:`BotSend` per successful ``/v2/send``), ``sandbox.attachments``,
    ``sandbox.internal_errors``.

Faults
    ``sandbox.faults`` (:class:`Faults`, documented in :mod:`relay.sandbox.faults`).

Over HTTP
    ``/_sandbox/...`` (see :mod:`relay.sandbox.control`).

Real signalbot
    :class:`BotThread` runs an unmodified ``SignalBot`` in its own thread/loop so that its
    public ``stop()`` (which stops the loop) is a clean shutdown::

        runner = BotThread({"phone_number": sandbox.bot.number,
                            "signal_service": sandbox.service,
                            "connection_mode": "http_only",
                            "storage": {"type": "in-memory"}},
                           setup=lambda bot: bot.register(MyHandler()))
        await runner.start(); await runner.wait_until_ready()
        await sandbox.wait_for_subscriber()   # ready != subscribed (WIRE §2.7)
        sent = await runner.call(lambda bot: bot.messages.send(SendMessage(text="hi"), alice.aci))
        await runner.stop()                   # bot.stop() on its own loop, thread joined

Sync vs async
    Everything that emits a frame is a coroutine (the phone methods, ``add_member`` …,
    ``set_disappearing``); registry calls (``add_phone``, ``create_group``) and fault
    switches are plain calls, except the immediate socket actions ``ws_abort``,
    ``ws_close``, ``error_frame``, ``rest_down``/``rest_up``.
"""

from relay.sandbox.bot_thread import BotThread
from relay.sandbox.faults import Faults
from relay.sandbox.frames import Source
from relay.sandbox.hub import Outcome
from relay.sandbox.phones import (
    OutgoingAttachment,
    Phone,
    QuoteRef,
    Received,
    ReceivedAttachment,
    ReceivedMention,
)
from relay.sandbox.server import Sandbox, SandboxError
from relay.sandbox.state import (
    BotAccount,
    BotSend,
    FrameRecord,
    RequestRecord,
    SandboxGroup,
    StoredAttachment,
)

__all__ = [
    "BotAccount",
    "BotSend",
    "BotThread",
    "Faults",
    "FrameRecord",
    "Outcome",
    "OutgoingAttachment",
    "Phone",
    "QuoteRef",
    "Received",
    "ReceivedAttachment",
    "ReceivedMention",
    "RequestRecord",
    "Sandbox",
    "SandboxError",
    "SandboxGroup",
    "Source",
    "StoredAttachment",
]
