"""Escalation rules: what makes relay alert the coordinators, and what an alert may say.

An alert carries the case reference, the rule, the scope, the age and whether someone
claimed the case: never report text, category names or who reported.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.flows.catalog import Catalog
from relay.alerts import alert
from relay.config import OrgConfig
from relay.store.models import Case, ReporterLink
from relay.store.sealing import Sealer

OPEN = ("open", "waiting", "in-progress")


def age_text(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


class Escalations:
    def __init__(self, cfg: OrgConfig, sealer: Sealer, catalog: Catalog) -> None:
        self._cfg = cfg
        self._sealer = sealer
        self._cat = catalog

    def _facts(self, case: Case, now: datetime) -> dict[str, str]:
        scope = next((sc.id for sc in self._cfg.scopes if sc.id == case.scope_id), "?")
        claimed = self._cat.render("alert_claimed_yes" if case.claimed_by or case.acked_at
                                   else "alert_claimed_no")
        return {"ref": case.ref, "scope": scope, "age": age_text(now - case.created_at),
                "claimed": claimed}

    def at_submission(self, s: Session, case: Case, who: str | None, now: datetime) -> None:
        rules = self._cfg.escalation
        if rules.immediate_review and case.immediate_review:
            alert(s, self._sealer, self._cfg, self._cat, "alert_immediate_review", now,
                  subject=case.id, cases=(case.id,), **self._facts(case, now))
        if rules.reporter_distress and case.safe is False:
            self.distress(s, case, now)
        if rules.same_person and who and who.strip():
            self._same_person(s, case, who, now)

    def distress(self, s: Session, case: Case, now: datetime) -> None:
        if self._cfg.escalation.reporter_distress:
            alert(s, self._sealer, self._cfg, self._cat, "alert_distress", now,
                  subject=case.id, cases=(case.id,), **self._facts(case, now))

    def unclaimed(self, s: Session, case: Case, now: datetime) -> None:
        facts = self._facts(case, now)
        del facts["claimed"]
        alert(s, self._sealer, self._cfg, self._cat, "alert_unclaimed", now,
              subject=f"{case.id}:{int(now.timestamp())}", cases=(case.id,), **facts)

    def _same_person(self, s: Session, case: Case, who: str, now: datetime) -> None:
        """Compared through a keyed blind index, never plaintext; reporters learn nothing."""
        try:
            index = self._sealer.name_index(who)
        except ValueError:
            return  # nothing usable to compare (empty after normalising)
        case.who_bidx = index
        mine = s.scalar(select(ReporterLink.reporter_bidx).where(ReporterLink.case_id == case.id))
        others = s.execute(
            select(Case.id, Case.ref, ReporterLink.reporter_bidx)
            .join(ReporterLink, ReporterLink.case_id == Case.id)
            .where(Case.who_bidx == index, Case.id != case.id, Case.status.in_(OPEN))
        ).all()
        for other_id, other_ref, other_reporter in others:
            if other_reporter != mine:  # the same reporter twice is not corroboration
                alert(s, self._sealer, self._cfg, self._cat, "alert_same_person", now,
                      subject=f"{case.id}:{other_ref}", cases=(case.id, other_id),
                      ref=case.ref, other=other_ref)
