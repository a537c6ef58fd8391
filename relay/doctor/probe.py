"""A small HTTP GET for the doctor: a status and a body, or why nothing answered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp

NO_ANSWER = 0


@dataclass(frozen=True)
class Reply:
    """`status` 0: nothing answered (`error` names the exception type, never the URL)."""

    status: int
    body: bytes = b""
    error: str = ""

    @property
    def answered(self) -> bool:
        return self.status != NO_ANSWER

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def ok_json(self) -> Any:
        """The body as JSON when the status was 200; None otherwise or when not JSON."""
        return self.json() if self.status == 200 else None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Http:
    """One client session for all of the doctor's requests (`async with Http() as http`)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, url: str, limit: int = 4 * 1024 * 1024) -> Reply:
        if self._session is None:
            raise RuntimeError("use Http inside `async with`")
        try:
            async with self._session.get(url, allow_redirects=False) as resp:
                return Reply(resp.status, await resp.content.read(limit))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Reply(NO_ANSWER, error=type(exc).__name__)
