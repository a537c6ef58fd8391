"""Alerts to coordinators: neutral, rate-limited, and without content or identities."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from handlers.flows.catalog import Catalog
from relay.cases import open_case
from relay.config import OrgConfig
from relay.config.schema import CoordinationChannel
from relay.outbox import Message, RecipientKind, enqueue
from relay.store.models import Case
from relay.store.sealing import Sealer

BUCKET_SECONDS = 3600  # one alert per kind and subject per hour


def excluded_from(session: Session, sealer: Sealer, case_ids: tuple[str, ...]) -> set[str]:
    """Officers the reporter(s) said must not see these cases."""
    excluded: set[str] = set()
    for case_id in case_ids:
        row = session.get(Case, case_id)
        if row is not None:
            excluded.update(open_case(sealer, row).routing.excluded)
    return excluded


def alert(session: Session, sealer: Sealer, cfg: OrgConfig, catalog: Catalog, msg_id: str,
          now: datetime, *, subject: str = "-", cases: tuple[str, ...] = (),
          **values: str | int) -> None:
    """Queue catalog text `msg_id` for the coordinators, once an hour per id and subject.

    A coordinator the reporter excluded from a case hears nothing about it, not even that
    it exists: the alert then goes 1:1 to the other coordinators instead of to the group.
    """
    text = catalog.render(msg_id, **values)
    bucket = int(now.timestamp()) // BUCKET_SECONDS
    key = f"alert:{msg_id}:{subject}:{bucket}"
    excluded = excluded_from(session, sealer, cases)
    if cfg.coordination.channel is CoordinationChannel.GROUP and not excluded:
        enqueue(session, sealer, Message(RecipientKind.COORDINATION, text, "alert"),
                key=key, now=now)
        return
    for coordinator in cfg.coordinators():
        if coordinator.id in excluded:
            continue
        enqueue(session, sealer, Message(RecipientKind.OFFICER, text, "alert",
                                         ref=coordinator.id),
                key=f"{key}:{coordinator.id}", now=now)
