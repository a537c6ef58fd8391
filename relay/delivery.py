"""Where outbox rows go, decided at send time, and what a failed send means for people.

Scope is re-validated here, against the config as it is now, before any case content
leaves: an officer removed from the roster or excluded by the reporter gets nothing.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from handlers.flows.catalog import Catalog
from relay.alerts import alert
from relay.cases import routing_of
from relay.config import OrgConfig
from relay.gateway import SendFailure
from relay.groups import GroupRoster, is_clean
from relay.outbox import Claimed, Destination, FailureHook, RecipientKind, Status
from relay.scopes import Target, may_receive
from relay.store.models import Case
from relay.store.sealing import Sealer


def _who(cfg: OrgConfig, catalog: Catalog, s: Session, item: Claimed,
         member: str | None) -> str:
    """Who a failed send was for, in words fit for an alert: never an identity."""
    if member is not None or item.kind is RecipientKind.OFFICER:
        officer = next((o for o in cfg.officers
                        if (member is not None and member in (o.aci, o.number))
                        or (member is None and o.id == item.ref)), None)
        return catalog.render("alert_who_officer",
                              name=officer.display_name if officer else "an officer")
    if item.kind in (RecipientKind.GROUP, RecipientKind.COORDINATION):
        return catalog.render("alert_who_group", scope=item.ref or "coordinators")
    row = s.get(Case, item.case_id) if item.case_id else None
    return catalog.render("alert_who_reporter", ref=row.ref if row else "an unsent report")


class Destinations:
    """The outbox's resolver: where a claimed row goes now, or None to hold it."""

    def __init__(self, cfg: OrgConfig, sealer: Sealer, roster: GroupRoster | None = None,
                 catalog: Catalog | None = None) -> None:
        self._cfg = cfg
        self._sealer = sealer
        self._roster = roster
        self._catalog = catalog

    def _in_scope(self, s: Session, item: Claimed) -> bool:
        """Case content only to who may see the case, by the routing as it is now."""
        if item.case_id is None or item.kind in (RecipientKind.REPORTER,
                                                 RecipientKind.COORDINATION):
            return True
        row = s.get(Case, item.case_id)
        if row is None:
            return False
        target = Target("group" if item.kind is RecipientKind.GROUP else "officer",
                        item.ref or "")
        return may_receive(self._cfg, routing_of(self._sealer, row), target)

    def _group(self, s: Session, item: Claimed) -> Destination | None:
        scope = next((sc for sc in self._cfg.scopes if sc.id == item.ref), None)
        if scope is None or scope.group_id is None:
            return None
        clean = is_clean(self._roster, self._cfg, scope) if self._roster is not None else True
        if clean is False and self._catalog is not None:
            alert(s, self._sealer, self._cfg, self._catalog, "alert_stranger_in_group",
                  self._sealer.now(), subject=scope.id, scope=scope.id)
        # held until the group is clean again (or known: the bot must be a member)
        return Destination(scope.group_id, scope.group_id) if clean else None

    def __call__(self, s: Session, item: Claimed) -> Destination | None:
        if not self._in_scope(s, item):
            return None
        if item.kind is RecipientKind.REPORTER:
            return Destination(item.address, None) if item.address else None
        if item.kind is RecipientKind.COORDINATION:
            coordinators = self._cfg.coordination.group_id
            return Destination(coordinators, None) if coordinators else None
        if item.kind is RecipientKind.GROUP:
            return self._group(s, item)
        officer = next((o for o in self._cfg.officers if o.id == item.ref), None)
        return None if officer is None else Destination(officer.aci, officer.id)


def failure_hook(cfg: OrgConfig, sealer: Sealer, catalog: Catalog) -> FailureHook:
    """What a failed or partial send means for people: coordinators hear about it (without
    content or identities), and an unreachable reporter gets no more check-ins."""

    def hook(s: Session, item: Claimed, failure: SendFailure, status: Status,
             member: str | None) -> None:
        if item.purpose == "alert":
            return  # an alert about an alert would loop
        now = sealer.now()
        who = _who(cfg, catalog, s, item, member)
        # the subject keys the alert's rate limit and is stored in clear: never a number or
        # UUID, so a group member's identity becomes a keyed digest
        subject = (sealer.dedupe("alert-subject", member).hex()[:32] if member is not None
                   else item.ref or item.case_id or item.id)
        cases = (item.case_id,) if item.case_id else ()
        if failure is SendFailure.UNTRUSTED:
            alert(s, sealer, cfg, catalog, "alert_held_untrusted", now, subject=subject,
                  cases=cases, who=who)
        elif failure is SendFailure.UNREGISTERED:
            reporter = item.kind is RecipientKind.REPORTER and member is None
            if reporter and item.case_id is not None:
                s.execute(update(Case).where(Case.id == item.case_id)
                          .values(checkin_ok=False))
            detail = catalog.render("alert_unreachable_reporter" if reporter
                                    else "alert_unreachable_officer")
            alert(s, sealer, cfg, catalog, "alert_unreachable", now, subject=subject,
                  cases=cases, who=who, detail=detail)
        elif status is Status.FAILED:
            alert(s, sealer, cfg, catalog, "alert_send_failed", now, subject=subject,
                  cases=cases, who=who, attempts=item.attempts)

    return hook
