"""Group ids and the ``/v1/groups`` surface."""

from __future__ import annotations

import json

import aiohttp
import pytest
from signalbot import ChatTestCase, GroupEntry

from relay.sandbox import Phone, Sandbox
from relay.sandbox.ids import new_internal_group_id, public_group_id, recipient_kind
from tests.sandbox.conftest import BOT_NUMBER, INTERNAL_ID, PUBLIC_ID, call

N = BOT_NUMBER


def _error(text: str) -> str:
    return json.dumps({"error": text}, separators=(",", ":"))


def test_public_id_is_double_base64_of_32_bytes() -> None:
    assert public_group_id(INTERNAL_ID) == PUBLIC_ID
    internal = new_internal_group_id()
    assert len(internal) == 44
    assert internal.endswith("=")
    public = public_group_id(internal)
    assert len(public) == len("group.") + 60
    assert recipient_kind(public) == ("group", None)


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("group.c2hvcnQ=", ("group", "Invalid identifier group.c2hvcnQ=")),  # "short" not b64
        ("group.YzJodmNuUT0=", ("group", "Invalid Signal group size (5")),
        ("group." + "x" * 20, ("group", "Invalid identifier group." + "x" * 20)),
        ("group.abc", ("username", None)),
        ("+4917612345678", ("number", None)),
        ("7a3c2f1e-8b9d-4e6f-a1b2-c3d4e5f60718", ("number", None)),
        ("alice.01", ("username", None)),
    ],
)
def test_recipient_kinds(recipient: str, expected: tuple[str, str | None]) -> None:
    assert recipient_kind(recipient) == expected


def test_signalbot_test_utils_group_id_is_rejected() -> None:
    kind, problem = recipient_kind(ChatTestCase.group_id)
    assert kind == "group"
    assert problem is not None
    assert public_group_id(ChatTestCase.group_internal_id) != ChatTestCase.group_id


async def test_send_rejects_bad_group_ids(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    body = {"message": "x", "number": N, "recipients": ["group.YzJodmNuUT0="]}
    assert await call(http, sandbox, "POST", "/v2/send", body) == (
        400,
        _error("Invalid Signal group size (5"),
    )
    assert await call(http, sandbox, "PUT", f"/v1/groups/{N}/group.!!!", {}) == (
        400,
        _error("Invalid group id"),
    )


async def test_group_entries(
    sandbox: Sandbox, alice: Phone, reporter: Phone, http: aiohttp.ClientSession
) -> None:
    grp = sandbox.create_group(
        "Officers",
        members=[alice, reporter],
        admins=[alice],
        internal_id=INTERNAL_ID,
        send_messages="only-admins",
    )
    status, body = await call(http, sandbox, "GET", f"/v1/groups/{N}")
    assert status == 200
    [entry] = json.loads(body)
    assert list(entry) == [
        "name", "description", "id", "internal_id", "members", "blocked", "member",
        "pending_invites", "pending_requests", "invite_link", "admins", "permissions",
    ]  # fmt: skip
    assert entry["id"] == PUBLIC_ID
    assert entry["members"] == [N, alice.number, reporter.aci]  # hidden number: UUID
    assert entry["admins"] == [N, alice.number]
    # upstream bug: edit_group mirrors send_messages
    assert entry["permissions"] == {
        "add_members": "every-member",
        "edit_group": "only-admins",
        "send_messages": "only-admins",
    }
    GroupEntry.model_validate(entry)

    _, body = await call(http, sandbox, "GET", f"/v1/groups/{N}?expand=true")
    expanded = json.loads(body)[0]
    assert expanded["members"][2] == {"number": "", "uuid": reporter.aci}
    assert await call(http, sandbox, "GET", f"/v1/groups/{N}?expand=yes") == (
        400,
        _error("Couldn't process request - expand parameter needs to be either 'true' or 'false'"),
    )
    assert (await call(http, sandbox, "GET", f"/v1/groups/{N}/{grp.id}"))[0] == 200
    assert await call(http, sandbox, "GET", f"/v1/groups/{N}/group.nope") == (
        404,
        _error("No group with that id found"),
    )


async def test_create_update_members_admins(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    stranger = sandbox.add_phone("Stranger", "+4917622222222", profile_key_known=False)
    assert await call(
        http,
        sandbox,
        "POST",
        f"/v1/groups/{N}",
        {"name": "New", "permissions": {"add_members": "admins"}},
    ) == (
        400,
        _error(
            "Invalid add members permission provided - only 'every-member' and "
            "'only-admins' allowed!"
        ),
    )
    status, body = await call(
        http, sandbox, "POST", f"/v1/groups/{N}", {"name": "New", "members": [alice.aci]}
    )
    assert status == 201
    group_id = json.loads(body)["id"]
    grp = sandbox.find_group(group_id)
    assert grp is not None
    assert grp.has_member(alice)

    path = f"/v1/groups/{N}/{group_id}"
    assert await call(http, sandbox, "POST", path + "/members", {"members": []}) == (
        400,
        _error("Couldn't process request - group members missing"),
    )
    assert (await call(http, sandbox, "DELETE", path + "/members", {"members": []}))[0] == 204
    assert (await call(http, sandbox, "POST", path + "/members", {"members": [stranger.aci]}))[
        0
    ] == 204
    assert grp.has_pending(stranger)  # unknown profile key: pending invite
    revision = grp.revision
    assert (await call(http, sandbox, "POST", path + "/admins", {"admins": [stranger.aci]}))[
        0
    ] == 204
    assert not grp.has_admin(stranger)  # promoting a non-member: 204, no effect
    assert grp.revision == revision
    missing = "group.QUFFQ0F3UUZCZ2NJQ1FvTERBME9EeEFSRWhNVUZSWVhHQmthR3h3ZEhoOD0="
    assert await call(
        http, sandbox, "POST", f"/v1/groups/{N}/{missing}/members", {"members": [alice.aci]}
    ) == (404, _error(f"No group with that group id ({missing}) found"))

    assert (await call(http, sandbox, "PUT", path, {"name": "Renamed"}))[0] == 204
    assert grp.name == "Renamed"
    assert (await call(http, sandbox, "POST", path + "/quit"))[0] == 204
    _, body = await call(http, sandbox, "GET", path)
    assert json.loads(body)["member"] is False
    assert (await call(http, sandbox, "DELETE", path)) == (200, "")


async def test_phone_side_group_changes_emit_updates(sandbox: Sandbox, alice: Phone) -> None:
    bob = sandbox.add_phone("Bob", "+4917633333333")
    grp = sandbox.create_group("Officers", members=[alice])
    await sandbox.add_member(grp, bob, by=alice)
    await sandbox.remove_member(grp, sandbox.bot, by=alice)
    assert grp.revision == 2
    updates = [json.loads(f.text)["envelope"]["dataMessage"] for f in sandbox.frames]
    assert [u["groupInfo"]["type"] for u in updates] == ["UPDATE", "UPDATE"]
    assert [u["groupInfo"]["revision"] for u in updates] == [1, 2]
    assert all(u["message"] is None for u in updates)
    await alice.send_group(grp, "bot no longer here")
    assert len(sandbox.frames) == 2  # the removed bot gets no more group traffic
