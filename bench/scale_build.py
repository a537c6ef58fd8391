"""The scale database: 100 000 cases and 1 000 000 sealed messages, built once and cached.

Rows are sealed with the real :class:`relay.store.sealing.Sealer` (a data key per record,
wrapped by the epoch key of the day the record was made; each field AES-GCM-sealed and
bound to table, row and column), computed in worker processes (one per core) and
inserted in batches. The result (database file, keys directory, `meta.json`) is cached
under ``bench/results/cache/<key>/``; the key names the layout version, the schema's
Alembic head and the sizes, so a schema change or other sizes build a new one.

Shape (all relative to a reference time REF, the moment the cache was built):

- cases created evenly over three years; the oldest `purge_share` were closed more than a
  year ago (what `relay purge` deletes), `open_share` are open (open/waiting/in-progress),
  the rest were closed within the last year; 80% in the team group scope, 20% chosen;
  no ANALYZE is run (relay never runs one, so the planner has no statistics either);
- one reporter link per case, reporters writing about 1.4 cases each (blind index of
  the ACI, identity sealed);
- `messages` case messages in total (about ten per case, within 60 days of the case's
  opening), sealed under the case's key;
- one pending SLA timer per open case and a pending check-in timer for enough of them to
  make `timers` pending timers in all, due 1 to 60 days after REF;
- reply-map rows for what went to the scope; and for the last 45 days the inbox frames
  and outbox rows the messages would have left (sealed, each with its own data key).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import shutil
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, select, update

from keys import Keyring, epoch_label, init_keys_dir
from relay.case_index import routing_tags
from relay.clock import FakeClock
from relay.refs import ALPHABET
from relay.sandbox_org import example_path
from relay.scopes import Routing
from relay.store.db import make_engine
from relay.store.migrate import ensure_schema, head_revision
from relay.store.models import Base
from relay.store.sealing import Sealer

LAYOUT = "scale-5"  # 5: the listing columns of revision 0002, filled as relay fills them
"""Bump when the generated rows change; part of the cache key."""
EXAMPLE = "mpp"
TEAM_SCOPE = "regen-group"
CHOSEN_SCOPE = "connected-person"
OFFICERS = ("rc-rowan", "rc-devi", "rc-marcus", "rc-ines", "rc-tomas", "rc-aaliyah")
SUPPORT = ("rc-rowan", "rc-devi", "rc-marcus", "rc-ines", "rc-tomas")
OPEN_STATES = ("open", "waiting", "in-progress")
YEARS = 3.0
RECENT_DAYS = 45
CONVERSATION_DAYS = 60  # a case's messages fall within this many days of its opening
REPORTER_NS = uuid.UUID("3f0a8f4e-7f63-4a8a-9a52-7d3a3c1b9e10")
CHUNK = 2000
ORDER = ("cases", "case_officer_tags", "reporter_links", "case_messages", "timers", "sent_map",
         "inbox", "outbox")
SENTENCE = (
    "the meeting after that someone said again when we were talking about it felt "
    "uncomfortable and I did not know what to do so I left early but later they wrote "
    "to me online and I want you to know this happened more than once in the group chat "
    "at the action in the park near the station last week yesterday on the call "
)


@dataclass(frozen=True)
class Shape:
    cases: int = 100_000
    messages: int = 1_000_000
    timers: int = 100_000
    open_share: float = 0.5
    purge_share: float = 0.1

    @classmethod
    def tiny(cls) -> Shape:
        return cls(cases=400, messages=4_000, timers=400)

    @property
    def reporters(self) -> int:
        return max(1, int(self.cases / 1.4))

    def key(self) -> str:
        head = head_revision() or "none"
        return f"{LAYOUT}-{head}-{self.cases}c-{self.messages}m-{self.timers}t"


@dataclass(frozen=True)
class Built:
    root: Path
    meta: dict[str, Any]
    seconds: float  # 0 when it came from the cache

    @property
    def db(self) -> Path:
        return self.root / "relay.db"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def ref_time(self) -> datetime:
        return datetime.fromisoformat(self.meta["ref"])

    def copy_to(self, target: Path) -> None:
        """A working copy (database and keys) the measurements may change."""
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copy2(self.db, target / "relay.db")
        shutil.copytree(self.keys, target / "keys")
        (target / "keys").chmod(0o700)


def reporter_aci(n: int) -> str:
    return str(uuid.uuid5(REPORTER_NS, f"reporter-{n}"))


def case_ref(i: int) -> str:
    """A unique reference per case index (a bijection on 31^5, so they look random)."""
    space = len(ALPHABET) ** 5
    n = (i * 7_777_777 + 1_234_567) % space
    chars = []
    for _ in range(5):
        n, digit = divmod(n, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "".join(chars[:3]) + "-" + "".join(chars[3:])


_PROSE = SENTENCE * 40


def _text(rng: random.Random, low: int, high: int) -> str:
    """Plausible words of a random length (a slice of a long text: cheap to make)."""
    size = rng.randint(low, high)
    start = rng.randrange(len(_PROSE) - size)
    return _PROSE[start:start + size].strip().capitalize() + "."


# -- one chunk of cases, in a worker process ---------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(keys_dir: str, ref_iso: str, shape: dict[str, Any]) -> None:
    ref = datetime.fromisoformat(ref_iso)
    clock = FakeClock(ref)
    _WORKER.update(sealer=Sealer(Keyring.load(Path(keys_dir)), clock), clock=clock,
                   ref=ref, shape=Shape(**shape), group_id=shape_group_id())


def shape_group_id() -> str:
    data = tomllib.loads(example_path(EXAMPLE).read_text("utf-8"))
    for scope in data["scopes"]:
        if scope["id"] == TEAM_SCOPE:
            return str(scope["group_id"])
    raise RuntimeError("the example has no team scope")


def _messages_of(i: int, shape: Shape) -> int:
    """About messages/cases each, varied in pairs so that the total is exact."""
    base, extra = divmod(shape.messages, shape.cases)
    count = base + (1 if i < extra else 0)
    swing = min(base - 1, 5)
    if swing > 0 and (i % 2 == 1 or i + 1 < shape.cases):
        pair = random.Random(i // 2 + 17).randint(-swing, swing)
        count += pair if i % 2 == 0 else -pair
    return count


def _case_times(i: int, shape: Shape, ref: datetime, rng: random.Random
                ) -> tuple[datetime, str, datetime | None]:
    span = timedelta(days=365.25 * YEARS)
    created = ref - span * (1 - (i + 0.5) / shape.cases)
    purge_n = int(shape.cases * shape.purge_share)
    if i < purge_n:
        return created, "closed", created + timedelta(days=rng.uniform(1, 30))
    open_p = shape.open_share / max(1e-9, 1 - shape.purge_share)
    k = i - purge_n
    if math.floor((k + 1) * open_p) > math.floor(k * open_p):  # exactly open_p of them
        return created, rng.choice(OPEN_STATES), None
    earliest = max(created, ref - timedelta(days=360))
    closed = earliest + (ref - earliest) * rng.random()
    return created, "closed", closed


def _make_chunk(bounds: tuple[int, int]) -> dict[str, list[dict[str, Any]]]:
    sealer: Sealer = _WORKER["sealer"]
    clock: FakeClock = _WORKER["clock"]
    ref: datetime = _WORKER["ref"]
    shape: Shape = _WORKER["shape"]
    group_id: str = _WORKER["group_id"]
    out: dict[str, list[dict[str, Any]]] = {
        "cases": [], "case_officer_tags": [], "reporter_links": [], "case_messages": [],
        "timers": [], "sent_map": [], "inbox": [], "outbox": []}
    open_cases = shape.cases * shape.open_share
    checkin_p = min(1.0, max(0.0, (shape.timers - open_cases) / max(open_cases, 1)))
    recent = ref - timedelta(days=RECENT_DAYS)
    for i in range(*bounds):
        rng = random.Random(i * 1_000_003 + 7)
        created, status, closed = _case_times(i, shape, ref, rng)
        case_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        reporter = rng.randrange(shape.reporters)
        aci = reporter_aci(reporter)
        routing, destinations = _routing(rng, group_id)
        clock.set(created)
        rk = sealer.new_record("cases", case_id)
        details = {"routing": routing, "narrative": [_text(rng, 200, 700)],
                   "when": "last week", "where": "online", "who": None, "safe": True,
                   "attachments": []}
        checkin_ok = status in OPEN_STATES and rng.random() < checkin_p
        last = closed or ref
        out["cases"].append({
            "id": case_id, "ref": case_ref(i), "created_at": created, "updated_at": last,
            "epoch": epoch_label(created, "quarter"), "status": status,
            "scope_id": routing["scope"], "category_id": "discrimination",
            "help_kind": "support", "named": False, "immediate_review": False,
            "checkin_ok": checkin_ok,
            "claimed_by": rng.choice(OFFICERS) if status == "in-progress" else None,
            "claimed_at": created if status == "in-progress" else None,
            "acked_at": None, "safe": True, "who_bidx": None, "closed_at": closed,
            "kek_id": rk.kek_id, "dek_wrapped": rk.wrapped,
            "details_sealed": sealer.seal_json(rk.dek, "cases", case_id, "details", details),
            "version": 1, "has_exclusions": bool(routing["excluded"]),
        })
        out["case_officer_tags"].extend(
            {"case_id": case_id, "tag": tag}
            for tag in sorted(routing_tags(sealer, Routing.from_json(routing))))
        link_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        lk = sealer.new_record("reporter_links", link_id)
        out["reporter_links"].append({
            "id": link_id, "case_id": case_id, "reporter_bidx": sealer.reporter_index(aci),
            "created_at": created, "kek_id": lk.kek_id, "dek_wrapped": lk.wrapped,
            "identity_sealed": sealer.seal_json(lk.dek, "reporter_links", link_id, "identity",
                                                {"aci": aci, "number": None,
                                                 "profile_name": f"Member {reporter}"}),
        })
        count = _messages_of(i, shape)
        talk_end = min(last, created + timedelta(days=CONVERSATION_DAYS))
        for seq in range(1, count + 1):
            msg_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            at = created + (talk_end - created) * ((seq - 1) / max(count, 1))
            kind = "report" if seq == 1 else ("reporter", "officer", "officer", "note")[seq % 4]
            body = _text(rng, 300, 700) if kind == "report" else _text(rng, 60, 300)
            author = rng.choice(OFFICERS) if kind in ("officer", "note") else None
            out["case_messages"].append({
                "id": msg_id, "case_id": case_id, "seq": seq, "kind": kind,
                "author": author, "created_at": at,
                "body_sealed": sealer.seal(rk.dek, "case_messages", msg_id, "body",
                                           body.encode()),
            })
            if kind in ("report", "reporter"):
                out["sent_map"].extend({"destination": dest, "case_id": case_id,
                                        "created_at": at} for dest in destinations)
            if at >= recent:
                _history(out, sealer, clock, rng, case_id, aci, kind, body, at, routing,
                         destinations)
        if status in OPEN_STATES:
            due = ref + timedelta(days=rng.uniform(1, 60))
            out["timers"].append(_timer("sla", case_id, 0, due, created))
            if checkin_ok:
                due = ref + timedelta(days=rng.uniform(1, 60))
                out["timers"].append(_timer("checkin", case_id, 1, due, created))
    return out


def _routing(rng: random.Random, group_id: str) -> tuple[dict[str, Any], list[str]]:
    """One case in five in the chosen-officer scope (to the officer and a support person,
    1:1), the others to the team group; and where its relayed messages went."""
    if rng.random() < 0.2:
        chosen = rng.choice(OFFICERS)
        support = next(s for s in SUPPORT if s != chosen)
        return ({"scope": CHOSEN_SCOPE, "chosen": chosen, "support": support, "excluded": []},
                [chosen, support])
    return {"scope": TEAM_SCOPE, "chosen": None, "support": None, "excluded": []}, [group_id]


def _timer(kind: str, case_id: str, n: int, due: datetime, created: datetime) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "key": f"{kind}:{case_id}:{n}", "kind": kind,
            "case_id": case_id, "n": n, "due_at": due, "status": "pending",
            "created_at": created, "fired_at": None}


def _history(out: dict[str, list[dict[str, Any]]], sealer: Sealer, clock: FakeClock,
             rng: random.Random, case_id: str, aci: str, kind: str, body: str, at: datetime,
             routing: dict[str, Any], destinations: list[str]) -> None:
    """The inbox frame and the outbox row a recent message left behind."""
    clock.set(at)
    inbox_id = str(uuid.uuid4())
    ik = sealer.new_record("inbox", inbox_id)
    ts = int(at.timestamp() * 1000)
    frame = json.dumps({"envelope": {"sourceUuid": aci, "sourceDevice": 1, "timestamp": ts,
                                     "dataMessage": {"timestamp": ts, "message": body}},
                        "account": "+15550100999"})
    out["inbox"].append({
        "id": inbox_id, "dedupe_key": sealer.dedupe(aci, "1", str(ts), "data"),
        "source": "ws", "received_at": at, "status": "done", "attempts": 0,
        "error_class": None, "processed_at": at, "kek_id": ik.kek_id,
        "dek_wrapped": ik.wrapped,
        "frame_sealed": sealer.seal(ik.dek, "inbox", inbox_id, "frame", frame.encode()),
    })
    outbox_id = str(uuid.uuid4())
    ok = sealer.new_record("outbox", outbox_id)
    to_reporter = kind == "officer"
    if to_reporter:
        recipient_kind, recipient_ref = "reporter", None
    elif routing["scope"] == TEAM_SCOPE:
        recipient_kind, recipient_ref = "group", TEAM_SCOPE
    else:
        recipient_kind, recipient_ref = "officer", destinations[0]
    out["outbox"].append({
        "id": outbox_id, "idempotency_key": f"in:{inbox_id}:{rng.getrandbits(32)}",
        "created_at": at, "available_at": at, "status": "sent", "attempts": 1,
        "lease_until": None, "purpose": "reply" if to_reporter else "followup",
        "case_id": case_id, "recipient_kind": recipient_kind, "recipient_ref": recipient_ref,
        "map_replies": not to_reporter, "quote_timestamp": None, "kek_id": ok.kek_id,
        "dek_wrapped": ok.wrapped,
        "body_sealed": sealer.seal(ok.dek, "outbox", outbox_id, "body", body.encode()),
        "address_sealed": sealer.seal(ok.dek, "outbox", outbox_id, "address", aci.encode())
        if to_reporter else None,
        "signal_timestamp": ts, "sent_at": at, "error_class": None, "possible_repeat": False,
    })


# -- the parent: keys, schema, workers, batched inserts -----------------------------------

def _keys(path: Path, ref: datetime) -> None:
    start = ref - timedelta(days=365.25 * YEARS + 1)
    keyring = init_keys_dir(path, start, "quarter")
    when = start
    while when <= ref + timedelta(days=1):
        keyring.ensure_epoch(when)
        when += timedelta(days=20)


def _chunks(total: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, total, CHUNK):
        yield lo, min(total, lo + CHUNK)


class _Inserter:
    """Batched inserts in dependency order; numbers the sequences as it goes.

    Plain DB-API ``executemany`` with each column's own SQLAlchemy bind processor (so
    datetimes are stored exactly as the models store them): Core's per-row overhead
    would make the parent, not the sealing workers, the bottleneck.
    """

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.tables: dict[str, Table] = dict(Base.metadata.tables)
        self.inbox_seq = 0
        self.outbox_seq = 0
        self.sent_ts = 1_500_000_000_000
        self.counts: dict[str, int] = {}
        dialect = self.engine.dialect
        self._plans: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
        for name in ORDER:
            table = self.tables[name]
            cols = [c for c in table.columns if not (name == "sent_map" and c.name == "id")]
            sql = (f"INSERT INTO {name} ({', '.join(c.name for c in cols)}) "
                   f"VALUES ({', '.join('?' for _ in cols)})")
            self._plans[name] = (sql, [(c.name, c.type.bind_processor(dialect))
                                       for c in cols])

    def add(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        for row in rows["inbox"]:
            self.inbox_seq += 1
            row["seq"] = self.inbox_seq
        for row in rows["outbox"]:
            self.outbox_seq += 1
            row["seq"] = self.outbox_seq
        for row in rows["sent_map"]:
            self.sent_ts += 1
            row["signal_timestamp"] = self.sent_ts
        raw = self.engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            assert dbapi is not None
            dbapi.execute("BEGIN IMMEDIATE")
            for name in ORDER:
                if rows[name]:
                    sql, cols = self._plans[name]
                    dbapi.executemany(sql, (
                        tuple(proc(row.get(col)) if proc is not None else row.get(col)
                              for col, proc in cols)
                        for row in rows[name]))
                    self.counts[name] = self.counts.get(name, 0) + len(rows[name])
            dbapi.execute("COMMIT")
        finally:
            raw.close()

    def top_up_timers(self, target: int, ref: datetime) -> None:
        """Exactly `target` pending timers: open cases get a later check-in as needed."""
        timers = self.tables["timers"]
        cases = self.tables["cases"]
        with self.engine.begin() as conn:
            have = conn.execute(select(func.count()).select_from(timers)
                                .where(timers.c.status == "pending")).scalar_one()
            missing = target - have
            if missing <= 0:
                return
            ids = conn.execute(select(cases.c.id, cases.c.created_at)
                               .where(cases.c.status.in_(OPEN_STATES),
                                      cases.c.checkin_ok.is_(False))
                               .order_by(cases.c.id).limit(missing)).all()
            rng = random.Random(99)
            rows = [_timer("checkin", case_id, 1, ref + timedelta(days=rng.uniform(1, 60)),
                           created) for case_id, created in ids]
            if rows:
                conn.execute(insert(timers), rows)
                conn.execute(update(cases).where(cases.c.id.in_([r[0] for r in ids]))
                             .values(checkin_ok=True))
                self.counts["timers"] = self.counts.get("timers", 0) + len(rows)

    def finish(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(self.tables["counters"]),
                         [{"name": "inbox", "value": self.inbox_seq},
                          {"name": "outbox", "value": self.outbox_seq}])
        raw = self.engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            assert dbapi is not None
            dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        self.engine.dispose()


def build(shape: Shape, target: Path, log: Callable[[str], None] = print,
          workers: int | None = None) -> dict[str, Any]:
    """Build the scale database into `target` (which must not exist yet)."""
    ref = datetime.now(UTC).replace(microsecond=0)  # noqa: TID251 - the build's reference time
    target.mkdir(parents=True)
    _keys(target / "keys", ref)
    url = f"sqlite:///{target / 'relay.db'}"
    ensure_schema(make_engine(url))
    inserter = _Inserter(url)
    procs = workers or min(2, os.cpu_count() or 1)
    ctx = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    done = 0
    with ctx.Pool(procs, _init_worker,
                  (str(target / "keys"), ref.isoformat(), asdict(shape))) as pool:
        for rows in pool.imap(_make_chunk, _chunks(shape.cases)):
            inserter.add(rows)
            done += len(rows["cases"])
            if done % (CHUNK * 10) == 0 or done == shape.cases:
                rate = done / (time.perf_counter() - started)
                log(f"  built {done}/{shape.cases} cases ({rate:,.0f} cases/s)")
    inserter.top_up_timers(shape.timers, ref)
    inserter.finish()
    meta = {"key": shape.key(), "ref": ref.isoformat(), "shape": asdict(shape),
            "reporters": shape.reporters, "rows": inserter.counts,
            "build_s": time.perf_counter() - started, "workers": procs,
            "db_bytes": (target / "relay.db").stat().st_size}
    (target / "meta.json").write_text(json.dumps(meta, indent=1), "utf-8")
    return meta


def ensure_built(shape: Shape, cache_root: Path, log: Callable[[str], None] = print) -> Built:
    """The cached build for `shape`, building it first if there is none."""
    root = cache_root / shape.key()
    meta_path = root / "meta.json"
    if meta_path.exists():
        return Built(root, json.loads(meta_path.read_text("utf-8")), 0.0)
    building = cache_root / (shape.key() + ".building")
    shutil.rmtree(building, ignore_errors=True)
    cache_root.mkdir(parents=True, exist_ok=True)
    log(f"scale: building {shape.cases:,} cases / {shape.messages:,} messages "
        f"(cache {root.name}) ...")
    started = time.perf_counter()
    build(shape, building, log)
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    meta = json.loads(meta_path.read_text("utf-8"))
    return Built(root, meta, time.perf_counter() - started)

