"""Cases: creating one from a submitted draft, and the words officers and reporters see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from handlers.flows.catalog import Catalog
from handlers.flows.intake import Draft
from handlers.flows.text import clean_name, quote_block
from keys import epoch_label
from relay import audit
from relay.case_index import index_routing
from relay.config import OrgConfig
from relay.outbox import Message, RecipientKind, enqueue
from relay.refs import new_ref
from relay.scopes import Routing, route, targets
from relay.store.inserts import flush_new
from relay.store.models import Case, CaseMessage, ReporterLink
from relay.store.sealing import Sealer

CASES = "cases"
LINKS = "reporter_links"
MESSAGES = "case_messages"
OPEN_STATES = ("open", "waiting", "in-progress")


@dataclass(frozen=True)
class ReporterAddress:
    """How to reach a reporter. Sealed at rest, never shown to officers unless named."""

    aci: str
    number: str | None
    profile_name: str | None

    def to_json(self) -> dict[str, Any]:
        return {"aci": self.aci, "number": self.number, "profile_name": self.profile_name}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReporterAddress:
        return cls(data["aci"], data.get("number"), data.get("profile_name"))

    def __repr__(self) -> str:
        return "ReporterAddress(<sealed>)"


@dataclass(frozen=True)
class CaseView:
    """A case opened for use: clear fields plus the sealed details, decrypted."""

    id: str
    ref: str
    status: str
    scope_id: str
    category_id: str
    named: bool
    routing: Routing
    details: dict[str, Any]
    dek: bytes

    def __repr__(self) -> str:
        return f"CaseView(ref={self.ref!r}, <sealed>)"


_MESSAGES = cast("Table", CaseMessage.__table__)
_NEXT_SEQ = select(func.coalesce(func.max(_MESSAGES.c.seq), 0) + 1).where(
    _MESSAGES.c.case_id == bindparam("case_id"))
_INSERT_MESSAGE = insert(_MESSAGES)


def add_message(session: Session, sealer: Sealer, case: CaseView, kind: str, body: str,
                now: datetime, author: str | None = None) -> str:
    """Append a sealed message to a case, at once on the session's connection (Core
    statements built once; the case must exist, `flush_new` writes a new one first)."""
    msg_id = str(uuid.uuid4())
    conn = flush_new(session)
    seq = conn.execute(_NEXT_SEQ, {"case_id": case.id}).scalar_one()
    conn.execute(_INSERT_MESSAGE, {
        "id": msg_id, "case_id": case.id, "seq": seq, "kind": kind, "author": author,
        "created_at": now,
        "body_sealed": sealer.seal(case.dek, MESSAGES, msg_id, "body", body.encode()),
    })
    return msg_id


_ROUTING = "case_routing"  # session.info: case id -> (row, its details blob, routing)


def open_case(sealer: Sealer, row: Case) -> CaseView:
    dek = sealer.open_record(CASES, row.id, row.dek_wrapped)
    details = sealer.open_json(dek, CASES, row.id, "details", row.details_sealed)
    routing = Routing.from_json(details["routing"])
    session = object_session(row)
    if session is not None:  # kept for this session only: nothing clear outlives it
        session.info.setdefault(_ROUTING, {})[row.id] = (row, row.details_sealed, routing)
    return CaseView(row.id, row.ref, row.status, row.scope_id, row.category_id, row.named,
                    routing, details, dek)


def routing_of(sealer: Sealer, row: Case) -> Routing:
    """A case's routing as sealed in the row now. Opened once per session and blob: the
    send-time scope check of a row written in the same transaction decrypts nothing
    again, and finds the row in the session without a query (the entry holds it).
    Re-sealing assigns a new blob, so a changed routing is always opened afresh."""
    session = object_session(row)
    cached = session.info.get(_ROUTING, {}).get(row.id) if session is not None else None
    if cached is not None and cached[0] is row and cached[1] is row.details_sealed:
        return cast("Routing", cached[2])
    return open_case(sealer, row).routing


def case_by_ref(session: Session, sealer: Sealer, ref: str) -> CaseView | None:
    row = session.scalar(select(Case).where(Case.ref == ref))
    return None if row is None else open_case(sealer, row)


def open_cases_of(session: Session, sealer: Sealer, reporter_bidx: bytes) -> list[CaseView]:
    rows = session.scalars(
        select(Case)
        .join(ReporterLink, ReporterLink.case_id == Case.id)
        .where(ReporterLink.reporter_bidx == reporter_bidx, Case.status.in_(OPEN_STATES))
        .order_by(Case.created_at)
    )
    return [open_case(sealer, row) for row in rows]


def reporter_of(session: Session, sealer: Sealer, case_id: str) -> ReporterAddress | None:
    link = session.scalar(select(ReporterLink).where(ReporterLink.case_id == case_id))
    if link is None:
        return None
    dek = sealer.open_record(LINKS, link.id, link.dek_wrapped)
    return ReporterAddress.from_json(
        sealer.open_json(dek, LINKS, link.id, "identity", link.identity_sealed)
    )


def _reporter_line(cat: Catalog, named: bool, who: ReporterAddress) -> str:
    if not named:
        return cat.render("officer_reporter_anonymous")
    name = clean_name(who.profile_name or "") or cat.render("officer_no_profile_name")
    return cat.render("officer_reporter_named", name=name,
                      number=who.number or cat.render("officer_number_hidden"))


def case_message_text(cfg: OrgConfig, cat: Catalog, ref: str, draft: Draft,
                      who: ReporterAddress) -> str:
    def opt(value: str | None) -> str:
        return quote_block(value) if value else cat.render("officer_not_given")

    attachments = (
        cat.render("officer_attachments", count=len(draft.attachments),
                   kinds=", ".join(sorted({a.content_type for a in draft.attachments})))
        if draft.attachments else ""
    )
    category = (
        cfg.category(draft.category).label if draft.category and
        any(c.id == draft.category for c in cfg.categories) else cat.render("officer_other")
    )
    help_kind = cfg.help_kind(draft.help_kind).label if draft.help_kind else "—"
    scope = cfg.scope(draft.scope_id or "")
    return cat.render(
        "officer_case_message",
        ref=ref,
        category=category,
        help=help_kind,
        reporter=_reporter_line(cat, bool(draft.named), who),
        scope=scope.label,
        when=opt(draft.when),
        where=opt(draft.where),
        who=opt(draft.who),
        safe=cat.render("officer_safe_no") if draft.safe is False else
        cat.render("officer_safe_yes") if draft.safe else cat.render("officer_not_given"),
        checkin=cat.render("officer_yes") if draft.checkin_ok else cat.render("officer_no"),
        attachments=attachments,
        report=quote_block("\n\n".join(draft.narrative)),
    ).replace("\n\n\n", "\n\n")


@dataclass(frozen=True)
class Created:
    case_id: str
    ref: str
    row: Case


def create_case(session: Session, sealer: Sealer, cfg: OrgConfig, cat: Catalog, draft: Draft,
                who: ReporterAddress, now: datetime) -> Created:
    """Case, reporter link, first message, deliveries and receipt: one transaction."""
    routing = route(cfg, draft.scope_id or "", draft.chosen_officer, draft.excluded)
    case_id = str(uuid.uuid4())
    rk = sealer.new_record(CASES, case_id)
    category = next((c for c in cfg.categories if c.id == draft.category), None)
    details = {
        "routing": routing.to_json(),
        "narrative": list(draft.narrative),
        "when": draft.when, "where": draft.where, "who": draft.who,
        "safe": draft.safe,
        "attachments": [{"type": a.content_type, "size": a.size} for a in draft.attachments],
    }
    ref = _unique_ref(session)
    row = Case(
        id=case_id, ref=ref, created_at=now, updated_at=now,
        epoch=epoch_label(now, cfg.retention.epoch), status="open",
        scope_id=routing.scope_id, category_id=draft.category or "other",
        help_kind=draft.help_kind or "", named=bool(draft.named),
        immediate_review=bool(category and category.immediate_review),
        checkin_ok=bool(draft.checkin_ok), claimed_by=None, closed_at=None, safe=draft.safe,
        kek_id=rk.kek_id, dek_wrapped=rk.wrapped,
        details_sealed=sealer.seal_json(rk.dek, CASES, case_id, "details", details),
    )
    session.add(row)
    index_routing(sealer, row, routing, session)
    link_id = str(uuid.uuid4())
    lk = sealer.new_record(LINKS, link_id)
    session.add(ReporterLink(
        id=link_id, case_id=case_id, reporter_bidx=sealer.reporter_index(who.aci),
        created_at=now, kek_id=lk.kek_id, dek_wrapped=lk.wrapped,
        identity_sealed=sealer.seal_json(lk.dek, LINKS, link_id, "identity", who.to_json()),
    ))
    session.flush()
    view = CaseView(case_id, ref, "open", routing.scope_id, row.category_id, row.named,
                    routing, details, rk.dek)
    text = case_message_text(cfg, cat, ref, draft, who)
    add_message(session, sealer, view, "report", text, now)
    deliver_to_scope(session, sealer, cfg, view, text, "case", now, key=f"case:{case_id}")
    enqueue(session, sealer, Message(
        RecipientKind.REPORTER, cat.render("receipt", ref=ref, next_steps=cat.render("next_steps")),
        "receipt", address=who.aci, case_id=case_id,
    ), key=f"receipt:{case_id}", now=now)
    audit.append(session, "case.created", now, case_ref=ref, actor_ref="reporter",
                 outbox_id=None)
    return Created(case_id, ref, row)


def deliver_to_scope(session: Session, sealer: Sealer, cfg: OrgConfig, case: CaseView,
                     text: str, purpose: str, now: datetime, *, key: str) -> None:
    for target in targets(cfg, case.routing):
        kind = RecipientKind.GROUP if target.kind == "group" else RecipientKind.OFFICER
        enqueue(session, sealer, Message(kind, text, purpose, ref=target.ref, case_id=case.id,
                                         map_replies=True),
                key=f"{key}:{target.kind}:{target.ref}", now=now)


def _unique_ref(session: Session) -> str:
    for _ in range(20):
        ref = new_ref()
        if session.scalar(select(Case.id).where(Case.ref == ref)) is None:
            return ref
    raise IntegrityError("no free case reference", params=None, orig=Exception("ref"))


def await_answer(s: Session, sealer: Sealer, aci: str, flow: str, state: str,
                 data: dict[str, Any], now: datetime) -> None:
    """Make the reporter's next message an answer to a question the bot asked outside an
    intake (a check-in, a new officer after a recusal): a sealed conversation row that
    replaces whatever conversation they had."""
    from relay.store.models import Conversation

    bidx = sealer.reporter_index(aci)
    s.execute(delete(Conversation).where(Conversation.reporter_bidx == bidx))
    conv_id = str(uuid.uuid4())
    rk = sealer.new_record("conversations", conv_id)
    s.add(Conversation(
        id=conv_id, reporter_bidx=bidx, flow=flow, state=state, created_at=now,
        updated_at=now, version=1, kek_id=rk.kek_id, dek_wrapped=rk.wrapped,
        data_sealed=sealer.seal_json(rk.dek, "conversations", conv_id, "data", data),
        address_sealed=sealer.seal_json(rk.dek, "conversations", conv_id, "address",
                                        ReporterAddress(aci, None, None).to_json()),
    ))
    s.flush()


def remember_choice(s: Session, sealer: Sealer, aci: str, ref: str, options: list[str],
                    now: datetime) -> None:
    """Wait for a reporter's pick of a new officer (after a recusal)."""
    from relay.store.models import Conversation

    flow = s.scalar(select(Conversation.flow).where(
        Conversation.reporter_bidx == sealer.reporter_index(aci)))
    if flow == "intake":
        return  # never interrupt a report in progress; the officers can /handoff
    await_answer(s, sealer, aci, "choose", "officer", {"case": ref, "options": options}, now)


def save_routing(sealer: Sealer, row: Case, view: CaseView, routing: Routing) -> None:
    """Re-seal a case's details with new routing (recusal, a reporter's new choice)."""
    details = dict(view.details)
    details["routing"] = routing.to_json()
    row.details_sealed = sealer.seal_json(view.dek, CASES, row.id, "details", details)
    index_routing(sealer, row, routing)
