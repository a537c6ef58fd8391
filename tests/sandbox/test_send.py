"""``POST /v2/send`` and the other messaging endpoints: shapes, exact error texts, faults."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest

from relay.sandbox import Phone, Sandbox
from tests.sandbox.conftest import BOT_NUMBER, PUBLIC_ID, call


def _send(recipients: list[str], message: str = "hi", **extra: object) -> dict[str, object]:
    return {"message": message, "number": BOT_NUMBER, "recipients": recipients, **extra}


def _error(text: str) -> str:
    return json.dumps({"error": text}, separators=(",", ":"), ensure_ascii=False)


async def test_send_success_is_an_array_and_delivers(
    sandbox: Sandbox, alice: Phone, reporter: Phone, http: aiohttp.ClientSession
) -> None:
    # signalbot posts text/plain; the body is JSON anyway.
    async with http.post(
        sandbox.base_url + "/v2/send",
        data=json.dumps(_send([alice.number or "", reporter.aci], "to both")),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    ) as resp:
        assert resp.status == 201
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        [result] = await resp.json()
    assert set(result) == {"timestamp"}
    ts = int(result["timestamp"])
    for phone in (alice, reporter):
        got = await phone.wait_for()
        assert (got.text, got.timestamp) == ("to both", ts)


async def test_timestamps_are_unique_and_increasing(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    stamps = []
    for _ in range(20):
        _, body = await call(http, sandbox, "POST", "/v2/send", _send([alice.aci]))
        stamps.append(int(json.loads(body)[0]["timestamp"]))
    assert stamps == sorted(set(stamps))


async def test_quote_attachments_and_mentions_are_recorded(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    jpeg = b"\xff\xd8\xff\xe0 fake jpeg"
    body = _send(
        [alice.aci],
        "see attached",
        quote_timestamp=1767225600000,
        quote_author=alice.aci,
        quote_message="original",
        base64_attachments=[
            "data:image/jpeg;filename=photo.jpg;base64," + base64.b64encode(jpeg).decode(),
            base64.b64encode(b"plain text").decode(),
        ],
        mentions=[{"start": 0, "length": 1, "author": alice.aci}],
    )
    status, _ = await call(http, sandbox, "POST", "/v2/send", body)
    assert status == 201
    got = await alice.wait_for()
    assert (got.quote_timestamp, got.quote_author, got.quote_message) == (
        1767225600000,
        alice.aci,
        "original",
    )
    assert got.attachments[0].data == jpeg
    assert got.attachments[0].content_type == "image/jpeg"
    assert got.attachments[0].filename == "photo.jpg"
    assert got.attachments[1].content_type == "text/plain"
    assert (got.attachments[1].filename or "").endswith(".txt")
    assert got.mentions[0].author == alice.aci


ALICE = "+4917612345678"
INVALID = "Couldn't process request - invalid request"
MIXED = (
    "Signal Messenger Groups and phone numbers cannot be specified together in one "
    "request! Please split them up into multiple REST API calls."
)
TWO_GROUPS = (
    "A signal message cannot be sent to more than one group at once! Please use multiple "
    "REST API calls for that."
)
EMPTY = (
    "Sending empty message is not allowed, either a message, attachment or sticker must be given."
)
VALIDATION = [
    ("", INVALID),
    ("{not json", INVALID),
    (json.dumps({"message": "x", "number": BOT_NUMBER, "recipients": "+49"}), INVALID),
    (json.dumps(_send([ALICE], quote_timestamp="1")), INVALID),
    (
        json.dumps({"message": "x", "number": BOT_NUMBER}),
        "Couldn't process request - please provide at least one recipient",
    ),
    (
        json.dumps({"message": "x", "recipients": [ALICE]}),
        "Couldn't process request - please provide a valid number",
    ),
    (
        json.dumps(_send([ALICE], sticker="x")),
        "Couldn't process request - please provide valid sticker delimiter",
    ),
    (
        json.dumps(_send([ALICE], view_once=True)),
        "'view_once' can only be set for image attachments!",
    ),
    (json.dumps(_send([ALICE, PUBLIC_ID])), MIXED),
    (json.dumps(_send([PUBLIC_ID, PUBLIC_ID])), TWO_GROUPS),
    (
        json.dumps(_send([PUBLIC_ID])),
        "Group not found: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ),
    (json.dumps(_send(["+4917600000000"])), "The user +4917600000000 is not registered."),
    (
        json.dumps({"message": "x", "number": "+4915100000000", "recipients": [ALICE]}),
        "Specified account does not exist",
    ),
    (json.dumps(_send([ALICE], "")), EMPTY),
    (
        json.dumps(_send([ALICE], base64_attachments=["!!!"])),
        "illegal base64 data at input byte 0",
    ),
    (
        json.dumps(_send([ALICE], link_preview={"url": "http://x"})),
        "Link Preview URL must start with https://..",
    ),
]


@pytest.mark.parametrize(("body", "text"), VALIDATION)
async def test_send_validation_texts(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession, body: str, text: str
) -> None:
    del alice
    status, got = await call(http, sandbox, "POST", "/v2/send", body)
    assert status == 400
    assert got == _error(text)


async def test_bad_body_answer_is_sniffed_as_text(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.post(sandbox.base_url + "/v2/send", data=b"") as resp:
        assert resp.status == 400
        assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_group_send_checks(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    grp = sandbox.create_group("Officers", members=[alice], bot_admin=False)
    label = f"Officers ({grp.internal_id})"
    sandbox.faults.group_not_member(grp)
    status, body = await call(http, sandbox, "POST", "/v2/send", _send([grp.id]))
    assert (status, body) == (400, _error(f"User is not a member in group: {label}"))
    grp.send_messages = "only-admins"
    status, body = await call(http, sandbox, "POST", "/v2/send", _send([grp.id]))
    assert (status, body) == (400, _error(f"User is not allowed to send message to group: {label}"))
    grp.send_messages = "every-member"
    status, _ = await call(http, sandbox, "POST", "/v2/send", _send([grp.id]))
    assert status == 201


async def test_429_body(sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession) -> None:
    sandbox.faults.send_429()
    status, body = await call(http, sandbox, "POST", "/v2/send", _send([alice.aci]))
    assert status == 429
    assert body == (
        '{"error":"Failed to send message due to rate limiting. Use the attached challenge '
        "tokens to lift the rate limit restrictions via the "
        "'/v1/accounts/{number}/rate-limit-challenge' endpoint.\","
        '"challenge_tokens":[""],"account":"+4915112345678"}'
    )
    assert alice.inbox == []
    token = "4f0e2c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"
    sandbox.faults.send_429([token], times=None)
    _, body = await call(http, sandbox, "POST", "/v2/send", _send([alice.aci]))
    assert json.loads(body)["challenge_tokens"] == [token]
    status, _ = await call(
        http,
        sandbox,
        "POST",
        f"/v1/accounts/{BOT_NUMBER}/rate-limit-challenge",
        {"challenge_token": token, "captcha": "signalcaptcha://x"},
    )
    assert status == 204
    status, _ = await call(http, sandbox, "POST", "/v2/send", _send([alice.aci]))
    assert status == 201


async def test_untrusted_and_unregistered_texts(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.send_400_untrusted()
    assert await call(http, sandbox, "POST", "/v2/send", _send([alice.aci])) == (
        400,
        _error("Unable to complete request due to untrusted recipient keys"),
    )
    sandbox.faults.send_400_unregistered()
    assert await call(http, sandbox, "POST", "/v2/send", _send([alice.aci])) == (
        400,
        _error(f"The user {alice.aci} is not registered."),
    )
    sandbox.faults.send_400_unregistered("failed")
    assert await call(http, sandbox, "POST", "/v2/send", _send([alice.aci])) == (
        400,
        _error("Failed to send message"),
    )


async def test_partial_failures_target_one_recipient(
    sandbox: Sandbox, alice: Phone, reporter: Phone, http: aiohttp.ClientSession
) -> None:
    grp = sandbox.create_group("Officers", members=[alice, reporter])
    sandbox.faults.send_400_untrusted(target=alice)
    status, body = await call(http, sandbox, "POST", "/v2/send", _send([grp.id]))
    assert status == 201
    [result] = json.loads(body)
    assert result["errors"] == {
        "recipients": [{"number": alice.number, "uuid": alice.aci, "reason": "IDENTITY_FAILURE"}]
    }
    assert alice.inbox == []
    assert (await reporter.wait_for()).group_id == grp.id

    sandbox.faults.send_partial_errors("NETWORK_FAILURE", target=reporter)
    status, body = await call(http, sandbox, "POST", "/v2/send", _send([alice.aci, reporter.aci]))
    assert status == 201
    [result] = json.loads(body)
    assert result["errors"]["recipients"] == [{"uuid": reporter.aci, "reason": "NETWORK_FAILURE"}]


async def test_legacy_object_is_sent_after_delivery(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.send_legacy_object()
    status, body = await call(http, sandbox, "POST", "/v2/send", _send([alice.aci]))
    assert status == 201
    assert set(json.loads(body)) == {"timestamp"}
    assert len(alice.inbox) == 1


async def test_send_hang_until_cleared(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.send_hang()
    pending = asyncio.ensure_future(call(http, sandbox, "POST", "/v2/send", _send([alice.aci])))
    await asyncio.sleep(0.1)
    assert not pending.done()
    sandbox.faults.clear("send_hang")
    status, _ = await asyncio.wait_for(pending, 2)
    assert status == 201


async def test_typing_reaction_receipt_remote_delete(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    n = BOT_NUMBER
    grp = sandbox.create_group("Officers", members=[alice])
    assert (await call(http, sandbox, "PUT", f"/v1/typing-indicator/{n}", {"recipient": grp.id}))[
        0
    ] == 204
    typing = await alice.wait_for(kind="typing")
    assert (typing.typing_action, typing.group_id) == ("STARTED", grp.id)

    assert await call(http, sandbox, "POST", f"/v1/reactions/{n}", {"recipient": alice.aci}) == (
        400,
        _error("Couldn't process request - reaction missing"),
    )
    body = {"recipient": alice.aci, "reaction": "👍", "target_author": alice.aci}
    assert await call(http, sandbox, "POST", f"/v1/reactions/{n}", body) == (
        400,
        _error("Couldn't process request - timestamp missing"),
    )
    body["timestamp"] = 1767225600000  # type: ignore[assignment]
    assert (await call(http, sandbox, "POST", f"/v1/reactions/{n}", body))[0] == 204
    reaction = await alice.wait_for(kind="reaction")
    assert (reaction.emoji, reaction.target_timestamp) == ("👍", 1767225600000)

    status, _ = await call(
        http,
        sandbox,
        "POST",
        f"/v1/receipts/{n}",
        {"receipt_type": "read", "recipient": alice.aci, "timestamp": 1767225600000},
    )
    assert status == 204
    assert await call(
        http,
        sandbox,
        "POST",
        f"/v1/receipts/{n}",
        {"receipt_type": "delivery", "recipient": alice.aci, "timestamp": 1},
    ) == (400, _error("Couldn't process request - receipt type must be read or viewed"))

    status, body_text = await call(
        http,
        sandbox,
        "DELETE",
        f"/v1/remote-delete/{n}",
        {"recipient": alice.aci, "timestamp": 1767225600000},
    )
    assert status == 201
    assert set(json.loads(body_text)) == {"timestamp"}
    deleted = await alice.wait_for(kind="remote_delete")
    assert deleted.target_timestamp == 1767225600000


async def test_misc_endpoints(sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession) -> None:
    n = BOT_NUMBER
    assert await call(http, sandbox, "GET", "/v1/health") == (204, "")
    about = (
        '{"versions":["v1","v2"],"build":2,"mode":"json-rpc","version":"0.101",'
        '"capabilities":{"v2/send":["quotes","mentions"]}}'
    )
    assert await call(http, sandbox, "GET", "/v1/about") == (200, about)
    sandbox.faults.about_version("0.100")
    sandbox.faults.about_mode("normal")
    about_json = json.loads((await call(http, sandbox, "GET", "/v1/about"))[1])
    assert (about_json["version"], about_json["mode"]) == ("0.100", "normal")
    sandbox.faults.health_down(503, times=1)
    assert (await call(http, sandbox, "GET", "/v1/health"))[0] == 503
    assert await call(http, sandbox, "GET", "/v1/nothing-here") == (404, "404 page not found")
    assert await call(http, sandbox, "PUT", f"/v1/profiles/{n}", {}) == (
        400,
        _error("Couldn't process request - profile name missing"),
    )
    assert (await call(http, sandbox, "PUT", f"/v1/profiles/{n}", {"name": "Relay"}))[0] == 204
    assert (await call(http, sandbox, "PUT", f"/v1/contacts/{n}", {"recipient": alice.aci}))[
        0
    ] == 204
    assert await call(http, sandbox, "GET", "/v1/attachments/missing.jpg") == (
        404,
        _error("No attachment with that name found"),
    )
    attachment_id = sandbox.store_attachment(b"\x89PNG\r\n\x1a\nrest", "image/png", "a.png")
    async with http.get(f"{sandbox.base_url}/v1/attachments/{attachment_id}") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/png"
        assert await resp.read() == b"\x89PNG\r\n\x1a\nrest"
    sandbox.faults.attachment_500()
    assert (await call(http, sandbox, "GET", f"/v1/attachments/{attachment_id}"))[0] == 500
    assert (await call(http, sandbox, "DELETE", f"/v1/attachments/{attachment_id}"))[0] == 204
    assert (await call(http, sandbox, "DELETE", f"/v1/attachments/{attachment_id}"))[0] == 404


async def test_send_hang_is_dropped_on_stop(http: aiohttp.ClientSession) -> None:
    sb = Sandbox(BOT_NUMBER)
    await sb.start()
    phone = sb.add_phone("Alice", ALICE)
    sb.faults.send_hang()
    pending = asyncio.ensure_future(call(http, sb, "POST", "/v2/send", _send([phone.aci])))
    await asyncio.sleep(0.05)
    await sb.stop()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await asyncio.wait_for(pending, 2)
    assert phone.inbox == []
