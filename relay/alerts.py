"""Alerts to coordinators: neutral, rate-limited, and without content or identities."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from handlers.flows.catalog import Catalog
from relay.config import OrgConfig
from relay.config.schema import CoordinationChannel
from relay.outbox import Message, RecipientKind, enqueue
from relay.store.sealing import Sealer

BUCKET_SECONDS = 3600  # one alert per kind and subject per hour


def alert(session: Session, sealer: Sealer, cfg: OrgConfig, catalog: Catalog, msg_id: str,
          now: datetime, *, subject: str = "-", **values: str | int) -> None:
    """Queue catalog text `msg_id` for the coordinators, once an hour per id and subject."""
    text = catalog.render(msg_id, **values)
    bucket = int(now.timestamp()) // BUCKET_SECONDS
    key = f"alert:{msg_id}:{subject}:{bucket}"
    if cfg.coordination.channel is CoordinationChannel.GROUP:
        enqueue(session, sealer, Message(RecipientKind.COORDINATION, text, "alert"),
                key=key, now=now)
        return
    for coordinator in cfg.coordinators():
        enqueue(session, sealer, Message(RecipientKind.OFFICER, text, "alert",
                                         ref=coordinator.id),
                key=f"{key}:{coordinator.id}", now=now)
