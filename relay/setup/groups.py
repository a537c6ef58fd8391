"""Creating an officer group through signal-cli-rest-api (`relay groups create`).

The group is admin-controlled (only admins add members or edit it), has no invite link,
and holds exactly the scope's officers (or the coordinators). It is read back to check
the bot is admin and no link exists, and to see which officers are still invited:
Signal adds someone as a full member only when the bot knows their profile key, which
it learns once they have messaged the bot; everyone else must accept the invitation.

Nothing here prints or returns phone numbers or ACIs: officers are named by config id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from relay.config import Officer, OrgConfig, Role, ScopeKind
from relay.config.schema import PUBLIC_GROUP_ID, CoordinationChannel

GROUP_NAME_MAX = 32  # Signal clients' limit for a group name (characters)
GROUP_DESCRIPTION_MAX = 480  # ... and for a group description
PERMISSIONS = {"add_members": "only-admins", "edit_group": "only-admins",
               "send_messages": "every-member"}
_NO_PROFILE = "please first update your profile"
_NO_ACCOUNT = "Specified account does not exist"
_NOT_REGISTERED = re.compile(r"The user (\S+) is not registered")
_SECRETS = re.compile(
    r"\+?[0-9]{7,15}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class GroupSetupError(Exception):
    """One line: why the group could not be created and what to do. No config change."""


@dataclass(frozen=True)
class Target:
    """The group to create: for a team scope (`key` = scope id) or the coordinators."""

    key: str | None  # scope id; None for the coordination group
    name: str
    description: str
    officers: tuple[Officer, ...]
    current_group_id: str | None

    @property
    def what(self) -> str:
        return "the coordination group" if self.key is None else f"scope '{self.key}'"


@dataclass(frozen=True)
class Created:
    group_id: str
    members: tuple[str, ...]  # officer ids who are full members
    pending: tuple[str, ...]  # officer ids invited, not yet accepted
    missing: tuple[str, ...]  # officer ids in neither list
    problems: tuple[str, ...]  # what the read-back found wrong (bot not admin, a link)
    checked: bool  # False: the group could not be read back


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def scope_target(cfg: OrgConfig, scope_id: str, *, replace: bool) -> Target:
    scope = next((s for s in cfg.scopes if s.id == scope_id), None)
    if scope is None:
        known = ", ".join(s.id for s in cfg.scopes if s.kind is ScopeKind.TEAM) or "none"
        raise GroupSetupError(f"no scope '{scope_id}' in [[scopes]]; team scopes: {known}")
    if scope.kind is not ScopeKind.TEAM:
        raise GroupSetupError(
            f"scope '{scope_id}' is kind = \"{scope.kind.value}\": it is delivered one-to-one "
            "and has no group; only 'team' scopes get a group")
    if scope.group_id is not None and not replace:
        raise GroupSetupError(
            f"scope '{scope_id}' already has group_id; pass --replace to create a new group "
            "and put its id in the config instead")
    org = cfg.organisation.short_name or cfg.organisation.name
    description = (
        f"{org} conduct line: the officers of scope '{scope.id}'. relay delivers this "
        "scope's cases here. Only admins can add people; relay holds case messages while "
        "anyone not on the roster is in or invited to the group.")
    by_id = {o.id: o for o in cfg.officers}
    return Target(scope.id, shorten(scope.label, GROUP_NAME_MAX),
                  shorten(description, GROUP_DESCRIPTION_MAX),
                  tuple(by_id[o] for o in scope.officers if o in by_id), scope.group_id)


def coordination_target(cfg: OrgConfig, *, replace: bool) -> Target:
    coordination = cfg.coordination
    if coordination.channel is not CoordinationChannel.GROUP:
        raise GroupSetupError(
            'coordination.channel is "dm" (alerts go one-to-one); set channel = "group" '
            "in [coordination] first to use a coordinators' group")
    if coordination.group_id is not None and not replace:
        raise GroupSetupError(
            "coordination already has group_id; pass --replace to create a new group and "
            "put its id in the config instead")
    org = cfg.organisation.short_name or cfg.organisation.name
    description = (f"{org} conduct line: alerts for the coordinators. Alerts carry no "
                   "report text and no identities. Only admins can add people.")
    coordinators = tuple(o for o in cfg.officers if Role.COORDINATOR in o.roles)
    return Target(None, shorten(f"{org} coordinators", GROUP_NAME_MAX),
                  shorten(description, GROUP_DESCRIPTION_MAX), coordinators,
                  coordination.group_id)


async def create_group(cfg: OrgConfig, target: Target, *, config_flag: str = "",
                       wait_seconds: float = 20.0) -> Created:
    """Create the group and read it back. GroupSetupError (one line) if not created."""
    signal = cfg.signal
    scheme = "https" if signal.connection == "https" else "http"
    base = f"{scheme}://{signal.service}/v1/groups/{quote(signal.bot_number, safe='+')}"
    body = {
        "name": target.name,
        "description": target.description,
        "members": [o.aci for o in target.officers],
        "permissions": PERMISSIONS,
        "group_link": "disabled",
    }
    limit = aiohttp.ClientTimeout(total=wait_seconds)
    async with aiohttp.ClientSession(timeout=limit) as http:
        status, payload, text = await _call(http, "POST", base, signal.service, wait_seconds,
                                            json=body)
        if status != 201 or not isinstance(payload, dict):
            raise GroupSetupError(_refusal(cfg, target, status, text, config_flag))
        group_id = payload.get("id")
        if not isinstance(group_id, str) or not PUBLIC_GROUP_ID.match(group_id):
            raise GroupSetupError("signal-cli-rest-api answered without a valid group id; "
                                  "check its version (relay needs 0.101 or newer)")
        try:
            status, entry, _ = await _call(
                http, "GET", f"{base}/{quote(group_id, safe='')}?expand=true",
                signal.service, wait_seconds)
        except GroupSetupError:
            status, entry = 0, None
    if status != 200 or not isinstance(entry, dict):
        ids = tuple(o.id for o in target.officers)
        return Created(group_id, (), (), ids, (), checked=False)
    return _read_back(cfg, target, group_id, entry)


async def _call(http: aiohttp.ClientSession, method: str, url: str, service: str,
                wait_seconds: float, **kwargs: Any) -> tuple[int, Any, str]:
    try:
        async with http.request(method, url, **kwargs) as resp:
            text = await resp.text()
            try:
                payload = await resp.json(content_type=None) if text else None
            except ValueError:
                payload = None
            return resp.status, payload, text
    except TimeoutError:
        raise GroupSetupError(
            f"signal-cli-rest-api at {service} did not answer within {wait_seconds:g} s; "
            "check it is running (signal.service)") from None
    except aiohttp.ClientError as exc:
        raise GroupSetupError(
            f"cannot reach signal-cli-rest-api at {service} ({type(exc).__name__}); check "
            "signal.service and that the container is running") from None


def _refusal(cfg: OrgConfig, target: Target, status: int, text: str, config_flag: str) -> str:
    message = _error_text(text)
    if _NO_PROFILE in message:
        return ("the bot's Signal account has no profile name, which Signal needs to create "
                f"a group; run `relay profile set NAME{config_flag}` and try again")
    if _NO_ACCOUNT in message:
        return ("the bot's number (signal.bot_number) is not registered in "
                f"signal-cli-rest-api; run `relay register{config_flag}` first")
    unregistered = _NOT_REGISTERED.search(message)
    if unregistered is not None:
        who = unregistered.group(1).lower()
        officer = next((o for o in target.officers if o.aci == who), None)
        if officer is not None:
            return (f"officer '{officer.id}' is not a Signal account (Signal does not know "
                    "their aci); check their aci in [[officers]]")
    if status == 404:
        return (f"signal-cli-rest-api at {cfg.signal.service} has no groups API (HTTP 404); "
                "check signal.service points at signal-cli-rest-api 0.101 or newer")
    shown = _SECRETS.sub("…", message)[:200] or f"HTTP {status}"
    return f"signal-cli-rest-api refused to create the group (HTTP {status}): {shown}"


def _error_text(text: str) -> str:
    import json

    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, str):
        return error
    return text.strip()


def _uuid(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("uuid")
        return value.lower() if isinstance(value, str) and value else None
    if isinstance(item, str) and not item.startswith("+"):
        return item.lower()
    return None


def _number(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("number")
        return value if isinstance(value, str) and value else None
    return item if isinstance(item, str) and item.startswith("+") else None


def _read_back(cfg: OrgConfig, target: Target, group_id: str,
               entry: dict[str, Any]) -> Created:
    members = {_uuid(m) for m in entry.get("members", [])}
    pending = {_uuid(m) for m in entry.get("pending_invites", [])}
    admins = entry.get("admins", [])
    bot_aci = cfg.signal.bot_aci
    bot_admin = any(_number(a) == cfg.signal.bot_number
                    or (bot_aci is not None and _uuid(a) == bot_aci) for a in admins)
    problems = []
    if not bot_admin:
        problems.append("the bot is not an admin of the new group")
    if entry.get("invite_link"):
        problems.append("the new group has an invite link")
    permissions = entry.get("permissions", {})
    if isinstance(permissions, dict) and permissions.get("add_members") != "only-admins":
        problems.append("anyone in the new group can add members")
    # `permissions.edit_group` is not checked: the REST API mirrors send_messages there.
    return Created(
        group_id,
        tuple(o.id for o in target.officers if o.aci in members),
        tuple(o.id for o in target.officers if o.aci in pending),
        tuple(o.id for o in target.officers if o.aci not in members | pending),
        tuple(problems),
        checked=True,
    )
