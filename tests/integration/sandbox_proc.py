"""Run `relay sandbox serve` as a real subprocess and talk to it (CLI test helpers)."""

from __future__ import annotations

import json
import os
import pty
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RELAY = str(Path(sys.executable).parent / "relay")
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "mpp.toml"
BANNER = "sandbox signal-cli-rest-api serving at "


class Lines:
    """A subprocess's stdout, read line by line on a thread (no lost buffered lines)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def next(self, within: float = 20.0) -> str | None:
        """The next line (None at end of output); fails after ``within`` seconds."""
        try:
            return self._queue.get(timeout=within)
        except queue.Empty:
            raise AssertionError("no output from the subprocess in time") from None

    def until(self, marker: str, within: float = 20.0) -> list[str]:
        """Lines up to and including the first containing ``marker``."""
        deadline = time.monotonic() + within
        lines: list[str] = []
        while True:
            line = self.next(max(deadline - time.monotonic(), 0.05))
            if line is None:
                raise AssertionError(f"{marker!r} not printed; got {lines!r}")
            lines.append(line)
            if marker in line:
                return lines

    def rest(self, within: float = 20.0) -> str:
        """Everything until the end of output."""
        lines: list[str] = []
        while (line := self.next(within)) is not None:
            lines.append(line)
        return "".join(lines)


def start(*args: str) -> tuple[subprocess.Popen[str], Lines]:
    """Start `relay ARGS` with piped output (stdin is not a terminal)."""
    proc = subprocess.Popen(
        [RELAY, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, Lines(proc)


def finish(proc: subprocess.Popen[str], within: float = 15.0) -> tuple[int, str]:
    """Wait for ``proc``; (exit code, stderr). Killed if it outlives ``within``."""
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    err = proc.stderr.read() if proc.stderr is not None else ""
    return proc.returncode, err


@dataclass
class Served:
    """A running `relay sandbox serve`; ``banner`` is what it printed on start."""

    proc: subprocess.Popen[str]
    lines: Lines
    url: str
    banner: str

    @property
    def service(self) -> str:
        return self.url.removeprefix("http://")

    def stop(self) -> tuple[int, str]:
        """SIGTERM; returns (exit code, stdout printed after the banner)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code, _ = finish(self.proc)
        return code, self.lines.rest()


@contextmanager
def serve(*args: str) -> Iterator[Served]:
    """`relay sandbox serve --port 0 ARGS` until the block ends (then SIGTERM)."""
    proc, lines = start("sandbox", "serve", "--port", "0", *args)
    try:
        first = lines.next()
        if first is None or not first.startswith(BANNER):
            _, err = finish(proc)
            raise AssertionError(f"sandbox did not start: {first!r} {err}")
        banner = first + "".join(lines.until("Press Ctrl-C to stop."))
        yield Served(proc, lines, first.removeprefix(BANNER).strip(), banner)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            finish(proc)


def relay(*args: str, within: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `relay ARGS` to completion (stdin is not a terminal)."""
    return subprocess.run(
        [RELAY, *args],
        capture_output=True,
        text=True,
        timeout=within,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def http(url: str, method: str = "GET", body: object | None = None) -> tuple[int, Any]:
    """One plain HTTP call; (status, decoded JSON body or None)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def write_config(tmp_path: Path, service: str, bot_number: str = "+15550100001") -> Path:
    """The MPP example pointed at ``service`` with ``bot_number``."""
    text = EXAMPLE.read_text("utf-8")
    text = text.replace('service = "127.0.0.1:8080"', f'service = "{service}"')
    text = text.replace('bot_number = "+15550100001"', f'bot_number = "{bot_number}"')
    text = text.replace(
        'url = "sqlite:///relay-data/mpp.db"', f'url = "sqlite:///{tmp_path / "relay.db"}"'
    )
    path = tmp_path / "relay.toml"
    path.write_text(text, "utf-8")
    return path


class Terminal:
    """`relay ARGS` on a pseudo-terminal (its controlling tty): prompts are interactive."""

    def __init__(self, *args: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child process
            try:
                os.execv(RELAY, [RELAY, *args])
            finally:
                os._exit(127)
        self.pid = pid
        self.fd = fd
        self.transcript = ""

    def expect(self, marker: str, within: float = 20.0) -> str:
        """Read until ``marker`` has been printed; returns the transcript so far."""
        deadline = time.monotonic() + within
        while marker not in self.transcript:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{marker!r} not printed; got {self.transcript!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{marker!r} not printed; got {self.transcript!r}")
                self.transcript += chunk.decode("utf-8", errors="replace")
        return self.transcript

    def type(self, text: str) -> None:
        """Type ``text`` and Enter."""
        os.write(self.fd, (text + "\n").encode("utf-8"))

    def finish(self, within: float = 20.0) -> int:
        """Read the rest of the output; the exit code (killed after ``within`` seconds)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self._drain(0.2)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self._drain(0.05)
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"did not exit in time; got {self.transcript!r}")

    def _drain(self, wait: float) -> None:
        while select.select([self.fd], [], [], wait)[0]:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO once the child has exited
                return
            if not chunk:
                return
            self.transcript += chunk.decode("utf-8", errors="replace")
