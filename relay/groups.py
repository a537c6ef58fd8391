"""Officer-group hygiene: who is really in each group, compared by Signal ACI.

A stranger, a pending invite or a pending join request in an officer group means case
content could reach someone who is not on the roster: relay holds case messages to that
group, tells the coordinators, and resumes when the group is clean again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from relay.config import OrgConfig, Scope

Member = tuple[str | None, str | None]  # (number, uuid)


@dataclass(frozen=True)
class GroupState:
    members: tuple[Member, ...]
    pending: tuple[Member, ...]  # invites and join requests: not yet in, but about to be


def _member(item: Any) -> Member:
    if isinstance(item, dict):
        number, uuid = item.get("number"), item.get("uuid")
        return (number if isinstance(number, str) and number else None,
                uuid.lower() if isinstance(uuid, str) and uuid else None)
    if isinstance(item, str):
        return (item, None) if item.startswith("+") else (None, item.lower())
    return (None, None)


class GroupRoster:
    """The REST API's view of every group the bot is in (`?expand=true`), refreshed at
    start-up, after every group update frame and periodically."""

    def __init__(self, *, service: str, number: str, use_https: bool,
                 timeout: float = 20.0) -> None:
        scheme = "https" if use_https else "http"
        self._url = f"{scheme}://{service}/v1/groups/{number}?expand=true"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.groups: dict[str, GroupState] = {}
        self.loaded = False

    async def refresh(self) -> bool:
        """Re-read the groups. False (and the old view kept) when the API did not answer."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self._url) as resp:
                if resp.status != 200:
                    return False
                entries = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
        groups: dict[str, GroupState] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            if entry.get("member") is False:
                continue  # the bot was removed: nothing can be sent there anyway
            pending = [*entry.get("pending_invites", []), *entry.get("pending_requests", [])]
            groups[entry["id"]] = GroupState(
                tuple(_member(m) for m in entry.get("members", [])),
                tuple(_member(m) for m in pending))
        self.groups = groups
        self.loaded = True
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def allowed_for(cfg: OrgConfig, scope: Scope) -> tuple[set[str], set[str]]:
    """(uuids, numbers) that may be in a scope's group: the bot and the scope's officers."""
    uuids = {cfg.signal.bot_aci} if cfg.signal.bot_aci else set()
    numbers = {cfg.signal.bot_number}
    for officer in cfg.officers:
        if officer.id in scope.officers:
            uuids.add(officer.aci)
            if officer.number:
                numbers.add(officer.number)
    return uuids, numbers


def is_clean(roster: GroupRoster, cfg: OrgConfig, scope: Scope) -> bool | None:
    """True if only the roster is in (or invited to) the group; False if anyone else is;
    None if the group is unknown (the bot is not a member, or it was never read)."""
    if scope.group_id is None or scope.group_id not in roster.groups:
        return None
    uuids, numbers = allowed_for(cfg, scope)
    state = roster.groups[scope.group_id]

    def on_roster(member: Member) -> bool:
        number, uuid = member
        return (uuid is not None and uuid in uuids) or (number is not None and number in numbers)

    # A pending invite or join request is someone about to be in: a stranger there holds
    # content like a stranger inside. A roster officer who has not yet accepted the
    # invitation (a new group, `relay groups create`) may read the cases anyway.
    return all(on_roster(m) for m in (*state.members, *state.pending))
