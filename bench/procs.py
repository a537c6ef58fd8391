"""Starting and talking to a `bench.child` process (line-delimited JSON on stdout)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

from bench import BENCH_DIR


def _prepare(spec: dict[str, Any], spec_path: Path, log_path: Path) -> BinaryIO:
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec), "utf-8")
    return log_path.open("wb")


class ChildError(RuntimeError):
    pass


class Child:
    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self._proc = proc
        self.log_path = log_path
        self.ready: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    async def spawn(cls, spec: dict[str, Any], workdir: Path, name: str,
                    timeout: float = 60.0) -> Child:  # noqa: ASYNC109 - a deadline for start-up
        spec_path = workdir / f"{name}.spec.json"
        log_path = workdir / f"{name}.log"
        log = await asyncio.to_thread(_prepare, spec, spec_path, log_path)
        with log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.child", str(spec_path),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                cwd=str(BENCH_DIR.parent),
            )
        child = cls(proc, log_path)
        try:
            child.ready = await child.expect("ready", timeout)
        except BaseException:
            await child.kill()
            raise
        return child

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-15:])

    async def expect(self, event: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        stdout = self._proc.stdout
        assert stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await stdout.readline()
                if not line:
                    code = await self._proc.wait()
                    raise ChildError(f"child exited ({code}) before '{event}':\n"
                                     f"{self._log_tail()}")
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("event") == event:
                    return message

    async def _say(self, command: str) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        stdin.write(command.encode() + b"\n")
        await stdin.drain()

    async def stats(self, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        await self._say("stats")
        return await self.expect("stats", timeout)

    async def stop(self, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
        try:
            await self._say("stop")
            stopped = await self.expect("stopped", timeout)
            await asyncio.wait_for(self._proc.wait(), timeout)
        except BaseException:
            await self.kill()
            raise
        return stopped

    async def kill(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._proc.wait(), 10)
