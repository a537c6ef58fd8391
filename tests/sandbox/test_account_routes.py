"""Account setup routes: contacts, register/verify, registration lock, PIN, accounts,
device linking, and standalone ``auto_phones``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from relay.sandbox import Phone, Sandbox
from relay.sandbox.routes_account import CAPTCHA_REQUIRED, PIN_LOCKED
from tests.sandbox.conftest import ALICE_ACI, ALICE_NUMBER, BOT_ACI, BOT_NUMBER, call

CAPTCHA = "signalcaptcha://signal-hcaptcha.5fad97ac.registration.P1_token"


@pytest.fixture
async def fresh() -> AsyncIterator[Sandbox]:
    """A sandbox whose bot number is not an account yet."""
    sb = Sandbox(BOT_NUMBER, BOT_ACI, registered=False)
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


async def _json(http: aiohttp.ClientSession, sb: Sandbox, method: str, path: str,
                body: dict[str, object] | None = None) -> tuple[int, object]:  # fmt: skip
    status, text = await call(http, sb, method, path, body)
    return status, (json.loads(text) if text else None)


# -- contacts ---------------------------------------------------------------------------------
async def test_own_contact_carries_the_profile_name(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    path = f"/v1/contacts/{BOT_NUMBER}/{BOT_NUMBER}?all_recipients=true"
    status, entry = await _json(http, sandbox, "GET", path)
    assert status == 200
    assert isinstance(entry, dict)
    assert entry["uuid"] == BOT_ACI
    assert entry["number"] == BOT_NUMBER
    assert entry["profile"]["given_name"] == "Relay"
    assert list(entry) == [
        "number", "uuid", "name", "profile_name", "username", "color", "blocked",
        "message_expiration", "note", "profile", "given_name", "nickname",
    ]  # fmt: skip
    assert list(entry["profile"]) == [
        "given_name", "lastname", "about", "has_avatar", "last_updated_timestamp",
    ]  # fmt: skip
    assert entry["nickname"] == {"name": "", "given_name": "", "family_name": ""}

    put = {"name": "Conduct Team"}
    assert (await call(http, sandbox, "PUT", f"/v1/profiles/{BOT_NUMBER}", put))[0] == 204
    _, entry = await _json(http, sandbox, "GET", path)
    assert isinstance(entry, dict)
    assert entry["profile"]["given_name"] == "Conduct Team"
    by_aci = f"/v1/contacts/{BOT_NUMBER}/{BOT_ACI}?all_recipients=true"
    assert (await _json(http, sandbox, "GET", by_aci))[0] == 200


async def test_own_contact_without_profile_has_empty_given_name(
    http: aiohttp.ClientSession,
) -> None:
    async with Sandbox(BOT_NUMBER, BOT_ACI, bot_profile_name=None) as sb:
        path = f"/v1/contacts/{BOT_NUMBER}/{BOT_NUMBER}?all_recipients=true"
        status, entry = await _json(http, sb, "GET", path)
        assert status == 200
        assert isinstance(entry, dict)
        assert entry["profile"]["given_name"] == ""


async def test_own_account_is_listed_only_with_all_recipients(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, sandbox, "GET", f"/v1/contacts/{BOT_NUMBER}/{BOT_NUMBER}")
    assert status == 404
    assert json.loads(body) == {"error": f"No user with that id ({BOT_NUMBER}) found"}
    status, listed = await _json(http, sandbox, "GET", f"/v1/contacts/{BOT_NUMBER}")
    assert (status, listed) == (200, [])


async def test_seen_phones_are_contacts(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    stranger = sandbox.add_phone("Stranger", "+4917600000009")
    await alice.send("hello")
    status, listed = await _json(http, sandbox, "GET", f"/v1/contacts/{BOT_NUMBER}")
    assert status == 200
    assert isinstance(listed, list)
    assert [entry["uuid"] for entry in listed] == [ALICE_ACI]
    assert listed[0]["profile"]["given_name"] == "Alice"

    status, one = await _json(http, sandbox, "GET", f"/v1/contacts/{BOT_NUMBER}/{ALICE_NUMBER}")
    assert status == 200
    assert isinstance(one, dict)
    assert one["uuid"] == ALICE_ACI
    status, body = await call(http, sandbox, "GET", f"/v1/contacts/{BOT_NUMBER}/{stranger.aci}")
    assert status == 404
    assert json.loads(body)["error"] == f"No user with that id ({stranger.aci}) found"

    _, everyone = await _json(
        http, sandbox, "GET", f"/v1/contacts/{BOT_NUMBER}?all_recipients=true"
    )
    assert isinstance(everyone, list)
    assert [entry["uuid"] for entry in everyone] == [BOT_ACI, ALICE_ACI]


async def test_contacts_errors(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, sandbox, "GET", f"/v1/contacts/{BOT_NUMBER}?all_recipients=1")
    assert status == 400
    assert "all_recipients parameter needs to be either 'true' or 'false'" in body
    status, body = await call(http, sandbox, "GET", "/v1/contacts/+4900000000")
    assert (status, json.loads(body)) == (400, {"error": "Specified account does not exist"})


# -- unregistered account -----------------------------------------------------------------
async def test_unregistered_number_is_not_an_account(
    fresh: Sandbox, http: aiohttp.ClientSession
) -> None:
    assert await _json(http, fresh, "GET", "/v1/accounts") == (200, [])
    for method, path, body in [
        ("GET", f"/v1/groups/{BOT_NUMBER}", None),
        ("PUT", f"/v1/profiles/{BOT_NUMBER}", {"name": "Relay"}),
        ("GET", f"/v1/contacts/{BOT_NUMBER}/{BOT_NUMBER}?all_recipients=true", None),
        ("POST", f"/v1/accounts/{BOT_NUMBER}/pin", {"pin": "1234"}),
    ]:
        status, text = await call(http, fresh, method, path, body)
        assert (status, json.loads(text)) == (
            400,
            {"error": "Specified account does not exist"},
        ), path


async def test_register_needs_a_captcha_then_verify_registers(
    fresh: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await _json(http, fresh, "POST", f"/v1/register/{BOT_NUMBER}")
    assert (status, body) == (400, {"error": CAPTCHA_REQUIRED})
    assert fresh.verification_code is None
    status, body = await _json(
        http, fresh, "POST", f"/v1/register/{BOT_NUMBER}", {"captcha": "nonsense"}
    )
    assert (status, body) == (400, {"error": "Invalid captcha given."})

    status, _ = await _json(
        http, fresh, "POST", f"/v1/register/{BOT_NUMBER}", {"captcha": CAPTCHA, "use_voice": True}
    )
    assert status == 201
    code = fresh.verification_code
    assert code is not None
    assert len(code) == 6
    assert code.isdigit()
    _, over_http = await _json(http, fresh, "GET", "/_sandbox/verification-code")
    assert over_http == {"code": code}

    wrong = "000000" if code != "000000" else "111111"
    status, _ = await _json(http, fresh, "POST", f"/v1/register/{BOT_NUMBER}/verify/{wrong}")
    assert status == 400
    assert await _json(http, fresh, "GET", "/v1/accounts") == (200, [])

    dashed = f"{code[:3]}-{code[3:]}"
    status, _ = await _json(http, fresh, "POST", f"/v1/register/{BOT_NUMBER}/verify/{dashed}")
    assert status == 201
    assert await _json(http, fresh, "GET", "/v1/accounts") == (200, [BOT_NUMBER])
    assert fresh.verification_code is None
    # A fresh account has no profile name: groups cannot be created until it is set (F16).
    status, body = await _json(http, fresh, "POST", f"/v1/groups/{BOT_NUMBER}", {"name": "G"})
    assert (status, body) == (
        400,
        {"error": "Cannot create group - please first update your profile."},
    )

    status, body = await _json(
        http, fresh, "POST", f"/v1/register/{BOT_NUMBER}", {"captcha": CAPTCHA}
    )
    assert status == 400
    assert body == {"error": "Failed to register: Account is already registered (IOException)"}


async def test_captcha_fault_lifts_the_requirement(
    fresh: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(http, fresh, "POST", "/_sandbox/faults/captcha", {"required": False})
    assert status == 204
    assert (await call(http, fresh, "POST", f"/v1/register/{BOT_NUMBER}"))[0] == 201


async def test_register_and_verify_body_errors(fresh: Sandbox, http: aiohttp.ClientSession) -> None:
    for path, body in [
        (f"/v1/register/{BOT_NUMBER}", '{"captcha": 5}'),
        (f"/v1/register/{BOT_NUMBER}", "{} trailing"),
        (f"/v1/register/{BOT_NUMBER}/verify/123456", '{"pin": 1234}'),
    ]:
        status, text = await call(http, fresh, "POST", path, body)
        assert (status, json.loads(text)) == (
            400,
            {"error": "Couldn't process request - invalid request."},
        )
    status, text = await call(http, fresh, "POST", f"/v1/register/{BOT_NUMBER}/verify/123456")
    assert (status, json.loads(text)) == (
        400,
        {"error": "Verify error: No registration verification session active"},
    )


async def test_registration_lock(fresh: Sandbox, http: aiohttp.ClientSession) -> None:
    fresh.faults.registration_lock("4321")
    fresh.faults.captcha(required=False)
    assert (await call(http, fresh, "POST", f"/v1/register/{BOT_NUMBER}"))[0] == 201
    verify = f"/v1/register/{BOT_NUMBER}/verify/{fresh.verification_code}"
    assert await _json(http, fresh, "POST", verify) == (400, {"error": PIN_LOCKED})
    status, body = await _json(http, fresh, "POST", verify, {"pin": "0000"})
    assert (status, body) == (
        400,
        {"error": "Verification failed! Invalid pin, tries remaining: 9"},
    )
    assert (await call(http, fresh, "POST", verify, {"pin": "4321"}))[0] == 201
    assert await _json(http, fresh, "GET", "/v1/accounts") == (200, [BOT_NUMBER])


async def test_pin_set_locks_the_next_registration(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    pin_path = f"/v1/accounts/{BOT_NUMBER}/pin"
    assert (await call(http, sandbox, "POST", pin_path, {"pin": "2468"}))[0] == 201
    assert sandbox.registration_lock_pin() == "2468"
    status, text = await call(http, sandbox, "POST", pin_path, "nope")
    assert (status, json.loads(text)) == (
        400,
        {"error": "Couldn't process request - invalid request"},
    )
    assert (await call(http, sandbox, "DELETE", pin_path))[0] == 204
    assert sandbox.registration_lock_pin() is None


# -- linking --------------------------------------------------------------------------------
async def test_qrcode_link_then_scan_makes_a_linked_device(
    fresh: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await _json(http, fresh, "GET", "/v1/qrcodelink")
    assert (status, body) == (400, {"error": "Please provide a name for the device"})
    status, body = await _json(http, fresh, "GET", "/v1/qrcodelink/raw")
    assert (status, body) == (400, {"error": "Please provide a name for the device"})
    status, body = await _json(
        http, fresh, "GET", "/v1/qrcodelink?device_name=relay&qrcode_version=x"
    )
    assert (status, body) == (
        400,
        {"error": "The qrcode_version parameter needs to be an integer!"},
    )

    async with http.get(fresh.base_url + "/v1/qrcodelink?device_name=relay") as resp:
        assert resp.status == 200
        assert resp.content_type == "image/png"
        assert (await resp.read()).startswith(b"\x89PNG\r\n\x1a\n")
    status, body = await _json(http, fresh, "GET", "/v1/qrcodelink/raw?device_name=relay")
    assert status == 200
    assert isinstance(body, dict)
    assert body["device_link_uri"].startswith("sgnl://linkdevice?uuid=")
    assert "&pub_key=" in body["device_link_uri"]
    assert await _json(http, fresh, "GET", "/v1/accounts") == (200, [])

    assert (await call(http, fresh, "POST", "/_sandbox/link/complete", {}))[0] == 204
    assert await _json(http, fresh, "GET", "/v1/accounts") == (200, [BOT_NUMBER])
    _, state = await _json(http, fresh, "GET", "/_sandbox/account")
    assert isinstance(state, dict)
    assert (state["linked"], state["device_name"]) == (True, "relay")
    status, body = await _json(http, fresh, "POST", f"/v1/accounts/{BOT_NUMBER}/pin", {"pin": "1"})
    assert (status, body) == (400, {"error": "This command doesn't work on linked devices."})
    status, _ = await _json(http, fresh, "POST", "/_sandbox/link/complete", {})
    assert status == 400


# -- standalone -----------------------------------------------------------------------------
async def test_auto_phones_lets_groups_name_unknown_members(
    http: aiohttp.ClientSession,
) -> None:
    newcomer_aci = "5d1f3a2b-0c4e-4f6a-8b7c-9d0e1f2a3b4c"
    create = {"name": "Officers", "members": ["+4917655555555", newcomer_aci.upper()]}
    async with Sandbox(BOT_NUMBER, BOT_ACI) as strict:
        status, text = await call(http, strict, "POST", f"/v1/groups/{BOT_NUMBER}", create)
        assert (status, json.loads(text)) == (
            400,
            {"error": "The user +4917655555555 is not registered."},
        )
    async with Sandbox(BOT_NUMBER, BOT_ACI, auto_phones=True) as sb:
        status, text = await call(http, sb, "POST", f"/v1/groups/{BOT_NUMBER}", create)
        assert status == 201
        group_id = json.loads(text)["id"]
        group = sb.find_group(group_id)
        assert group is not None
        assert group.pending == []
        by_number = sb.find_phone("+4917655555555")
        by_aci = sb.find_phone(newcomer_aci)
        assert by_number is not None
        assert by_aci is not None
        assert group.has_member(by_number)
        assert group.has_member(by_aci)
        status, _ = await call(http, sb, "POST", f"/v1/groups/{BOT_NUMBER}",
                               {"name": "Bad", "members": ["someone.01"]})  # fmt: skip
        assert status == 400
