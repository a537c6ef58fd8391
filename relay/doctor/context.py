"""What every check may read: the loaded config, the HTTP client, and earlier findings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relay.config import OrgConfig
from relay.doctor.probe import Http, Reply

DEFAULT_CONFIG = Path("relay.toml")
MIB = 1024 * 1024


@dataclass(frozen=True)
class DiskLimits:
    """Free space below `fail_below` fails the disk check; below `warn_below` warns."""

    fail_below: int = 200 * MIB
    warn_below: int = 1024 * MIB


@dataclass
class Context:
    config_path: Path
    cfg: OrgConfig
    http: Http
    limits: DiskLimits = DiskLimits()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Findings later checks depend on (None: not known).
    api_ok: bool = False
    registered: bool | None = None
    groups: dict[str, dict[str, Any]] | None = None
    groups_error: str = ""
    _relay_health: Reply | None = None
    _relay_health_read: bool = False

    def api(self, path: str) -> str:
        """A URL on the REST API (it holds the bot's number: never print it)."""
        return f"{self.cfg.signal.connection}://{self.cfg.signal.service}{path}"

    def cmd(self, command: str) -> str:
        """A relay command line for a fix, naming the config file when it is not the default."""
        if self.config_path == DEFAULT_CONFIG:
            return command
        return f"{command} -c {self.config_path}"

    async def relay_health(self) -> Reply | None:
        """relay's own `/healthz` (None when `[health] listen` is not set); read once."""
        if not self._relay_health_read:
            listen = health_listen(self.cfg)
            if listen is not None:
                self._relay_health = await self.http.get(f"http://{connect_to(listen)}/healthz")
            self._relay_health_read = True
        return self._relay_health


def health_listen(cfg: OrgConfig) -> str | None:
    """`[health] listen` when the endpoint is on at a fixed port (port 0 cannot be probed)."""
    listen = cfg.health.address
    if listen is None or int(listen.rpartition(":")[2]) == 0:
        return None
    return listen


def connect_to(listen: str) -> str:
    """Where to connect for a listen address: a wildcard bind is reached on loopback."""
    host, _, port = listen.rpartition(":")
    if host in {"0.0.0.0", ""}:  # noqa: S104 - a bind address, turned into loopback
        host = "127.0.0.1"
    elif host in {"[::]", "::"}:
        host = "[::1]"
    return f"{host}:{port}"
