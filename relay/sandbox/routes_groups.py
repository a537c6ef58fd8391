"""``/v1/groups`` routes (WIRE §3.3): listing, create, update, members, admins,
quit/join/block, delete. Texts are the REST API's (or signal-cli's, passed through).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from relay.sandbox.ids import new_internal_group_id, single_decode_group_id
from relay.sandbox.rest import Schema, empty_ok, fail, json_response, no_content, read_body
from relay.sandbox.state import GROUP_LINK_STATES, PERMISSIONS, Party, SandboxGroup

if TYPE_CHECKING:
    from relay.sandbox.server import Sandbox

EXPAND_ERROR = "Couldn't process request - expand parameter needs to be either 'true' or 'false'"
PERMISSION_ERRORS = {
    "add_members": "Invalid add members permission provided - only 'every-member' and "
    "'only-admins' allowed!",
    "edit_group": "Invalid edit group permissions provided - only 'every-member' and "
    "'only-admins' allowed!",
    "send_messages": "Invalid send messages permissions provided - only 'every-member' and "
    "'only-admins' allowed!",
}
GROUP_LINK_ERROR = (
    "Invalid group link provided - only 'enabled', 'enabled-with-approval' and 'disabled' allowed!"
)
# A group change the Signal server refuses (e.g. a non-admin removing members); the exact
# wording is unverified (WIRE §3.3).
PATCH_REFUSED = "Failed to send message: null (GroupPatchNotAcceptedException)"
MAX_MEMBERS = 1001

_PERMISSIONS_SCHEMA: Schema = {"add_members": "str", "edit_group": "str", "send_messages": "str"}
_CREATE_SCHEMA: Schema = {
    "name": "str",
    "members": "str_list",
    "description": "str",
    "permissions": _PERMISSIONS_SCHEMA,
    "group_link": "str",
    "expiration_time": "int",
}
_UPDATE_SCHEMA: Schema = {
    "base64_avatar": "str",
    "description": "str",
    "name": "str",
    "expiration_time": "int",
    "group_link": "str",
    "permissions": _PERMISSIONS_SCHEMA,
}


def add_routes(app: web.Application, sandbox: Sandbox) -> None:
    """Register the group routes for ``sandbox``."""
    routes = _GroupRoutes(sandbox)
    router = app.router
    router.add_get("/v1/groups/{number}", routes.list_groups)
    router.add_post("/v1/groups/{number}", routes.create_group)
    router.add_get("/v1/groups/{number}/{groupid}", routes.get_group)
    router.add_put("/v1/groups/{number}/{groupid}", routes.update_group)
    router.add_delete("/v1/groups/{number}/{groupid}", routes.delete_group)
    router.add_post("/v1/groups/{number}/{groupid}/members", routes.add_members)
    router.add_delete("/v1/groups/{number}/{groupid}/members", routes.remove_members)
    router.add_post("/v1/groups/{number}/{groupid}/admins", routes.add_admins)
    router.add_delete("/v1/groups/{number}/{groupid}/admins", routes.remove_admins)
    router.add_post("/v1/groups/{number}/{groupid}/quit", routes.quit_group)
    router.add_post("/v1/groups/{number}/{groupid}/join", routes.join_group)
    router.add_post("/v1/groups/{number}/{groupid}/block", routes.block_group)


class _GroupRoutes:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    # -- listing ---------------------------------------------------------------------------
    def _entries(self, *, expand: bool) -> list[dict[str, Any]]:
        bot = self.sandbox.bot
        entries = [g.entry(bot, expand=expand) for g in self.sandbox.groups if g.known_to_bot]
        if self.sandbox.faults.take("group_entry_missing_member"):
            for entry in entries:
                entry.pop("member", None)
        return entries

    async def list_groups(self, request: web.Request) -> web.Response:
        expand = request.query.get("expand", "false")
        if expand not in ("true", "false"):
            raise fail(400, EXPAND_ERROR)
        self.sandbox.check_account(request.match_info["number"])
        failing = self.sandbox.faults.take("groups_list_400")
        if failing is not None:
            raise fail(400, str(failing.value))
        return json_response(200, self._entries(expand=expand == "true"))

    async def get_group(self, request: web.Request) -> web.Response:
        expand = request.query.get("expand", "false")
        if expand not in ("true", "false"):
            raise fail(400, EXPAND_ERROR)
        self.sandbox.check_account(request.match_info["number"])
        if self.sandbox.faults.take("groups_get_404"):
            raise fail(404, "No group with that id found")
        wanted = request.match_info["groupid"]
        for entry in self._entries(expand=expand == "true"):
            if entry["id"] == wanted:
                return json_response(200, entry)
        raise fail(404, "No group with that id found")

    def _listed(self, group_id: str) -> SandboxGroup | None:
        """Go ``GetGroup``: an exact match on the public id among listed groups."""
        for group in self.sandbox.groups:
            if group.known_to_bot and group.id == group_id:
                return group
        return None

    # -- create / update -------------------------------------------------------------------
    async def create_group(self, request: web.Request) -> web.Response:
        body = await read_body(request, _CREATE_SCHEMA)
        permissions = body.get("permissions", {})
        for key, text in PERMISSION_ERRORS.items():
            value = permissions.get(key, "")
            if value and value not in PERMISSIONS:
                raise fail(400, text)
        link = body.get("group_link", "")
        if link and link not in GROUP_LINK_STATES:
            raise fail(400, GROUP_LINK_ERROR)
        self.sandbox.check_account(request.match_info["number"])
        if self.sandbox.bot.profile_name is None or self.sandbox.faults.take("no_profile_name"):
            raise fail(400, "Cannot create group - please first update your profile.")
        resolved, missing = self._resolve(body.get("members", []))
        if missing is not None:
            raise fail(400, f"The user {missing} is not registered.")
        group = SandboxGroup(
            internal_id=new_internal_group_id(),
            name=body.get("name", ""),
            description=body.get("description", ""),
            members=[self.sandbox.bot],
            admins=[self.sandbox.bot],
            add_members=permissions.get("add_members") or "every-member",
            edit_group=permissions.get("edit_group") or "every-member",
            send_messages=permissions.get("send_messages") or "every-member",
            expiration_seconds=body.get("expiration_time", 0),
        )
        _set_link(group, link)
        for party in resolved:
            _add(group, party)
        self.sandbox.groups.append(group)
        return json_response(201, {"id": group.id})

    async def update_group(self, request: web.Request) -> web.Response:
        internal = single_decode_group_id(request.match_info["groupid"])
        if internal is None:
            raise fail(400, "Invalid group id")
        body = await read_body(request, _UPDATE_SCHEMA)
        link = body.get("group_link")
        if link is not None and link not in GROUP_LINK_STATES:
            raise fail(400, GROUP_LINK_ERROR)
        permissions = body.get("permissions", {})
        for key, text in PERMISSION_ERRORS.items():
            value = permissions.get(key, "")
            if value and value not in PERMISSIONS:
                raise fail(400, text)
        self.sandbox.check_account(request.match_info["number"])
        group = self.sandbox.bot_group(internal)
        if group is None:
            return no_content()  # the REST API does no existence check (WIRE §3.3)
        bot = self.sandbox.bot
        if not group.has_member(bot):
            raise fail(400, _not_member(group))
        admin_only = group.edit_group == "only-admins" or bool(permissions)
        if admin_only and not group.has_admin(bot):
            raise fail(400, PATCH_REFUSED)
        _apply_update(group, body, link, permissions)
        group.revision += 1
        return no_content()

    # -- members / admins ------------------------------------------------------------------
    async def add_members(self, request: web.Request) -> web.Response:
        body = await read_body(request, {"members": "str_list"})
        members = body.get("members", [])
        if not members:
            raise fail(400, "Couldn't process request - group members missing")
        return self._change_members(request, members, add=True)

    async def remove_members(self, request: web.Request) -> web.Response:
        body = await read_body(request, {"members": "str_list"})
        members = body.get("members", [])
        if not members:
            return no_content()
        return self._change_members(request, members, add=False)

    def _change_members(
        self, request: web.Request, members: list[str], *, add: bool
    ) -> web.Response:
        group_id = request.match_info["groupid"]
        self.sandbox.check_account(request.match_info["number"])
        group = self._listed(group_id)
        if group is None:
            raise fail(404, f"No group with that group id ({group_id}) found")
        bot = self.sandbox.bot
        if not group.has_member(bot):
            raise fail(400, _not_member(group))
        resolved, missing = self._resolve(members)
        if missing is not None:
            raise fail(400, f"The user {missing} is not registered.")
        needs_admin = not add or group.add_members == "only-admins"
        if needs_admin and not group.has_admin(bot):
            raise fail(400, PATCH_REFUSED)
        changed = False
        for party in resolved:
            changed = (_add(group, party) if add else group.discard(party)) or changed
        if add and len(group.members) + len(group.pending) > MAX_MEMBERS:
            raise fail(400, PATCH_REFUSED)
        if changed:
            group.revision += 1
        return no_content()

    async def add_admins(self, request: web.Request) -> web.Response:
        return await self._change_admins(request, promote=True)

    async def remove_admins(self, request: web.Request) -> web.Response:
        return await self._change_admins(request, promote=False)

    async def _change_admins(self, request: web.Request, *, promote: bool) -> web.Response:
        body = await read_body(request, {"admins": "str_list"})
        admins = body.get("admins", [])
        if not admins:
            return no_content()
        group_id = request.match_info["groupid"]
        self.sandbox.check_account(request.match_info["number"])
        group = self._listed(group_id)
        if group is None:
            raise fail(404, f"No group with that group id ({group_id}) found")
        resolved, missing = self._resolve(admins)
        if missing is not None:
            raise fail(400, f"The user {missing} is not registered.")
        if not group.has_admin(self.sandbox.bot):
            raise fail(400, PATCH_REFUSED)
        changed = False
        for party in resolved:
            if promote and group.has_member(party) and not group.has_admin(party):
                group.admins.append(party)  # promoting a non-member: 204, no effect
                changed = True
            elif not promote and group.has_admin(party):
                group.admins = [p for p in group.admins if p is not party]
                changed = True
        if changed:
            group.revision += 1
        return no_content()

    # -- quit / join / block / delete ------------------------------------------------------
    def _by_single_decode(self, request: web.Request) -> SandboxGroup:
        internal = single_decode_group_id(request.match_info["groupid"])
        if internal is None:
            raise fail(400, "Invalid group id")
        self.sandbox.check_account(request.match_info["number"])
        group = self.sandbox.bot_group(internal)
        if group is None:
            raise fail(400, f"Failed to send to group: Group not found: {internal}")
        return group

    async def quit_group(self, request: web.Request) -> web.Response:
        self._leave(self._by_single_decode(request))
        return no_content()

    async def delete_group(self, request: web.Request) -> web.Response:
        self._leave(self._by_single_decode(request))  # REST sends quitGroup, no --delete
        return empty_ok()

    def _leave(self, group: SandboxGroup) -> None:
        bot = self.sandbox.bot
        if group.has_member(bot):
            group.discard(bot)
            group.revision += 1

    async def join_group(self, request: web.Request) -> web.Response:
        group = self._by_single_decode(request)
        bot = self.sandbox.bot
        if group.has_pending(bot):
            group.pending = [p for p in group.pending if p is not bot]
            group.members.append(bot)
            group.revision += 1
        return no_content()

    async def block_group(self, request: web.Request) -> web.Response:
        self._by_single_decode(request).blocked = True
        return no_content()

    # -- helpers ---------------------------------------------------------------------------
    def _resolve(self, identifiers: list[str]) -> tuple[list[Party], str | None]:
        parties: list[Party] = []
        for identifier in identifiers:
            party = self.sandbox.resolve_party(identifier)  # auto_phones may create one
            if party is None:
                return [], identifier
            parties.append(party)
        return parties, None


def _add(group: SandboxGroup, party: Party) -> bool:
    """Add a member, or a pending invite when its profile key is unknown."""
    if group.has_member(party) or group.has_pending(party):
        return False
    known = getattr(party, "profile_key_known", True)
    (group.members if known else group.pending).append(party)
    return True


def _set_link(group: SandboxGroup, link: str) -> None:
    if link in ("enabled", "enabled-with-approval"):
        group.invite_link = "https://signal.group/#" + secrets.token_urlsafe(48)
    elif link == "disabled":
        group.invite_link = ""


def _apply_update(
    group: SandboxGroup, body: dict[str, Any], link: str | None, permissions: dict[str, Any]
) -> None:
    if "name" in body:
        group.name = body["name"]
    if "description" in body:
        group.description = body["description"]
    if body.get("expiration_time"):  # omitempty: 0 is dropped (WIRE §3.3)
        group.expiration_seconds = body["expiration_time"]
    if link is not None:
        _set_link(group, link)
    for key in ("add_members", "edit_group", "send_messages"):
        if permissions.get(key):
            setattr(group, key, permissions[key])


def _not_member(group: SandboxGroup) -> str:
    return f"User is not a member in group: {group.name} ({group.internal_id})"
