"""Officer and coordinator commands beyond replying: reading, noting, status, recusal,
hand-over, and the coordinators' overview. Each answers with one short confirmation or a
precise error, and records an audit row (ids only) in the same transaction.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from handlers.flows.catalog import Catalog
from handlers.flows.text import quote_block
from relay import audit, timers
from relay.case_index import CaseListing
from relay.cases import MESSAGES, add_message, save_routing
from relay.config import OrgConfig, Role, ScopeKind
from relay.escalation import OPEN, age_text
from relay.lifecycle import CaseLifecycle
from relay.officers import Call, OfficerDesk
from relay.scopes import Routing, members
from relay.store.models import Case, CaseMessage
from relay.store.sealing import Sealer

STATUSES = ("open", "waiting", "in-progress", "resolved")
THREAD_LIMIT = 30
PAGE_SIZE = 20  # /cases: one page fits a phone screen or two
MAX_PAGE = 10_000


class CaseCommands:
    def __init__(self, cfg: OrgConfig, sealer: Sealer, catalog: Catalog, desk: OfficerDesk,
                 lifecycle: CaseLifecycle) -> None:
        self._cfg = cfg
        self._sealer = sealer
        self._cat = catalog
        self._desk = desk
        self._lifecycle = lifecycle
        self._listing = CaseListing(cfg, sealer)
        for name, handler in {
            "/cases": self.cases, "/case": self.case, "/note": self.note,
            "/status": self.status, "/reopen": self.reopen, "/recuse": self.recuse,
            "/handoff": self.handoff, "/escalations": self.escalations, "/stats": self.stats,
            "/roster": self.roster,
        }.items():
            desk.register(name, handler)

    def _name(self, officer_id: str | None) -> str:
        return next((o.display_name for o in self._cfg.officers if o.id == officer_id),
                    officer_id or "?")

    def _category(self, category_id: str) -> str:
        return next((c.label for c in self._cfg.categories if c.id == category_id),
                    self._cat.render("officer_other"))

    # -- reading --------------------------------------------------------------------------
    def cases(self, call: Call) -> None:
        """`/cases [page]`: the open cases this officer may act on here, newest first,
        PAGE_SIZE a page, decided from clear columns (`relay.case_index`)."""
        arg = call.args.split(" ")[0]
        if arg and not (arg.isdecimal() and 0 < int(arg) <= MAX_PAGE):
            self._desk.answer(call, self._cat.render("officer_usage_cases"))
            return
        page_no = int(arg) if arg else 1
        page = self._listing.open_cases_for(call.s, call.officer, call.where.scope,
                                            limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
        if not page.cases:
            pages = -(-page.total // PAGE_SIZE)
            self._desk.answer(call, self._cat.render(
                "officer_cases_past_end", page=page_no, count=page.total, pages=pages)
                if page.total else self._cat.render("officer_cases_none"))
            return
        count = f"{page.total}+" if page.capped else str(page.total)
        lines = [self._cat.render("officer_cases_header", count=count)]
        for row in page.cases:
            claimed = (self._cat.render("officer_claimed_by", name=self._name(row.claimed_by))
                       if row.claimed_by else self._cat.render("officer_unclaimed_label"))
            lines.append(self._cat.render(
                "officer_cases_row", ref=row.ref, age=age_text(call.now - row.created_at),
                category=self._category(row.category_id), claimed=claimed,
                last=age_text(call.now - row.updated_at)))
        shown = (page_no - 1) * PAGE_SIZE + len(page.cases)
        if shown < page.total or page.capped:
            lines.append(self._cat.render("officer_cases_more", first=shown - len(page.cases) + 1,
                                          last=shown, next=page_no + 1))
        self._desk.answer(call, "\n".join(lines))

    def case(self, call: Call) -> None:
        found = self._desk.case_for(call, call.args.split(" ")[0])
        if found is None:
            return
        row, view = found
        entries = call.s.scalars(select(CaseMessage).where(CaseMessage.case_id == row.id)
                                 .order_by(CaseMessage.seq.desc()).limit(THREAD_LIMIT)).all()
        parts = []
        for entry in reversed(entries):
            body = self._sealer.open(view.dek, MESSAGES, entry.id, "body",
                                     entry.body_sealed).decode()
            who = {
                "report": self._cat.render("officer_who_reporter"),
                "reporter": self._cat.render("officer_who_reporter"),
                "officer": self._name(entry.author),
                "note": self._cat.render("officer_who_note", name=self._name(entry.author)),
            }.get(entry.kind, self._cat.render("officer_who_system"))
            shown = body if entry.kind == "report" else quote_block(body)
            parts.append(self._cat.render("officer_thread_entry", who=who, body=shown,
                                          when=age_text(call.now - entry.created_at)))
        self._desk.answer(call, self._cat.render("officer_case_thread", ref=row.ref,
                                                 status=row.status, thread="\n\n".join(parts)))
        audit.append(call.s, "case.read", call.now, case_ref=row.ref,
                     actor_ref=call.officer.id)

    # -- changing -------------------------------------------------------------------------
    def note(self, call: Call) -> None:
        ref_text, _, text = call.args.partition(" ")
        if not text.strip():
            self._desk.answer(call, self._cat.render("officer_usage_note"))
            return
        found = self._desk.case_for(call, ref_text)
        if found is None:
            return
        row, view = found
        add_message(call.s, self._sealer, view, "note", text.strip(), call.now,
                    author=call.officer.id)
        row.updated_at = call.now
        audit.append(call.s, "case.note", call.now, case_ref=row.ref, actor_ref=call.officer.id)
        self._desk.answer(call, self._cat.render("officer_note_added", ref=row.ref))

    def status(self, call: Call) -> None:
        ref_text, _, value = call.args.partition(" ")
        value = value.strip().lower()
        if value not in STATUSES:
            self._desk.answer(call, self._cat.render("officer_usage_status"))
            return
        found = self._desk.case_for(call, ref_text)
        if found is None:
            return
        row, _ = found
        row.status = value
        row.updated_at = call.now
        audit.append(call.s, f"case.status_{value.replace('-', '_')}", call.now,
                     case_ref=row.ref, actor_ref=call.officer.id)
        self._desk.answer(call, self._cat.render("officer_status_set", ref=row.ref,
                                                 status=value))

    def reopen(self, call: Call) -> None:
        found = self._desk.case_for(call, call.args.split(" ")[0])
        if found is None:
            return
        row, _ = found
        row.status = "open"
        row.closed_at = None
        row.updated_at = call.now
        self._lifecycle.restart_timers(call.s, row, call.now)
        text = self._cat.render("officer_reopened", name=call.officer.display_name, ref=row.ref)
        self._lifecycle.tell_scope(call.s, row, text, call.now, call.key)
        self._lifecycle.tell_reporter(call.s, row, self._cat.render("reporter_reopened",
                                                                    ref=row.ref),
                                      call.now, call.key)
        audit.append(call.s, "case.reopened", call.now, case_ref=row.ref,
                     actor_ref=call.officer.id)

    def recuse(self, call: Call) -> None:
        found = self._desk.case_for(call, call.args.split(" ")[0])
        if found is None:
            return
        row, view = found
        old = view.routing
        remaining = [m for m in members(self._cfg, old) if m != call.officer.id]
        if not remaining:
            self._desk.answer(call, self._cat.render("officer_recuse_last", ref=row.ref))
            return
        scope = self._cfg.scope(old.scope_id)
        chosen_left = scope.kind is ScopeKind.CHOSEN and old.chosen == call.officer.id
        support = old.support
        if scope.kind is ScopeKind.CHOSEN and old.support == call.officer.id:
            support = next((p for p in scope.support if p not in {old.chosen, call.officer.id}
                            and p not in old.excluded), None)
        routing = Routing(old.scope_id, None if chosen_left else old.chosen, support,
                          tuple(sorted({*old.excluded, call.officer.id})))
        if row.claimed_by == call.officer.id:
            row.claimed_by = None
            row.claimed_at = None
        save_routing(self._sealer, row, view, routing)
        row.updated_at = call.now
        text = self._cat.render("officer_recused", name=call.officer.display_name, ref=row.ref)
        self._desk.answer(call, text)
        self._lifecycle.tell_scope(call.s, row, text, call.now, f"{call.key}:scope")
        if chosen_left:
            self._lifecycle.ask_reporter_to_choose(call.s, row, routing, call.now, call.key)
        audit.append(call.s, "case.recused", call.now, case_ref=row.ref,
                     actor_ref=call.officer.id)

    def handoff(self, call: Call) -> None:
        ref_text, _, target = call.args.partition(" ")
        target = target.strip().lstrip("@").strip().lower()
        if not target:
            self._desk.answer(call, self._cat.render("officer_usage_handoff"))
            return
        other = next((o for o in self._cfg.officers
                      if target in (o.id.lower(), o.display_name.lower())
                      or o.display_name.lower().startswith(target + " ")), None)
        if other is None:
            self._desk.answer(call, self._cat.render("officer_usage_handoff"))
            return
        found = self._desk.case_for(call, ref_text)
        if found is None:
            return
        row, view = found
        if other.id not in members(self._cfg, view.routing):
            self._desk.answer(call, self._cat.render("officer_handoff_not_member",
                                                     other=other.display_name, ref=row.ref))
            return
        row.claimed_by = other.id
        row.claimed_at = call.now
        row.updated_at = call.now
        timers.cancel(call.s, row.id, timers.TimerKind.SLA)
        text = self._cat.render("officer_handoff_done", name=call.officer.display_name,
                                ref=row.ref, other=other.display_name)
        self._lifecycle.tell_scope(call.s, row, text, call.now, call.key)
        audit.append(call.s, "case.handoff", call.now, case_ref=row.ref,
                     actor_ref=call.officer.id)

    # -- coordinators ---------------------------------------------------------------------
    def _coordinator(self, call: Call) -> bool:
        if Role.COORDINATOR in call.officer.roles:
            return True
        self._desk.answer(call, self._cat.render("officer_not_coordinator"))
        return False

    def escalations(self, call: Call) -> None:
        if not self._coordinator(call):
            return
        rows = call.s.scalars(select(Case).where(Case.status.in_(OPEN),
                                                 Case.claimed_by.is_(None),
                                                 Case.acked_at.is_(None))
                              .order_by(Case.created_at)).all()
        lines = []
        for row in rows:
            rule = ("officer_rule_immediate" if row.immediate_review else
                    "officer_rule_distress" if row.safe is False else "officer_rule_unclaimed")
            lines.append(self._cat.render("officer_escalation_row", ref=row.ref,
                                          rule=self._cat.render(rule), scope=row.scope_id,
                                          age=age_text(call.now - row.created_at)))
        self._desk.answer(call, self._cat.render("officer_escalations", rows="\n".join(lines))
                          if lines else self._cat.render("officer_escalations_none"))

    def stats(self, call: Call) -> None:
        if not self._coordinator(call):
            return
        rows = call.s.execute(select(Case.status, Case.category_id, Case.created_at)).all()
        states = Counter(status for status, _, _ in rows)
        categories = Counter(category for _, category, _ in rows)
        ages: Counter[str] = Counter()
        for status, _, created in rows:
            if status in OPEN:
                days = (call.now - created).days
                ages["<1d" if days < 1 else "1-7d" if days < 7 else "1-4w" if days < 28
                     else ">4w"] += 1

        def fmt(counter: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"

        self._desk.answer(call, self._cat.render("officer_stats", states=fmt(states),
                                                 categories=fmt(categories), ages=fmt(ages)))

    def roster(self, call: Call) -> None:
        if not self._coordinator(call):
            return
        rows = "\n".join(self._cat.render("officer_roster_row", name=o.display_name,
                                          roles=", ".join(r.value for r in o.roles))
                         for o in self._cfg.officers)
        self._desk.answer(call, self._cat.render("officer_roster", rows=rows))
