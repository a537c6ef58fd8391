"""Officer groups: the bot is an admin member, only the roster is in, the settings are safe.

Members are matched by ACI or number with `relay.groups.allowed_for`; whether relay holds
case messages is `relay.groups.is_clean`, the rule relay itself applies. Strangers are
counted, roster officers named by their config id: no numbers, ACIs or names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relay.config import OrgConfig, Scope, ScopeKind
from relay.config.schema import CoordinationChannel
from relay.doctor.context import Context
from relay.doctor.result import CheckResult, Status, fail, ok, skipped, warn
from relay.groups import GroupRoster, GroupState, Member, allowed_for, is_clean

ADMIN_PHONE = "the phone of an officer who is a group admin"
BY_ADMIN = f"from {ADMIN_PHONE}"
MAKE_ADMIN = f"{BY_ADMIN} (group settings → Members → the bot → Make admin)"


@dataclass(frozen=True)
class OfficerGroup:
    """A group relay sends to: a team scope's, or the coordinators' (scope id 'coordination').

    `scope` lists who may be in it; for the coordinators, every coordinator."""

    label: str
    scope: Scope
    team: bool
    create: str  # the relay command that creates it


def officer_groups(cfg: OrgConfig) -> list[OfficerGroup]:
    found = [OfficerGroup(s.id, s, team=True, create=f"relay groups create {s.id}")
             for s in cfg.scopes if s.kind is ScopeKind.TEAM]
    if cfg.coordination.channel is CoordinationChannel.GROUP:
        coordinators = tuple(o.id for o in cfg.coordinators())
        scope = Scope.model_construct(id="coordination", label="coordinators",
                                      kind=ScopeKind.TEAM, group_id=cfg.coordination.group_id,
                                      officers=coordinators, support=())
        found.append(OfficerGroup("coordination", scope, team=False,
                                  create="relay groups create --coordination"))
    return found


def _party(item: Any) -> Member:
    if isinstance(item, dict):
        number, uuid = item.get("number"), item.get("uuid")
        return (number if isinstance(number, str) and number else None,
                uuid.lower() if isinstance(uuid, str) and uuid else None)
    if isinstance(item, str) and item:
        return (item, None) if item.startswith("+") else (None, item.lower())
    return (None, None)


def _parties(entry: dict[str, Any], key: str) -> list[Member]:
    items = entry.get(key)
    return [_party(i) for i in items] if isinstance(items, list) else []


async def load_groups(ctx: Context) -> None:
    """Read every group the bot knows (`?expand=true`) once, into `ctx.groups`."""
    reply = await ctx.http.get(ctx.api(f"/v1/groups/{ctx.cfg.signal.bot_number}?expand=true"))
    entries = reply.ok_json()
    if not isinstance(entries, list):
        ctx.groups_error = (f"HTTP {reply.status}" if reply.answered
                            else f"no answer, {reply.error}")
        return
    ctx.groups = {e["id"]: e for e in entries
                  if isinstance(e, dict) and isinstance(e.get("id"), str)}


def _is_bot(ctx: Context, party: Member) -> bool:
    number, uuid = party
    bot_aci = ctx.cfg.signal.bot_aci
    return number == ctx.cfg.signal.bot_number or (uuid is not None and uuid == bot_aci)


def _skip_reason(ctx: Context) -> tuple[str, str] | None:
    if not ctx.api_ok:
        return "the REST API is not reachable", "api"
    if ctx.registered is False:
        return "signal.bot_number is not registered", "account"
    return None


def _find(ctx: Context, group: OfficerGroup, what: str) -> tuple[dict[str, Any] | None, str]:
    """(the REST API's entry for the group, why not) - the entry only if the bot is in it."""
    if group.scope.group_id is None:
        return None, f"{what} does not exist yet (no group_id)"
    if ctx.groups is None:
        return None, f"could not list the bot's groups ({ctx.groups_error})"
    entry = ctx.groups.get(group.scope.group_id)
    if entry is None:
        return None, f"the bot is not in {what} (the REST API does not list it)"
    if entry.get("member") is False:
        return None, f"the bot was removed from {what}"
    return entry, ""


def check_group(ctx: Context, group: OfficerGroup) -> CheckResult:
    """The group exists, the bot is in it and is an admin."""
    name = f"group:{group.label}"
    reason = _skip_reason(ctx)
    if reason is not None:
        return skipped(name, *reason)
    what = f"the group of scope '{group.label}'" if group.team else "the coordinators' group"
    replace = f"`{ctx.cmd(group.create + ' --replace')}`"
    entry, why = _find(ctx, group, what)
    if entry is None:
        if group.scope.group_id is None:
            fix = f"`{ctx.cmd(group.create)}`"
        elif ctx.groups is None:
            fix = "look at the signal-cli-rest-api log; is signal.bot_number registered?"
        else:
            fix = f"{replace}, or add the bot back {BY_ADMIN}"
        return fail(name, why, fix)
    if not any(_is_bot(ctx, p) for p in _parties(entry, "admins")):
        return fail(name, f"the bot is in {what} but not an admin",
                    f"make the bot an admin {MAKE_ADMIN}, or {replace}")
    return ok(name, f"the bot is an admin member of {what}")


@dataclass
class _Findings:
    """What the roster check found; fixes done on an admin's phone are listed together."""

    status: Status = Status.OK
    details: list[str] = field(default_factory=list)
    on_phone: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)

    def add(self, status: Status, detail: str, *, on_phone: str = "", fix: str = "") -> None:
        if status is Status.FAIL or self.status is Status.OK:
            self.status = status
        self.details.append(detail)
        self.on_phone += [on_phone] if on_phone else []
        self.fixes += [fix] if fix else []

    def result(self, name: str) -> CheckResult:
        detail = "; ".join(self.details)
        phone = [f"in the group's settings on {ADMIN_PHONE}: {', '.join(self.on_phone)}"]
        fix = "; ".join([*(phone if self.on_phone else []), *self.fixes])
        if self.status is Status.FAIL:
            return fail(name, detail, fix)
        if self.status is Status.WARN:
            return warn(name, detail, fix)
        return ok(name, detail)


def _people(ctx: Context, group: OfficerGroup, members: list[Member], pending: list[Member],
            found: _Findings) -> None:
    """Strangers (counted) and roster officers missing or not yet accepted (by id)."""
    cfg = ctx.cfg
    uuids, numbers = allowed_for(cfg, group.scope)

    def on_roster(party: Member) -> bool:
        number, uuid = party
        return (uuid is not None and uuid in uuids) or (number is not None and number in numbers)

    def holds(parties: list[Member], officer_id: str) -> bool:
        officer = cfg.officer(officer_id)
        return any(uuid == officer.aci or (number is not None and number == officer.number)
                   for number, uuid in parties)

    strangers = sum(not on_roster(p) for p in members)
    if strangers:
        found.add(Status.FAIL, f"{strangers} stranger(s) in the group",
                  on_phone="remove the strangers")
    invited = sum(not on_roster(p) for p in pending)
    if invited:
        found.add(Status.FAIL, f"{invited} stranger(s) invited or asking to join",
                  on_phone="revoke their invitations and deny their requests")
    ids = group.scope.officers
    waiting = [o for o in ids if holds(pending, o) and not holds(members, o)]
    if waiting:
        found.add(Status.WARN, f"not yet accepted: {', '.join(waiting)}",
                  fix="ask them to accept the group invitation in Signal")
    missing = [o for o in ids if not holds(members, o) and not holds(pending, o)]
    if missing:
        found.add(Status.WARN, f"roster officers not in the group: {', '.join(missing)}",
                  on_phone=f"add {', '.join(missing)}",
                  fix=f"or re-create the group: `{ctx.cmd(group.create + ' --replace')}`")


def _settings(entry: dict[str, Any], found: _Findings) -> None:
    """Only admins add members; no group link. (edit_group is not checked: the REST API
    reports the send-messages permission there, WIRE §3.3.)"""
    permissions = entry.get("permissions")
    add_members = permissions.get("add_members") if isinstance(permissions, dict) else None
    if add_members != "only-admins":
        found.add(Status.FAIL, f"add_members is '{add_members}': members can add anyone",
                  on_phone="set 'Add members' to 'Only admins'")
    if entry.get("invite_link"):
        found.add(Status.FAIL, "the group link is on: anyone who has it can ask to join",
                  on_phone="turn off the group link")


def check_roster(ctx: Context, group: OfficerGroup) -> CheckResult:
    """Only the roster is in (or invited to) the group; admin-only adds; no group link."""
    name = f"roster:{group.label}"
    reason = _skip_reason(ctx)
    if reason is not None:
        return skipped(name, *reason)
    entry, _ = _find(ctx, group, "")
    group_id = group.scope.group_id
    if entry is None or group_id is None:
        return skipped(name, "the bot cannot see this group", f"group:{group.label}")
    members = _parties(entry, "members")
    pending = [*_parties(entry, "pending_invites"), *_parties(entry, "pending_requests")]
    found = _Findings()
    _people(ctx, group, members, pending, found)
    _settings(entry, found)
    if not found.details:
        found.details.append(f"{len(members)} member(s), all on the roster; only admins add "
                             "members; no group link")
    cfg = ctx.cfg
    roster = GroupRoster(service=cfg.signal.service, number=cfg.signal.bot_number,
                         use_https=cfg.signal.connection == "https")
    roster.groups = {group_id: GroupState(tuple(members), tuple(pending))}
    if group.team and is_clean(roster, cfg, group.scope) is False:
        found.details.append("relay holds case messages to this group until it is clean")
    return found.result(name)
