"""The kill -9 test of SECURITY.md §6.6 for the whole relay, under scripted Signal traffic.

    python -m tests.soak.kill --kills 30 --reporters 6 --seed N

The parent runs the sandbox (a wire-faithful signal-cli-rest-api with simulated phones,
webhook on) in-process and the real relay as a child process (`tests/soak/child.py`, run
from a snapshot of the code taken at the start) on a SQLite file. Reporters walk full
anonymous intakes to the team scope concurrently, each report with a unique narrative
token, then send follow-ups; while kills remain they start another report (NEW). Two
officers answer every case: one quotes the case message, the other uses `/reply REF`.
Meanwhile the child is SIGKILLed `--kills` times and restarted: mostly 0.05-0.8 s into the
load on a fresh child, sometimes during its startup and recovery instead.

Frames that arrive while the child is dead are lost, as upstream loses them (no websocket
reader, webhook POST refused). So people only write while a child is up and subscribed, and
they behave like people: whoever gets no answer writes again (counted as a resend), and a
question answered already in the current run of the child is not answered twice.

At the end the child is stopped with SIGTERM and the promise is checked:
  1. every report whose reporter got a receipt ("reference is XXX-XX"): every officer of
     the scope received the case message with that reference and the narrative token; every
     follow-up the reporter saw acknowledged reached every officer too;
  2. no officer received the same message twice unmarked: the officers' messages grouped by
     text with the "⚠️ Possible repeat" prefix stripped; a later copy must carry the mark,
     unless the outbox itself holds that many rows with that text for that officer;
  3. `PRAGMA integrity_check` of the database file is `ok`;
and the figures are printed. The exit status is 1 when an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from keys import Keyring, init_keys_dir
from relay.clock import SystemClock
from relay.inbox import TABLE as INBOX_TABLE
from relay.outbox import TABLE as OUTBOX_TABLE
from relay.outbox import RecipientKind
from relay.sandbox import Phone, Received, SandboxGroup
from relay.sandbox_org import SandboxOrg, org_config_data, start_sandbox_org
from relay.store.db import make_engine, make_sessionmaker
from relay.store.models import InboxRow, OutboxRow
from relay.store.sealing import Sealer

ROOT = Path(__file__).resolve().parents[2]
CHILD_PACKAGES = ("relay", "handlers", "keys")
CHILD_FILES = ("tests/__init__.py", "tests/soak/__init__.py", "tests/soak/child.py")
# Deliberate bugs for checking that the checks can fail (`--mutant NAME`): each replaces one
# exact fragment of the child's snapshot of relay. Never used by default.
MUTANTS: dict[str, tuple[str, str, str]] = {
    # a row left 'sending' by a crash is resent without the possible-repeat mark
    "unmarked-repeats": ("relay/app.py", "possible_repeat=True, lease_until=None",
                         "possible_repeat=False, lease_until=None"),
    # a row left 'sending' by a crash is taken as sent: if it was not, it is lost
    "drop-in-flight": ("relay/app.py", "status=Status.PENDING, possible_repeat=True",
                       "status=Status.SENT, possible_repeat=True"),
}
EXAMPLE = "mpp"
SCOPE_CHOICE = "1"  # the first scope of the mpp example: the Regenerative Culture group
QUOTER = "rc-devi"  # answers every case by quoting the case message
SLASHER = "rc-tomas"  # answers every case with /reply REF
REPEAT_MARK = "⚠️ Possible repeat of an earlier message\n"
RECEIPT = re.compile(r"reference is ([A-Z0-9]{3}-[A-Z0-9]{2})\b")
CASE_REF = re.compile(r"\b[A-Z0-9]{3}-[A-Z0-9]{2}\b")
CASE_HEAD = re.compile(r"New report ([A-Z0-9]{3}-[A-Z0-9]{2})\b")
FOLLOWUP_ACK = "added to your report"
WHICH_CASE = "which case is this about?"
RESTARTED = "i was restarted"
QUOTE_TRIES = 3  # quotes an officer tries before falling back to /reply
MAX_ROUNDS = 50  # reports per reporter, at most
POLL = 0.02  # how often people look at their phones
BURST = 0.03  # a person reads a burst of messages before answering the last question


# -- the intake, as a reporter sees it -----------------------------------------------------

@dataclass(frozen=True)
class Question:
    name: str
    phrases: tuple[str, ...]  # lower case; any one identifies the question
    answer: str | None  # None: the reporter's narrative


# In the order the intake asks them; a later question always means the earlier ones are
# answered and committed (the answer and the next question commit together).
QUESTIONS: tuple[Question, ...] = (
    Question("identity", ("do you want to stay anonymous",), "anonymous"),
    Question("help_kind", ("what kind of help would you like",), "1"),
    Question("category", ("what is it about?",), "1"),
    Question("scope", ("who should see your report",), SCOPE_CHOICE),
    Question("exclusions", ("must not see this",), "none"),
    Question("narrative", ("tell us what happened",), None),
    Question("narrative_more", ("i already have", "keep going, or send done"), "DONE"),
    Question("when", ("when did it happen",), "skip"),
    Question("where", ("where did it happen",), "skip"),
    Question("who", ("who was involved?",), "skip"),
    Question("safety", ("are you safe right now",), "yes"),
    Question("checkin", ("may we check in with you",), "yes"),
    Question("confirm", ("reply send to send it",), "SEND"),
)
FIRST = -1  # "stage" of the opening message, before any question


def classify(text: str | None) -> tuple[int | None, bool]:
    """The furthest intake question a bot message asks (index in QUESTIONS), and whether
    it is the re-ask sent after a restart."""
    low = (text or "").lower()
    stage: int | None = None
    for index, question in enumerate(QUESTIONS):
        if any(phrase in low for phrase in question.phrases):
            stage = index
    return stage, RESTARTED in low


def strip_mark(text: str | None) -> tuple[str, bool]:
    """A message's text without the possible-repeat prefix, and whether it had it."""
    body = text or ""
    if body.startswith(REPEAT_MARK):
        return body[len(REPEAT_MARK):], True
    return body, False


# -- settings, figures, result ---------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    kills: int = 30
    reporters: int = 6
    followups: int = 2
    seed: int = 1
    time_limit: float = 480.0  # the whole run, seconds
    kill_delay: tuple[float, float] = (0.05, 0.8)  # after the load resumes on a fresh child
    early_kill_share: float = 0.2  # kills aimed at the child's startup and recovery instead
    settle: float = 0.4  # after READY: let recovered and re-asked messages go out first
    grace: float = 0.3  # after a restart: nothing answered by then means write again
    resend_after: float = 4.0  # same child up: nothing answered for this long, write again
    ready_timeout: float = 60.0
    verbose: bool = False
    mutant: str | None = None  # a name from MUTANTS: check that the checks catch it


@dataclass
class Sent:
    """One message a person wrote: when, in which run of the child, after which messages."""

    text: str
    epoch: int
    at: float
    index: int  # how many messages the phone had received before


@dataclass
class Report:
    """One intake and its follow-ups; round 1 opens with the story, later rounds with NEW."""

    round: int
    token: str  # the unique narrative token
    ref: str | None = None
    stage: int = FIRST
    acked_followups: list[str] = field(default_factory=list)

    @property
    def opening(self) -> str:
        if self.round > 1:
            return "NEW"
        # long enough (> 40 characters) to be kept as the start of the report
        return f"{self.token}: at the meeting last week someone kept shouting at me."

    @property
    def narrative(self) -> str:
        return f"{self.token}: after the meeting the same person followed me outside."


@dataclass
class ReporterRun:
    index: int
    phone: Phone
    reports: list[Report] = field(default_factory=list)
    resends: int = 0
    followup_resends: int = 0
    finished: bool = False


@dataclass
class ReplyRun:
    ref: str
    officer: str
    mode: str  # "quote" or "slash"
    resends: int = 0
    delivered: bool = False
    first_quoted: int | None = None  # timestamp of the case copy the first quote quoted
    fell_back: bool = False  # the quotes went unanswered: the officer used /reply instead

    @property
    def token(self) -> str:
        return f"{self.mode}-reply-{self.ref}"


@dataclass
class Result:
    figures: dict[str, Any]
    violations: list[str]
    notes: list[str]
    workdir: Path

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        width = max(len(k) for k in self.figures)
        lines = ["relay kill -9 soak: figures"]
        lines += [f"  {key.ljust(width)}  {value}" for key, value in self.figures.items()]
        if self.notes:
            lines.append("notes:")
            lines += [f"  - {note}" for note in self.notes]
        if self.violations:
            lines.append(f"INVARIANT VIOLATIONS ({len(self.violations)}):")
            lines += [f"  ! {v}" for v in self.violations[:60]]
            if len(self.violations) > 60:
                lines.append(f"  ! ... and {len(self.violations) - 60} more")
            lines.append(f"work directory kept: {self.workdir}")
        else:
            lines.append("all invariants hold")
        return "\n".join(lines)


class SoakAbortError(Exception):
    """The run cannot go on (the child keeps failing on its own)."""


# -- TOML ----------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and all(not isinstance(v, dict) for v in value):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_table(data: dict[str, Any], path: tuple[str, ...], out: list[str]) -> None:
    for key, value in data.items():
        if not isinstance(value, dict) and not _is_table_array(value):
            out.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in data.items():
        here = (*path, _toml_key(key))
        if isinstance(value, dict):
            out.append(f"\n[{'.'.join(here)}]")
            _toml_table(value, here, out)
        elif _is_table_array(value):
            for item in value:
                out.append(f"\n[[{'.'.join(here)}]]")
                _toml_table(item, here, out)


def toml_by_hand(data: dict[str, Any]) -> str:
    """Enough TOML for a relay config (tables, arrays of tables, scalars, scalar lists)."""
    out: list[str] = []
    _toml_table(data, (), out)
    return "\n".join(out).lstrip("\n") + "\n"


def dump_toml(data: dict[str, Any]) -> str:
    """relay has no TOML writer dependency; the small writer above is enough here (a test
    checks that what it writes reads back equal)."""
    return toml_by_hand(data)


# -- the child process -----------------------------------------------------------------------

class Child:
    """One run of `python -m tests.soak.child CONFIG LOG`."""

    def __init__(self, proc: asyncio.subprocess.Process, epoch: int) -> None:
        self.proc = proc
        self.epoch = epoch
        self.started = time.monotonic()
        self.ready = asyncio.Event()
        self.ready_after: float | None = None
        self._reader = asyncio.create_task(self._read(), name=f"child-{epoch}-stdout")
        self._exit = asyncio.create_task(proc.wait(), name=f"child-{epoch}-exit")

    @classmethod
    async def spawn(cls, code: Path, config: Path, log: Path, stderr: Path,
                    epoch: int) -> Child:
        with stderr.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.soak.child", str(config), str(log),
                cwd=code, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        return cls(proc, epoch)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            if line.strip() == b"READY" and not self.ready.is_set():
                self.ready_after = time.monotonic() - self.started
                self.ready.set()

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    async def wait_ready(self, limit: float) -> bool:
        """True once READY was printed; False if it exited first or `limit` passed."""
        ready = asyncio.ensure_future(self.ready.wait())
        await asyncio.wait({ready, self._exit}, timeout=limit,
                           return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        await asyncio.gather(ready, return_exceptions=True)
        return self.ready.is_set() and self.running

    async def exited_within(self, seconds: float) -> bool:
        """Sleep `seconds`, unless the child exits first (then True)."""
        await asyncio.wait({self._exit}, timeout=seconds)
        return self._exit.done()

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        await self._exit
        await self._finish_reader()

    async def terminate(self, limit: float = 30.0) -> int | None:
        """SIGTERM and wait; the exit status, or None if it had to be killed."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait({self._exit}, timeout=limit)
        if not self._exit.done():
            await self.kill()
            return None
        await self._finish_reader()
        return self._exit.result()

    async def _finish_reader(self) -> None:
        try:
            await asyncio.wait_for(self._reader, timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            self._reader.cancel()


# -- the run ---------------------------------------------------------------------------------

class Soak:
    def __init__(self, settings: Settings, workdir: Path,
                 say: Callable[[str], None] | None = None) -> None:
        self.s = settings
        self.workdir = workdir
        self.say = say or (lambda _line: None)
        self.rng = random.Random(settings.seed)
        self.config_path = workdir / "relay.toml"
        self.log_path = workdir / "relay.log"
        self.stderr_path = workdir / "child.stderr"
        self.db_path = workdir / "relay.db"
        self.code_dir = workdir / "code"
        self.org: SandboxOrg | None = None
        self.child: Child | None = None
        self.up = asyncio.Event()  # a child is ready, subscribed and settled: people write
        self.up_since = 0.0
        self.epoch = 0  # children started so far; the current one's number
        self.kills = 0
        self.startup_kills = 0
        self.startup_estimate = 3.0
        self.startup_times: list[float] = []
        self.unexpected: list[str] = []
        self.reporters: list[ReporterRun] = []
        self.replies: dict[tuple[str, str], ReplyRun] = {}
        self.reply_tasks: list[asyncio.Task[None]] = []
        self.people: list[asyncio.Task[None]] = []
        self.violations: list[str] = []
        self.notes: list[str] = []
        self.final_exit: int | None = None
        self._inbox_cache: list[tuple[str, str]] | None = None
        self.timed_out = False

    # -- setup ------------------------------------------------------------------------------
    @property
    def sandbox_org(self) -> SandboxOrg:
        assert self.org is not None
        return self.org

    @property
    def group(self) -> SandboxGroup:
        return self.sandbox_org.group(self.scope_id)

    @property
    def scope_id(self) -> str:
        cfg = self.sandbox_org.cfg
        return next(s.id for s in cfg.scopes if s.group_id is not None)

    def _snapshot_code(self) -> None:
        """Every child runs the code as it was when the run started (from its own working
        directory, first on sys.path), so restarts never mix versions of a tree being edited."""
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in CHILD_PACKAGES:
            shutil.copytree(ROOT / package, self.code_dir / package, ignore=ignore)
        (self.code_dir / "tests" / "soak").mkdir(parents=True)
        for name in CHILD_FILES:
            shutil.copy2(ROOT / name, self.code_dir / name)
        if self.s.mutant is not None:
            rel, old, new = MUTANTS[self.s.mutant]
            path = self.code_dir / rel
            text = path.read_text("utf-8")
            if text.count(old) != 1:
                raise SoakAbortError(f"mutant {self.s.mutant}: {old!r} is not in {rel} once")
            path.write_text(text.replace(old, new), "utf-8")
            self.notes.append(f"MUTANT {self.s.mutant}: {rel}: {old!r} -> {new!r}")

    async def _setup(self) -> None:
        self._snapshot_code()
        self.org = await start_sandbox_org(EXAMPLE, self.workdir, webhook=True)
        cfg = self.org.cfg
        data = org_config_data(EXAMPLE, service=self.org.sandbox.service, data_dir=self.workdir,
                               webhook_listen=cfg.signal.webhook_listen)
        self.config_path.write_text(dump_toml(data), "utf-8")
        init_keys_dir(cfg.keys.directory, SystemClock().now(), cfg.retention.epoch)
        for officer in (QUOTER, SLASHER):
            assert officer in cfg.scope(self.scope_id).officers, officer

    # -- people -----------------------------------------------------------------------------
    def _overdue(self, sent: Sent) -> bool:
        """Whether a person who wrote `sent` and saw no answer would write again now."""
        if not self.up.is_set():
            return False
        now = time.monotonic()
        if sent.epoch < self.epoch:  # the child was restarted since: it was probably lost
            return now - self.up_since >= self.s.grace
        return now - max(sent.at, self.up_since) >= self.s.resend_after

    async def _write(self, phone: Phone, text: str, *, group: SandboxGroup | None = None,
                     quote: Received | None = None) -> Sent:
        await self.up.wait()
        sent = Sent(text, self.epoch, time.monotonic(), len(phone.messages))
        if group is None:
            await phone.send(text)
        else:
            await phone.send_group(group, text, quote=quote)
        return sent

    @staticmethod
    def _answer(report: Report, stage: int, attempt: int) -> str:
        if stage == FIRST:
            return report.opening
        answer = QUESTIONS[stage].answer
        if answer is None:
            return f"{report.narrative} (again {attempt})" if attempt else report.narrative
        return answer

    async def _reporter(self, run: ReporterRun) -> None:
        """Reports, one after the other, until the kills are done (at least one)."""
        for number in range(1, MAX_ROUNDS + 1):
            report = Report(number, f"story-r{run.index}-n{number}")
            run.reports.append(report)
            await self._intake(run, report)
            await self._followups(run, report)
            if self.kills >= self.s.kills:
                break
        run.finished = True

    async def _intake(self, run: ReporterRun, report: Report) -> None:
        phone = run.phone
        sent = await self._write(phone, self._answer(report, FIRST, 0))
        start = sent.index
        attempts = 0
        while report.ref is None:
            await asyncio.sleep(POLL)
            since = phone.messages[sent.index:]
            if self._take_receipt(run, report, since):
                return
            seen = [classify(m.text) for m in since]
            if any(st is not None and st > report.stage for st, _ in seen):
                await asyncio.sleep(BURST)
                since = phone.messages[sent.index:]
                if self._take_receipt(run, report, since):
                    return
                report.stage = max(st for st, _ in map(classify, (m.text for m in since))
                                   if st is not None)
                attempts = 0
                sent = await self._write(phone, self._answer(report, report.stage, 0))
                continue
            reasked = any(st == report.stage and again for st, again in seen)
            lost = reasked and sent.epoch < self.epoch and self.up.is_set()
            if lost or self._overdue(sent):
                latest = next((st for st, _ in map(classify, (m.text for m in
                                                              reversed(phone.messages[start:])))
                               if st is not None), None)
                if not lost and latest is not None and latest < report.stage:
                    report.stage = latest  # the bot asks something earlier: answer that
                attempts += 1
                run.resends += 1
                sent = await self._write(phone, self._answer(report, report.stage, attempts))

    async def _followups(self, run: ReporterRun, report: Report) -> None:
        phone = run.phone
        assert report.ref is not None
        ack = f"{FOLLOWUP_ACK} {report.ref.lower()}"
        for number in range(1, self.s.followups + 1):
            await asyncio.sleep(0.3)  # a late copy of the previous ack arrives before this
            base = f"followup-r{run.index}-n{report.round}-{number}"
            sent = await self._write(phone, f"{report.ref} {base}")
            attempts = 0
            while not any(ack in (m.text or "").lower() for m in phone.messages[sent.index:]):
                await asyncio.sleep(POLL)
                if self._overdue(sent):
                    attempts += 1
                    run.followup_resends += 1
                    sent = await self._write(phone, f"{report.ref} {base} (resend {attempts})")
            report.acked_followups.append(base)

    def _take_receipt(self, run: ReporterRun, report: Report,
                      messages: Sequence[Received]) -> bool:
        earlier = {r.ref for r in run.reports if r is not report}
        for message in messages:
            found = RECEIPT.search(message.text or "")
            if found and found.group(1) not in earlier:
                report.ref = found.group(1)
                self.say(f"reporter {run.index}: receipt {report.ref} for round "
                         f"{report.round} (child {self.epoch})")
                return True
        return False

    async def _watch_cases(self) -> None:
        """The quoting officer's eyes: every new case gets a quoted and a /reply answer."""
        officers = self.sandbox_org.officers
        quoter = officers[QUOTER]
        while True:
            for message in list(quoter.messages):
                body, _marked = strip_mark(message.text)
                head = CASE_HEAD.match(body)
                if head is None or message.group_id != self.group.id:
                    continue
                ref = head.group(1)
                for officer, mode in ((QUOTER, "quote"), (SLASHER, "slash")):
                    if (ref, mode) not in self.replies:
                        reply = ReplyRun(ref, officer, mode)
                        self.replies[ref, mode] = reply
                        self.reply_tasks.append(asyncio.create_task(
                            self._officer_reply(reply), name=f"reply-{ref}-{mode}"))
            await asyncio.sleep(POLL)

    def _case_copies(self, phone: Phone, ref: str) -> list[Received]:
        return [m for m in phone.messages
                if m.group_id == self.group.id
                and strip_mark(m.text)[0].startswith(f"New report {ref}")]

    async def _send_reply(self, reply: ReplyRun, attempt: int) -> Sent:
        phone = self.sandbox_org.officers[reply.officer]
        text = reply.token + (f" (resend {attempt})" if attempt else "")
        if reply.mode == "slash" or attempt >= QUOTE_TRIES:
            # an officer whose quotes keep getting "which case?" falls back to /reply
            reply.fell_back = reply.mode == "quote"
            return await self._write(phone, f"/reply {reply.ref} {text}", group=self.group)
        copies = self._case_copies(phone, reply.ref)
        # first the original, as a person would; when that goes unanswered, the newest copy
        # (an original whose send was never committed has no reply mapping)
        target = copies[0] if attempt == 0 else copies[-1]
        if attempt == 0:
            reply.first_quoted = target.timestamp
        return await self._write(phone, text, group=self.group, quote=target)

    def _reply_arrived(self, reply: ReplyRun) -> bool:
        return any(reply.token in (m.text or "") for run in self.reporters
                   for m in run.phone.messages)

    async def _officer_reply(self, reply: ReplyRun) -> None:
        attempts = 0
        sent = await self._send_reply(reply, attempts)
        while not self._reply_arrived(reply):
            await asyncio.sleep(POLL)
            if self._overdue(sent):
                attempts += 1
                reply.resends += 1
                sent = await self._send_reply(reply, attempts)
        reply.delivered = True

    def _complete(self) -> bool:
        self._raise_broken_people()
        if not all(run.finished for run in self.reporters):
            return False
        return all((ref, mode) in self.replies and self.replies[ref, mode].delivered
                   for ref in self._refs() for mode in ("quote", "slash"))

    def _reports(self) -> list[tuple[ReporterRun, Report]]:
        return [(run, report) for run in self.reporters for report in run.reports]

    def _refs(self) -> list[str]:
        return [report.ref for _run, report in self._reports() if report.ref is not None]

    def _raise_broken_people(self) -> None:
        """A scripted person who crashed is a bug in this harness: stop, do not hang."""
        for task in [*self.people, *self.reply_tasks]:
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                raise SoakAbortError(f"harness task {task.get_name()} failed: "
                                     f"{type(exc).__name__}: {exc}")

    def status(self) -> str:
        stages = ", ".join(f"r{r.index}:{self._stage_name(r)}" for r in self.reporters)
        waiting = [f"{r.mode}:{r.ref}" for r in self.replies.values() if not r.delivered]
        return (f"epoch {self.epoch}, kills {self.kills}, up {self.up.is_set()}; {stages}; "
                f"replies waiting: {', '.join(waiting) or 'none'}")

    # -- the kill loop ----------------------------------------------------------------------
    async def _spawn(self) -> Child:
        self.epoch += 1
        self.child = await Child.spawn(self.code_dir, self.config_path, self.log_path,
                                       self.stderr_path, self.epoch)
        return self.child

    def _child_died(self, child: Child, when: str) -> None:
        code = child.proc.returncode
        self.unexpected.append(f"child {child.epoch} exited on its own {when} (status {code})")
        self.say(self.unexpected[-1])
        if len(self.unexpected) >= 5:
            lines = self.stderr_path.read_text("utf-8", "replace").strip().splitlines()
            last = lines[-1] if lines else "(nothing)"
            raise SoakAbortError("the child keeps exiting on its own; the last line of "
                                 f"{self.stderr_path.name}: {last[:300]}")

    async def _kill(self, child: Child, when: str) -> None:
        self.up.clear()
        await child.kill()
        self.kills += 1
        self.say(f"kill {self.kills}/{self.s.kills} {when} (child {child.epoch})")

    async def _supervise(self) -> None:
        sandbox = self.sandbox_org.sandbox
        while True:
            child = await self._spawn()
            if self.kills < self.s.kills and self.rng.random() < self.s.early_kill_share:
                # around the end of startup: schema check, recovery of 'sending' rows,
                # processing of stored frames, re-asking, first sends after READY
                delay = self.rng.uniform(0.75, 1.1) * self.startup_estimate
                await child.wait_ready(delay)
                left = delay - (time.monotonic() - child.started)
                if child.running and left > 0:
                    await child.exited_within(left)
                if not child.running:
                    self._child_died(child, "while starting")
                    continue
                self.startup_kills += 1
                phase = "after READY" if child.ready.is_set() else "before READY"
                await self._kill(child, f"{delay:.2f}s after spawn, {phase}")
                continue
            if not await child.wait_ready(self.s.ready_timeout):
                if child.running:
                    await child.kill()
                    self.unexpected.append(f"child {child.epoch} never printed READY")
                else:
                    self._child_died(child, "before READY")
                continue
            assert child.ready_after is not None
            self.startup_times.append(child.ready_after)
            self.startup_estimate = sum(self.startup_times[-5:]) / len(self.startup_times[-5:])
            try:
                await sandbox.wait_for_subscriber(timeout=10)
            except TimeoutError:
                self.unexpected.append(f"child {child.epoch} was READY but never subscribed")
                await child.kill()
                continue
            if await child.exited_within(self.s.settle):
                self._child_died(child, "while settling")
                continue
            self.up_since = time.monotonic()
            self.up.set()
            if self.kills < self.s.kills:
                delay = self.rng.uniform(*self.s.kill_delay)
                if await child.exited_within(delay):
                    self.up.clear()
                    self._child_died(child, "under load")
                    continue
                await self._kill(child, f"{delay:.2f}s into the load")
                continue
            while not self._complete():
                if await child.exited_within(0.1):
                    self.up.clear()
                    self._child_died(child, "while conversations finish")
                    break
            else:
                return

    async def _report_status(self) -> None:
        while True:
            await asyncio.sleep(10)
            self.say(self.status())

    async def _quiet(self, phones: Sequence[Phone], *, still: float = 1.5,
                     limit: float = 30.0) -> None:
        """Wait until nobody has received anything for `still` seconds."""
        sandbox = self.sandbox_org.sandbox
        deadline = time.monotonic() + limit
        last = (-1, -1)
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            now = (sum(len(p.inbox) for p in phones), len(sandbox.sent))
            if now != last:
                last, last_change = now, time.monotonic()
            elif time.monotonic() - last_change >= still:
                return
            await asyncio.sleep(0.1)

    # -- the checks -------------------------------------------------------------------------
    def _outbox_facts(self) -> tuple[Counter[tuple[str, str]], Counter[str], int, int]:
        """Per (officer, text): how many outbox rows hold that text for that officer; the
        rows by status; rows marked possible_repeat; quarantined inbox rows."""
        cfg = self.sandbox_org.cfg
        sealer = Sealer(Keyring.load(cfg.keys.directory), SystemClock())
        engine = make_engine(f"sqlite:///{self.db_path}")
        rows_for: Counter[tuple[str, str]] = Counter()
        statuses: Counter[str] = Counter()
        repeats = 0
        try:
            with make_sessionmaker(engine)() as s:
                for row in s.scalars(select(OutboxRow)):
                    statuses[row.status] += 1
                    repeats += int(bool(row.possible_repeat))
                    if row.recipient_kind == RecipientKind.GROUP.value:
                        scope = next((sc for sc in cfg.scopes if sc.id == row.recipient_ref), None)
                        officers = list(scope.officers) if scope is not None else []
                    elif row.recipient_kind == RecipientKind.OFFICER.value:
                        officers = [row.recipient_ref or ""]
                    else:
                        continue
                    dek = sealer.open_record(OUTBOX_TABLE, row.id, row.dek_wrapped)
                    body = sealer.open(dek, OUTBOX_TABLE, row.id, "body",
                                       row.body_sealed).decode()
                    for officer in officers:
                        rows_for[officer, body] += 1
                quarantined = s.scalar(select(func.count()).select_from(InboxRow).where(
                    InboxRow.status == "quarantined")) or 0
        finally:
            engine.dispose()
        return rows_for, statuses, repeats, quarantined

    def _check_delivery(self) -> tuple[int, int, int]:
        """Invariant 1: receipts reached every officer of the scope with the narrative."""
        cfg = self.sandbox_org.cfg
        scope_officers = cfg.scope(self.scope_id).officers
        officers = self.sandbox_org.officers
        cases = followups_acked = followups_delivered = 0
        for run, report in self._reports():
            ref = report.ref
            if ref is None:
                continue
            whole = True
            for officer_id in scope_officers:
                copies = self._case_copies(officers[officer_id], ref)
                if not copies:
                    self.violations.append(
                        f"reporter {run.index} was told {ref} but officer {officer_id} never "
                        "received that case in the team group")
                    whole = False
                elif not any(report.token in (c.text or "") for c in copies):
                    whole = False
                    self._missing_narrative(run, report, officer_id)
            cases += int(whole)
            for base in report.acked_followups:
                followups_acked += 1
                missing = [
                    officer_id for officer_id in scope_officers
                    if not any(base in (m.text or "") and ref in (m.text or "")
                               for m in officers[officer_id].messages)
                ]
                if missing:
                    self.violations.append(
                        f"follow-up {base!r} on {ref} was acknowledged to the reporter but "
                        f"never reached {', '.join(missing)}")
                else:
                    followups_delivered += 1
        return cases, followups_acked, followups_delivered

    def _missing_narrative(self, run: ReporterRun, report: Report, officer_id: str) -> None:
        """A case without its narrative token: a product failure if relay had stored the
        message carrying it; otherwise that message was lost in a dead window and the
        scripted reporter went on regardless (a limit of the script, reported as a note)."""
        stored = [status for status, raw in self._inbox_frames() if report.token in raw]
        where = (f"case {report.ref} reached {officer_id} without reporter {run.index}'s "
                 f"narrative token {report.token!r}")
        if stored:
            self.violations.append(f"{where}, though relay stored it (inbox: {stored})")
        else:
            self.notes.append(f"{where}: no frame with it was ever stored (lost while the "
                              "child was down); not counted as a relay failure")

    def _inbox_frames(self) -> list[tuple[str, str]]:
        if self._inbox_cache is None:
            cfg = self.sandbox_org.cfg
            sealer = Sealer(Keyring.load(cfg.keys.directory), SystemClock())
            engine = make_engine(f"sqlite:///{self.db_path}")
            frames: list[tuple[str, str]] = []
            try:
                with make_sessionmaker(engine)() as s:
                    for row in s.scalars(select(InboxRow)):
                        dek = sealer.open_record(INBOX_TABLE, row.id, row.dek_wrapped)
                        raw = sealer.open(dek, INBOX_TABLE, row.id, "frame", row.frame_sealed)
                        frames.append((row.status, raw.decode("utf-8", "replace")))
            finally:
                engine.dispose()
            self._inbox_cache = frames
        return self._inbox_cache

    def _check_duplicates(
        self, rows_for: Counter[tuple[str, str]],
    ) -> tuple[int, int, int, set[str]]:
        """Invariant 2: no officer got the same text twice unless the copy is marked.

        Returns the unmarked duplicates, the marked copies, the marked copies that followed
        an earlier copy of the same text (a crash repeat the mark made visible), and the
        texts the outbox itself holds several rows of."""
        unmarked = marked = marked_after_copy = 0
        same_text: set[str] = set()  # texts the outbox itself holds several rows of
        for officer_id, phone in self.sandbox_org.officers.items():
            copies: dict[str, list[bool]] = defaultdict(list)
            for message in phone.messages:
                body, is_marked = strip_mark(message.text)
                copies[body].append(is_marked)
                marked += int(is_marked)
            for body, marks in copies.items():
                if len(marks) < 2:
                    continue
                marked_after_copy += sum(marks[1:])
                allowed = max(1, rows_for.get((officer_id, body), 0))
                if allowed > 1:
                    same_text.add(CASE_REF.sub("XXX-XX", body.splitlines()[0] if body else ""))
                plain = marks.count(False)
                later_plain = allowed == 1 and not all(marks[1:])
                if plain > allowed or later_plain:
                    extra = max(plain - allowed, 1)
                    unmarked += extra
                    first_line = body.splitlines()[0] if body else ""
                    self.violations.append(
                        f"officer {officer_id} received {len(marks)} copies of {first_line!r} "
                        f"({plain} unmarked; the outbox holds {allowed} row(s) with that text)")
        return unmarked, marked, marked_after_copy, same_text

    def _integrity(self) -> str:
        try:
            conn = sqlite3.connect(self.db_path)
            try:
                rows = conn.execute("PRAGMA integrity_check").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return f"error: {type(exc).__name__}: {exc}"
        return "; ".join(str(r[0]) for r in rows)

    def _result(self, wall: float) -> Result:
        cases, followups_acked, followups_delivered = self._check_delivery()
        try:
            rows_for, statuses, repeat_rows, quarantined = self._outbox_facts()
        except Exception as exc:  # a database that cannot be read is itself a finding
            self.violations.append(f"cannot read the outbox: {type(exc).__name__}: {exc}")
            rows_for, statuses, repeat_rows, quarantined = Counter(), Counter(), 0, -1
        unmarked, marked, marked_after_copy, same_text = self._check_duplicates(rows_for)
        integrity = self._integrity()
        if integrity != "ok":
            self.violations.append(f"PRAGMA integrity_check: {integrity}")
        self.violations[:0] = [f"unexpected child exit: {u}" for u in self.unexpected]
        if self.timed_out:
            stuck = [f"reporter {r.index} at {self._stage_name(r)}" for r in self.reporters
                     if not r.finished]
            stuck += [f"{r.mode} reply on {r.ref}" for r in self.replies.values()
                      if not r.delivered]
            self.violations.insert(0, f"time limit of {self.s.time_limit:.0f}s exceeded; "
                                      f"unfinished: {', '.join(stuck) or 'none'}")
        if self.final_exit != 0:
            self.violations.append(f"the final SIGTERM stop exited with {self.final_exit}")
        reports = self._reports()
        receipts = sum(report.ref is not None for _run, report in reports)
        sent_marked = sum(s.text.startswith(REPEAT_MARK) for s in self.sandbox_org.sandbox.sent)
        which_case = sum(WHICH_CASE in (m.text or "").lower()
                         for m in self.sandbox_org.officers[QUOTER].messages)
        startup = sorted(self.startup_times)
        quoter = self.sandbox_org.officers[QUOTER]
        repeated_originals = sum(
            1 for r in self.replies.values()
            if r.first_quoted is not None and len(self._case_copies(quoter, r.ref)) > 1
            and self._case_copies(quoter, r.ref)[0].timestamp == r.first_quoted)
        figures: dict[str, Any] = {
            "kills": f"{self.kills} ({self.startup_kills} during startup/recovery)",
            "restarts": self.epoch - 1,
            "child startup (READY) s": (f"median {startup[len(startup) // 2]:.2f}, "
                                        f"max {startup[-1]:.2f}") if startup else "-",
            "reporters": len(self.reporters),
            "receipts": f"{receipts} of {len(reports)} reports started",
            "cases delivered": f"{cases} (to every officer of the scope, narrative intact)",
            "follow-ups delivered": f"{followups_delivered} of {followups_acked} acknowledged",
            "officer replies delivered": f"{sum(r.delivered for r in self.replies.values())}"
                                         f" of {len(self.replies)}",
            "marked repeats": (f"{marked} officer copies from {sent_marked} marked sends; "
                               f"{marked_after_copy} of the copies repeat one already received"),
            "unmarked duplicates": unmarked,
            "resends needed": (
                f"{sum(r.resends for r in self.reporters)} intake, "
                f"{sum(r.followup_resends for r in self.reporters)} follow-up, "
                f"{sum(r.resends for r in self.replies.values())} officer reply"),
            "quotes answered 'which case?'": (
                f"{which_case} ({repeated_originals} first quotes were of an original that "
                "was later resent marked; "
                f"{sum(r.fell_back for r in self.replies.values())} fell back to /reply)"),
            "texts the outbox holds several rows of": "; ".join(sorted(same_text)) or "none",
            "receipts a reporter got twice (unmarked)": sum(
                sum(f"reference is {report.ref}" in (m.text or "") for m in run.phone.messages)
                > 1 for run, report in reports if report.ref is not None),
            "outbox rows": ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
            "outbox rows marked possible_repeat": repeat_rows,
            "inbox quarantined": quarantined,
            "integrity_check": integrity,
            "wall time s": f"{wall:.1f}",
        }
        return Result(figures, self.violations, self.notes, self.workdir)

    @staticmethod
    def _stage_name(run: ReporterRun) -> str:
        if not run.reports:
            return "not started"
        report = run.reports[-1]
        where = f"report {report.round}: "
        if report.ref is not None:
            return where + f"follow-ups ({len(report.acked_followups)} acknowledged)"
        return where + ("opening" if report.stage == FIRST else QUESTIONS[report.stage].name)

    # -- everything -------------------------------------------------------------------------
    async def run(self) -> Result:
        started = time.monotonic()
        try:
            await self._setup()
            org = self.sandbox_org
            self.reporters = [ReporterRun(i, org.reporter(f"soak-reporter-{i}"))
                              for i in range(1, self.s.reporters + 1)]
            self.people = [asyncio.create_task(self._reporter(r), name=f"reporter-{r.index}")
                           for r in self.reporters]
            self.people.append(asyncio.create_task(self._watch_cases(), name="officers"))
            self.people.append(asyncio.create_task(self._report_status(), name="status"))
            try:
                async with asyncio.timeout(self.s.time_limit):
                    await self._supervise()
            except TimeoutError:
                self.timed_out = True
            except SoakAbortError as exc:
                self.violations.append(str(exc))
            if self.child is not None and self.child.running and not self.timed_out:
                await self._quiet([*org.officers.values(), *(r.phone for r in self.reporters)])
        finally:
            await self._stop_everything()
        return self._result(time.monotonic() - started)

    async def _stop_everything(self) -> None:
        self.up.clear()
        tasks = [*self.people, *self.reply_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.child is not None and self.child.running:
            self.final_exit = await self.child.terminate()
        elif self.child is not None:
            self.final_exit = self.child.proc.returncode
        if self.org is not None:
            await self.org.sandbox.stop()


async def run_soak(settings: Settings, workdir: Path | None = None,
                   say: Callable[[str], None] | None = None) -> Result:
    """Run the whole soak in `workdir` (a fresh temporary directory by default)."""
    own = workdir is None
    where = Path(tempfile.mkdtemp(prefix="relay-soak-")) if workdir is None else workdir
    where.mkdir(parents=True, exist_ok=True)
    result = await Soak(settings, where, say).run()
    if own and result.ok:
        shutil.rmtree(where, ignore_errors=True)
    return result


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.soak.kill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs to deliver (30)")
    parser.add_argument("--reporters", type=int, default=6, help="concurrent reporters (6)")
    parser.add_argument("--followups", type=int, default=2, help="follow-ups each (2)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (random)")
    parser.add_argument("--time-limit", type=float, default=480.0,
                        help="fail if the run takes longer, seconds (480)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep everything here (default: a temporary directory, "
                             "deleted when all invariants hold)")
    parser.add_argument("--quiet", action="store_true", help="only the figures")
    parser.add_argument("--mutant", choices=sorted(MUTANTS), default=None,
                        help="run a deliberately broken relay, to see the checks fail")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    settings = Settings(kills=args.kills, reporters=args.reporters, followups=args.followups,
                        seed=seed, time_limit=args.time_limit, verbose=not args.quiet,
                        mutant=args.mutant)

    def say(line: str) -> None:
        if settings.verbose:
            sys.stdout.write(f"soak: {line}\n")
            sys.stdout.flush()

    sys.stdout.write(f"relay kill -9 soak: kills={settings.kills} reporters={settings.reporters}"
                     f" follow-ups={settings.followups} seed={seed}\n")
    result = asyncio.run(run_soak(settings, args.workdir, say))
    sys.stdout.write(result.render() + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
