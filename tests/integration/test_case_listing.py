"""`/cases` from clear columns (`relay.case_index`) lists exactly the open cases the
officer may act on where they asked, as `OfficerDesk.may_act` decides it by decrypting:
for every officer and place, with exclusions, recusals, cases made before the listing
index existed, and after the config changed. Real SQLite files and PostgreSQL.
"""

from __future__ import annotations

import copy
import random
import tomllib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from handlers.events import Sender, TextMessage
from handlers.flows.catalog import Catalog
from handlers.flows.intake import Draft
from keys import Keyring
from relay import case_index
from relay.app import Relay, build
from relay.case_index import CaseListing
from relay.cases import ReporterAddress, create_case, open_case, save_routing
from relay.clock import FakeClock
from relay.config import OrgConfig, parse_config
from relay.officers import OfficerDesk, Where
from relay.sandbox.ids import single_decode_group_id
from relay.scopes import NoRecipientError, Routing
from relay.store.models import Case, CaseOfficerTag, OutboxRow
from relay.store.sealing import Sealer
from tests.integration.test_rotation import EXAMPLE

OPS_GROUP = "group.b3BzLWdyb3VwLWlkLWZvci10ZXN0cy1vbmx5LTAwMDAwMDAwMDAwMDAwMDA="
STATUSES = ("open", "waiting", "in-progress", "resolved", "closed")


def _config(change: Any = None) -> OrgConfig:
    data = tomllib.loads(EXAMPLE.read_text("utf-8"))
    data["scopes"].append({"id": "ops", "label": "The operations team", "kind": "team",
                           "group_id": OPS_GROUP, "officers": ["rc-devi", "rc-ines"]})
    if change is not None:
        change(data)
    return parse_config(copy.deepcopy(data), "test")


def _cases(sessions: sessionmaker[Session], sealer: Sealer, cfg: OrgConfig,
           clock: FakeClock, count: int) -> None:
    """Cases in every scope with random exclusions and statuses; some recused, some
    un-indexed as if made before revision 0002."""
    rng = random.Random(8)
    catalog = Catalog(cfg.texts)
    officers = [o.id for o in cfg.officers]
    made = 0
    while made < count:
        scope = rng.choice(cfg.scopes)
        chosen = rng.choice(scope.officers) if scope.kind == "chosen" else None
        excluded = tuple(rng.sample(officers, rng.choice((0, 0, 1, 2))))
        draft = Draft(named=False, help_kind="support", category="conflict",
                      scope_id=scope.id, chosen_officer=chosen, excluded=excluded,
                      narrative=("listing test",), safe=True, checkin_ok=False)
        who = ReporterAddress(f"00000000-0000-4000-8000-{made:012d}", None, None)
        clock.advance(minutes=rng.randint(1, 90))
        try:
            with sessions.begin() as s:
                created = create_case(s, sealer, cfg, catalog, draft, who, clock.now())
                row = created.row
                row.status = rng.choice(STATUSES)
                if rng.random() < 0.2:  # a recusal: the officer is excluded from now on
                    view = open_case(sealer, row)
                    old = view.routing
                    leaving = rng.choice(officers)
                    save_routing(sealer, row, view, Routing(
                        old.scope_id, None if old.chosen == leaving else old.chosen,
                        None if old.support == leaving else old.support,
                        tuple(sorted({*old.excluded, leaving}))))
                if rng.random() < 0.15:  # made before the listing index existed
                    s.flush()
                    s.execute(delete(CaseOfficerTag).where(CaseOfficerTag.case_id == row.id))
                    s.execute(update(Case).where(Case.id == row.id)
                              .values(has_exclusions=None))
        except NoRecipientError:
            continue
        made += 1


def _places(cfg: OrgConfig) -> list[Where]:
    teams = [Where(scope=sc, dm=False) for sc in cfg.scopes if sc.group_id is not None]
    return [Where(scope=None, dm=True), Where(scope=None, dm=False, coordination=True),
            *teams]


def _expected(s: Session, sealer: Sealer, desk: OfficerDesk, cfg: OrgConfig, officer_id: str,
              where: Where) -> list[str]:
    officer = cfg.officer(officer_id)
    rows = s.scalars(select(Case).where(Case.status.in_(("open", "waiting", "in-progress")))
                     .order_by(Case.created_at.desc(), Case.id.desc())).all()
    return [r.ref for r in rows if desk.may_act(open_case(sealer, r), officer, where)]


def _listed(s: Session, sealer: Sealer, cfg: OrgConfig, officer_id: str, where: Where,
            size: int) -> tuple[list[str], int]:
    refs: list[str] = []
    offset = 0
    while True:
        page = CaseListing(cfg, sealer).open_cases_for(s, cfg.officer(officer_id),
                                                       where.scope, limit=size, offset=offset)
        refs += [c.ref for c in page.cases]
        offset += size
        if offset >= page.total:
            return refs, page.total


def _check(sessions: sessionmaker[Session], sealer: Sealer, cfg: OrgConfig) -> int:
    desk = OfficerDesk(cfg, sealer, Catalog(cfg.texts))
    seen = 0
    with sessions.begin() as s:
        for officer in cfg.officers:
            for where in _places(cfg):
                if where.scope is not None and officer.id not in where.scope.officers:
                    continue  # the dispatcher never lets them give commands there
                expected = _expected(s, sealer, desk, cfg, officer.id, where)
                listed, total = _listed(s, sealer, cfg, officer.id, where, size=4)
                assert listed == expected, (officer.id, where)
                assert total == len(expected)
                seen += len(expected)
    return seen


def test_listing_matches_may_act_everywhere(sessions: sessionmaker[Session], sealer: Sealer,
                                            clock: FakeClock) -> None:
    cfg = _config()
    _cases(sessions, sealer, cfg, clock, 70)
    with sessions.begin() as s:
        unindexed = s.scalars(select(Case.id).where(Case.has_exclusions.is_(None))).all()
    assert unindexed  # the fixture has cases from before the index
    assert _check(sessions, sealer, cfg) > 50
    with sessions.begin() as s:  # the open ones were indexed on the way
        still = s.scalars(select(Case.status).where(Case.has_exclusions.is_(None))).all()
    assert set(still) <= {"resolved", "closed"}


def test_listing_follows_the_config_as_it_is_now(sessions: sessionmaker[Session],
                                                 sealer: Sealer, clock: FakeClock) -> None:
    _cases(sessions, sealer, _config(), clock, 50)

    def changed(data: dict[str, Any]) -> None:
        regen, connected = data["scopes"][0], data["scopes"][1]
        regen["officers"] = [o for o in regen["officers"] if o != "rc-marcus"]
        connected["officers"] = ["rc-rowan", "rc-devi"]
        data["scopes"][2]["officers"] = ["rc-ines", "rc-tomas"]

    assert _check(sessions, sealer, _config(changed)) > 20


@pytest.mark.parametrize("officer_id", ["rc-ines", "rc-aaliyah"])
def test_pages_are_newest_first_and_complete(sessions: sessionmaker[Session], sealer: Sealer,
                                             clock: FakeClock, officer_id: str) -> None:
    cfg = _config()
    _cases(sessions, sealer, cfg, clock, 80)
    team = Where(scope=cfg.scope("regen-group"), dm=False)
    with sessions.begin() as s:
        whole, total = _listed(s, sealer, cfg, officer_id, team, size=1000)
        paged, _ = _listed(s, sealer, cfg, officer_id, team, size=3)
        page = CaseListing(cfg, sealer).open_cases_for(s, cfg.officer(officer_id), team.scope,
                                                       limit=3, offset=3)
    assert paged == whole
    assert total == len(whole) > 6
    assert [c.ref for c in page.cases] == whole[3:6]
    stamps = [c.created_at for c in page.cases]
    assert stamps == sorted(stamps, reverse=True)
    assert stamps[0] - stamps[-1] > timedelta(0)


def _ask(app: Relay, officer_id: str, text: str, where: str) -> str:
    """An officer's command through the dispatcher; the answer relay queued for them."""
    officer = app.cfg.officer(officer_id)
    group = app.cfg.scope(where).group_id if where != "dm" else None
    event = TextMessage(sender=Sender(aci=officer.aci, number=officer.number,
                                      profile_name=officer.display_name, device=1),
                        timestamp=1767225600000, text=text,
                        group_id=single_decode_group_id(group) if group else None)
    with app.sessions.begin() as s:
        app.dispatcher.route(s, event, app.clock.now(), key=f"t:{text}:{where}")
        s.flush()
        row = s.scalars(select(OutboxRow).where(OutboxRow.purpose == "officer_ack")
                        .order_by(OutboxRow.seq.desc())).first()
        assert row is not None
        dek = app.sealer.open_record("outbox", row.id, row.dek_wrapped)
        text_out = app.sealer.open(dek, "outbox", row.id, "body", row.body_sealed).decode()
        s.rollback()
    return text_out


def test_cases_command_pages_in_words_an_officer_reads(
        db_url: str, keyring: Keyring, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = _config()
    app = build(cfg, keyring, clock, database_url=db_url)
    try:
        catalog = Catalog(cfg.texts)
        refs = []
        for index in range(23):
            clock.advance(minutes=5)
            draft = Draft(named=False, help_kind="support", category="conflict",
                          scope_id="regen-group", narrative=("paging",), safe=True)
            who = ReporterAddress(f"00000000-0000-4000-8000-{index:012d}", None, None)
            with app.sessions.begin() as s:
                refs.append(create_case(s, app.sealer, cfg, catalog, draft, who,
                                        clock.now()).ref)
        first = _ask(app, "rc-ines", "/cases", "regen-group")
        assert first.startswith("Open cases (23):")
        assert [ref for ref in reversed(refs) if ref in first] == list(reversed(refs))[:20]
        assert first.endswith("Cases 1-20, newest first. Older ones: /cases 2")
        second = _ask(app, "rc-ines", "/cases 2", "regen-group")
        assert [ref for ref in refs if ref in second] == refs[:3]
        assert "/cases 3" not in second
        assert _ask(app, "rc-ines", "/cases 3", "regen-group") == (
            "There is no page 3: you have 23 open cases, 2 pages of 20.")
        assert _ask(app, "rc-ines", "/cases soon", "regen-group").startswith("Usage: /cases")
        assert _ask(app, "rc-ines", "/cases", "ops") == "No open cases for you right now."
        monkeypatch.setattr(case_index, "COUNT_CAP", 10)  # counted up to the page's end
        assert _ask(app, "rc-ines", "/cases", "regen-group").startswith("Open cases (20+):")
        assert _ask(app, "rc-ines", "/cases 2", "regen-group").startswith("Open cases (23):")
    finally:
        app.engine.dispose()
