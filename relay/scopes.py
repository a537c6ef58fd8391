"""Who may see a case: routing chosen at intake, re-validated at every delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.config import OrgConfig, ScopeKind


@dataclass(frozen=True)
class Routing:
    scope_id: str
    chosen: str | None
    support: str | None
    excluded: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.scope_id, "chosen": self.chosen, "support": self.support,
                "excluded": list(self.excluded)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Routing:
        return cls(data["scope"], data.get("chosen"), data.get("support"),
                   tuple(data.get("excluded", ())))


@dataclass(frozen=True)
class Target:
    kind: str  # "group" (ref = scope id) or "officer" (ref = officer id)
    ref: str


class NoRecipientError(Exception):
    """Exclusions leave nobody to receive the case."""


def route(cfg: OrgConfig, scope_id: str, chosen: str | None, excluded: tuple[str, ...]) -> Routing:
    scope = cfg.scope(scope_id)
    excluded_set = set(excluded)
    support = None
    if scope.kind is ScopeKind.CHOSEN:
        if chosen is None or chosen not in scope.officers or chosen in excluded_set:
            raise NoRecipientError
        support = next(
            (s for s in scope.support if s != chosen and s not in excluded_set), None
        )
    routing = Routing(scope_id, chosen, support, tuple(sorted(excluded_set)))
    if not members(cfg, routing):
        raise NoRecipientError
    return routing


def members(cfg: OrgConfig, routing: Routing) -> tuple[str, ...]:
    """Officer ids who may see and act on the case."""
    scope = cfg.scope(routing.scope_id)
    known = {o.id for o in cfg.officers}
    if scope.kind is ScopeKind.CHOSEN:
        people = [p for p in (routing.chosen, routing.support) if p is not None]
    else:
        people = list(scope.officers)
    return tuple(p for p in dict.fromkeys(people) if p in known and p not in routing.excluded)


def targets(cfg: OrgConfig, routing: Routing) -> tuple[Target, ...]:
    """Where case content goes. A team with exclusions cannot use its group."""
    scope = cfg.scope(routing.scope_id)
    if scope.kind is ScopeKind.TEAM and not routing.excluded:
        return (Target("group", scope.id),)
    return tuple(Target("officer", officer_id) for officer_id in members(cfg, routing))


def may_receive(cfg: OrgConfig, routing: Routing, target: Target) -> bool:
    """Re-validation at send time, against the config as it is now."""
    if target.kind == "group":
        scope = cfg.scope(routing.scope_id)
        return scope.kind is ScopeKind.TEAM and not routing.excluded and scope.group_id is not None
    return target.ref in members(cfg, routing)
